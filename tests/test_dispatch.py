"""CPU dispatch: inline by default after ``import nengojax``, JAX's own with
``NENGOJAX_CPU_ASYNC_DISPATCH=1``; the same results either way."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import jax, nengo, numpy as np
import nengojax
print("ASYNC", jax.config.read("jax_cpu_enable_async_dispatch"))
value = [0.0]
with nengo.Network(seed=0) as net:
    stim = nengo.Node(lambda t: value[0])
    ens = nengo.Ensemble(50, 1)
    nengo.Connection(stim, ens)
    p = nengo.Probe(ens, synapse=0.01)
with nengojax.Simulator(net, progress_bar=False) as sim:
    for _ in range(30):  # a closed loop: one program call per step
        sim.step()
        value[0] = 1.0 - float(sim.data[p][-1, 0])
    sim.run_steps(50)
print("DATA", repr(np.asarray(sim.data[p]).tobytes().hex()))
"""


def _run(env_extra):
    env = {k: v for k, v in os.environ.items() if k != "NENGOJAX_CPU_ASYNC_DISPATCH"}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def test_inline_by_default_and_switchable_with_the_same_results():
    inline = _run({})
    assert inline["ASYNC"] == "False"
    kept = _run({"NENGOJAX_CPU_ASYNC_DISPATCH": "1"})
    assert kept["ASYNC"] == "True"
    assert inline["DATA"] == kept["DATA"]
