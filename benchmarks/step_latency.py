"""``sim.step()`` per call: nengojax against nengo.Simulator on the README model.

Closed-loop, robotics and GUI use step the simulator one step at a time, so the
cost of one call matters more than steps/s over long runs. Writes
``results/step_latency.md``.

    python benchmarks/step_latency.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import nengo
import numpy as np

import nengojax

HERE = os.path.dirname(os.path.abspath(__file__))


def readme_model() -> nengo.Network:
    """The model of the README's "Using it" section."""
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: [t])
        ens = nengo.Ensemble(50, 1)
        nengo.Connection(stim, ens)
        nengo.Probe(ens, synapse=0.01)
    return net


def per_call(sim_cls, calls: int, reps: int = 3) -> float:
    """Best-of-``reps`` seconds per ``sim.step()`` call (after a warm-up)."""
    best = np.inf
    with sim_cls(readme_model(), progress_bar=False) as sim:
        for _ in range(50):
            sim.step()
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(calls):
                sim.step()
            best = min(best, (time.perf_counter() - t0) / calls)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "step_latency.md"))
    args = parser.parse_args()
    ref = per_call(nengo.Simulator, args.calls)
    jx = per_call(nengojax.Simulator, args.calls)
    text = (
        "# sim.step() per call (README model)\n\n"
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; "
        f"{args.calls} calls, best of 3.\n\n"
        "| simulator | ms per step() call |\n|---|---|\n"
        f"| nengo {nengo.__version__} | {ref * 1e3:.3f} |\n"
        f"| nengojax {nengojax.__version__} | {jx * 1e3:.3f} |\n\n"
        f"nengojax / nengo: {jx / ref:.1f}x the time per call.\n"
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
