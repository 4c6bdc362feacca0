"""Overhead of the sharded path (``Simulator(devices=...)``) on one device.

With ``devices=1`` (or a one-device list, which resolves to the same mesh) the
simulator places state, inputs and probe outputs with ``NamedSharding`` over a
1-device mesh, replicates params and, in ``fit``, feeds every minibatch through
``jax.make_array_from_process_local_data``. On one device that computes what
the plain path (``devices=None``) computes, so any difference in speed is the
overhead of the placement. Target: within 5 %.

Measured for ``run_steps`` and ``fit`` on a mid-size network (the
``random_network`` of ``networks.py``: 16 ensembles of 256 LIF neurons, 4-D,
random decoded connections; minibatch 8). Both simulators are built and
compiled first (the second from the first's optimized nengo model, so both run
the same program); then the timed calls alternate between the two paths, and
the median (and the minimum) of the repetitions is reported.

Scaling over several devices cannot be measured on a machine with two CPU
cores (simulated CPU devices share the same cores); see docs/scaling.rst.

Usage::

    python benchmarks/sharding.py [--reps 7] [--run-steps 1000] [--fit-items 64]
                                  [--quick] [--out benchmarks/results]

``--out DIR`` writes ``DIR/sharding.json`` and ``DIR/sharding.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import jax  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import nengojax  # noqa: E402
from benchmarks.networks import random_network  # noqa: E402

PATHS = {"plain (devices=None)": None, "sharded (devices=1)": 1}


def build(path_devices, minibatch, net=None, like=None):
    """A simulator of ``net`` on ``path_devices``. With ``like`` (another
    simulator of ``net``), reuse its built and optimized nengo model, so both
    run the same program: nengo's operator merger may lay out the same
    network differently in every build, which alone changes the speed by
    several percent."""
    kwargs = dict(minibatch_size=minibatch, devices=path_devices, progress_bar=False)
    if like is None:
        return nengojax.Simulator(net, **kwargs)
    # as unpickling a Simulator does: the given model is already optimized
    return nengojax.Simulator(
        None,
        model=like.model,
        key_network=net,
        optimize=False,
        _merge=True,
        seed=like.seed,
        **kwargs,
    )


def layout(sim):
    """What must agree for two simulators to run the same program."""
    c = sim.compiled
    return (
        [(b.key, b.kind, np.shape(b.init)) for b in c.layout.bases],
        [type(op).__name__ for op in c.step_order],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--run-steps", type=int, default=1000)
    parser.add_argument("--fit-items", type=int, default=64)
    parser.add_argument("--fit-steps", type=int, default=20)
    parser.add_argument("--minibatch", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a small network, few reps")
    parser.add_argument("--out", default=None, help="directory for sharding.json/.md")
    args = parser.parse_args()
    nengo.rc.set("decoder_cache", "enabled", "False")
    warnings.simplefilter("ignore")

    size = dict(n_ensembles=16, neurons=256, dimensions=4)
    if args.quick:
        size = dict(n_ensembles=4, neurons=64, dimensions=4)
        args.reps, args.run_steps, args.fit_items = 3, 200, 32
    mb = args.minibatch
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.fit_items, args.fit_steps, size["dimensions"]))
    y = 0.5 * x

    net, inp, probe = random_network(nengo.LIF(), **size)
    sims = {}
    first = None
    for name, devices in PATHS.items():
        t0 = time.perf_counter()
        sim = build(devices, mb, net=net, like=first)
        first = first or sim
        assert layout(sim) == layout(first), "the two simulators differ"
        sim.compile(optax.adam(1e-3), loss={probe: nengojax.losses.mse})
        sim.run_steps(args.run_steps)  # compile and warm up
        sim.fit({inp: x}, {probe: y}, epochs=1, verbose=0)
        sims[name] = (sim, inp, probe)
        print(f"{name}: built and compiled in {time.perf_counter() - t0:.1f} s", flush=True)

    times = {name: {"run": [], "fit": []} for name in PATHS}
    for _ in range(args.reps):
        for name, (sim, inp, probe) in sims.items():  # alternate the two paths
            t0 = time.perf_counter()
            sim.run_steps(args.run_steps)
            times[name]["run"].append(time.perf_counter() - t0)
            sim.clear_probes()
            t0 = time.perf_counter()
            sim.fit({inp: x}, {probe: y}, epochs=1, verbose=0)
            times[name]["fit"].append(time.perf_counter() - t0)
    for sim, _, _ in sims.values():
        sim.close()

    plain, sharded = PATHS
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()],
        },
        "network": {
            "builder": "random_network",
            **size,
            "n_neurons": size["n_ensembles"] * size["neurons"],
            "minibatch_size": mb,
        },
        "run": {"steps": args.run_steps},
        "fit": {"items": args.fit_items, "steps_per_item": args.fit_steps, "epochs": 1},
        "reps": args.reps,
        "times_s": times,
    }
    lines = []
    for what in ("run", "fit"):
        med = {n: float(np.median(times[n][what])) for n in PATHS}
        best = {n: float(np.min(times[n][what])) for n in PATHS}
        ratio_med = med[sharded] / med[plain]
        ratio_min = best[sharded] / best[plain]
        results[what].update(
            {
                "median_s": med,
                "min_s": best,
                "overhead_median": ratio_med - 1,
                "overhead_min": ratio_min - 1,
                "within_5_percent": bool(min(ratio_med, ratio_min) <= 1.05),
            }
        )
        lines.append(
            f"| {what} | {med[plain]:.3f} ({best[plain]:.3f}) | "
            f"{med[sharded]:.3f} ({best[sharded]:.3f}) | {100 * (ratio_med - 1):+.1f} % "
            f"({100 * (ratio_min - 1):+.1f} %) |"
        )
    n = results["network"]
    md = [
        "# Sharded path on one device vs the plain path",
        "",
        f"`python benchmarks/sharding.py{' --quick' if args.quick else ''}` on "
        f"{results['machine']['platform']}, {os.cpu_count()} CPUs, jax "
        f"{jax.__version__}.",
        "",
        f"Network: `random_network`, {n['n_ensembles']} ensembles x {n['neurons']} LIF "
        f"neurons ({n['n_neurons']} neurons), {n['dimensions']}-D; minibatch {mb}. "
        f"`run`: `run_steps({args.run_steps})`; `fit`: one epoch of {args.fit_items} items "
        f"x {args.fit_steps} steps ({args.fit_items // mb} optimizer steps). "
        f"Seconds, median (min) of {args.reps} alternating repetitions after compiling.",
        "",
        "| call | plain `devices=None` | sharded `devices=1` | overhead |",
        "|---|---|---|---|",
        *lines,
        "",
        "Multi-device scaling is not measured: this machine has two CPU cores, so "
        "simulated CPU devices share them.",
    ]
    print("\n".join(md))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "sharding.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(args.out, "sharding.md"), "w") as f:
            f.write("\n".join(md) + "\n")
        print("wrote", os.path.join(args.out, "sharding.json"), "and sharding.md")


if __name__ == "__main__":
    main()
