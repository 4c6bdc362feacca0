"""The persistent compilation cache: on by default, settable, switchable off."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import jax, nengo, numpy as np
import nengojax
print("DIR", jax.config.jax_compilation_cache_dir)
with nengo.Network(seed=0) as net:
    ens = nengo.Ensemble(20, 1)
    p = nengo.Probe(ens, synapse=0.01)
with nengojax.Simulator(net, progress_bar=False) as sim:
    sim.run_steps(10)
print("SUM", float(np.sum(sim.data[p])))
"""


# a closed loop through Python: the step calls the host every step
CLOSED_LOOP = """
import nengo, numpy as np, warnings
import jax, nengojax
warnings.simplefilter("ignore")
print("DIR", jax.config.jax_compilation_cache_dir)
world = {"x": 1.0}
with nengo.Network(seed=0) as net:
    sensor = nengo.Node(lambda t: world["x"])
    move = lambda t, u: world.update(x=world["x"] + 0.02 * u[0])  # noqa: E731
    motor = nengo.Node(move, size_in=1, size_out=0)
    ens = nengo.Ensemble(50, 1, radius=2)
    nengo.Connection(sensor, ens)
    nengo.Connection(ens, motor, function=lambda v: 0.5 - v, synapse=0.01)
    p = nengo.Probe(sensor)
with nengojax.Simulator(net, progress_bar=False) as sim:
    sim.run_steps(300)
print("SUM", float(np.sum(sim.data[p])), world["x"])
"""


def _run(env_extra, tmp_path, script=SCRIPT):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NENGOJAX_CACHE")}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    return lines["DIR"], lines["SUM"]


def test_cache_dir_from_environment_and_reused(tmp_path):
    cache = tmp_path / "cache"
    first = _run({"NENGOJAX_CACHE_DIR": str(cache)}, tmp_path)
    assert first[0] == str(cache)
    entries = set(os.listdir(cache))
    assert any("run_packed" in e for e in entries), entries
    second = _run({"NENGOJAX_CACHE_DIR": str(cache)}, tmp_path)
    assert second == first  # same answer from the cached program
    assert set(os.listdir(cache)) == entries  # nothing compiled anew


def test_closed_loop_through_python_is_cached_too(tmp_path):
    # JAX does not cache programs with its own host callbacks; nengojax's host
    # calls on CPU go through a named FFI target, so a closed loop is cached
    cache = tmp_path / "cache"
    first = _run({"NENGOJAX_CACHE_DIR": str(cache)}, tmp_path, CLOSED_LOOP)
    entries = set(os.listdir(cache))
    assert any("run_packed" in e for e in entries), entries
    second = _run({"NENGOJAX_CACHE_DIR": str(cache)}, tmp_path, CLOSED_LOOP)
    assert second == first  # the same loop, the robot in the same place
    assert abs(float(first[1].split()[1]) - 0.5) < 0.1  # the controller saw its effect
    assert set(os.listdir(cache)) == entries  # nothing compiled anew


def test_cache_switched_off(tmp_path):
    assert _run({"NENGOJAX_CACHE": "0"}, tmp_path)[0] == "None"


def test_default_dir_follows_xdg(tmp_path, monkeypatch):
    from nengojax import cache

    monkeypatch.delenv("NENGOJAX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.default_cache_dir() == os.path.join(str(tmp_path), "nengojax", "jax")
