"""``sim.step()`` per call: nengojax against nengo.Simulator on the README model.

Closed-loop, robotics and GUI use step the simulator one step at a time, so the
cost of one call matters more than steps/s over long runs. Three figures per
simulator: the warm cost of a call (best of 3 loops, after a warm-up); the
first 1,000 calls of a new Simulator in all (nengojax's loop of steps run ahead
compiles in the background meanwhile); and a closed loop whose Node reads a
value the script sets between calls, which nengojax must step one by one.
Writes ``results/step_latency.md``.

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


def closed_loop_model(value: list) -> nengo.Network:
    """The README model driven by a value the script changes between steps."""
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: value[0])
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
        time.sleep(0.5)  # nengojax: its loop compiles in the background meanwhile
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(calls):
                sim.step()
            best = min(best, (time.perf_counter() - t0) / calls)
    return best


def first_calls(sim_cls, calls: int = 1000) -> float:
    """Seconds for the first ``calls`` calls of a new Simulator, in all."""
    with sim_cls(readme_model(), progress_bar=False) as sim:
        t0 = time.perf_counter()
        for _ in range(calls):
            sim.step()
        return time.perf_counter() - t0


def closed_loop(sim_cls, calls: int) -> float:
    """Seconds per call of a loop that sets the Node's value after every step."""
    value = [0.0]
    with sim_cls(closed_loop_model(value), progress_bar=False) as sim:
        probe = sim.model.probes[0]
        for _ in range(50):
            sim.step()
        t0 = time.perf_counter()
        for _ in range(calls):
            sim.step()
            value[0] = 1.0 - float(sim.data[probe][-1, 0])
        return (time.perf_counter() - t0) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "step_latency.md"))
    args = parser.parse_args()
    rows = {}
    for name, cls in (
        ("nengo " + nengo.__version__, nengo.Simulator),
        ("nengojax " + nengojax.__version__, nengojax.Simulator),
    ):
        first = first_calls(cls)  # first: before anything of this model is compiled
        rows[name] = (per_call(cls, args.calls), first, closed_loop(cls, args.calls))
    (ref, ref_first, ref_loop), (jx, jx_first, jx_loop) = rows.values()
    text = (
        "# sim.step() per call (README model)\n\n"
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; warm: {args.calls} "
        "calls, best of 3 loops; first 1,000 calls of a new Simulator, in all; closed "
        "loop: a Node reading a value the script sets after every call.\n\n"
        "| simulator | warm ms per call | first 1,000 calls s | closed loop ms per call |\n"
        "|---|---|---|---|\n"
        + "".join(
            f"| {name} | {w * 1e3:.3f} | {f:.3f} | {c * 1e3:.3f} |\n"
            for name, (w, f, c) in rows.items()
        )
        + f"\nnengojax / nengo: {jx / ref:.2f}x the time per warm call, "
        f"{jx_first / ref_first:.2f}x for the first 1,000 calls, "
        f"{jx_loop / ref_loop:.2f}x per closed-loop call.\n"
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
