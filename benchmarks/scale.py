"""Build and compile time against model size, on many small SPA-style modules.

Each module is a 16-dimensional memory (a ``nengo.networks.EnsembleArray`` of
16 one-dimensional ensembles of 50 neurons, with feedback) that feeds the
next module and a shared 16-dimensional readout; the first module gets a live
input. With ``--links L`` each ensemble also gets a decoded connection from
its counterpart in each of the ``L`` modules before it (Spaun's modules talk
to more than their neighbours): 35 + 16 L connections per module. Each size
runs in its own process for each simulator, which reports its build time,
nengojax's compile time (first run of 10 steps less a second run), steps/s
over 20 steps and the peak resident memory. Writes ``results/scale.json`` and
``results/scale.md``.

    python benchmarks/scale.py [--modules 8,16,32,64] [--links 2]

Spaun's scale (>= 10k ensembles, >= 40k connections) is 640 modules with
``--links 2`` (10,240 ensembles, 42,880 connections).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DIMS = 16


def network(n_modules: int, seed: int = 0, links: int = 0, dims: int = DIMS, n_neurons: int = 50):
    """The chain of memories (``dims``-dimensional, ``n_neurons`` per ensemble);
    returns the network and its readout probe."""
    import nengo
    import numpy as np

    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t * np.arange(1, dims + 1)))
        readout = nengo.Node(size_in=dims)
        pre = stim
        mems = []
        for _ in range(n_modules):
            mem = nengo.networks.EnsembleArray(n_neurons, dims)
            nengo.Connection(pre, mem.input, transform=0.5, synapse=0.01)
            nengo.Connection(mem.output, mem.input, synapse=0.1)  # the memory
            nengo.Connection(mem.output, readout, transform=1 / n_modules)
            for other in mems[-links:] if links else []:
                for a, b in zip(other.ea_ensembles, mem.ea_ensembles, strict=True):
                    nengo.Connection(a, b, transform=0.1 / links, synapse=0.02)
            mems.append(mem)
            pre = mem.output
        probe = nengo.Probe(readout, synapse=0.01)
    return net, probe


def _steps_per_s(sim, n: int = 20) -> float:
    t0 = time.perf_counter()
    sim.run_steps(n)
    return n / (time.perf_counter() - t0)


def worker(sim_name: str, n_modules: int, links: int) -> dict:
    """Build (and for nengojax compile) one size in this process."""
    import nengo

    nengo.rc.set("decoder_cache", "enabled", "False")
    net, _ = network(n_modules, links=links)
    out = {
        "ensembles": len(net.all_ensembles),
        "connections": len(net.all_connections),
        "neurons": sum(e.n_neurons for e in net.all_ensembles),
    }
    if sim_name == "nengojax":
        sys.path.insert(0, ROOT)
        import nengojax
        from nengojax.cache import disable_compilation_cache

        disable_compilation_cache()
        t0 = time.perf_counter()
        sim = nengojax.Simulator(net, progress_bar=False)
        out["build_s"] = time.perf_counter() - t0
        out["build_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with sim:
            t0 = time.perf_counter()
            sim.run_steps(10)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            sim.run_steps(10)
            out["compile_s"] = max(first - (time.perf_counter() - t0), 0.0)
            out["operators"] = len(sim.compiled.step_order)
            out["steps_per_s"] = _steps_per_s(sim)
    else:
        t0 = time.perf_counter()
        sim = nengo.Simulator(net, progress_bar=False)
        out["build_s"] = time.perf_counter() - t0
        out["steps_per_s"] = _steps_per_s(sim)
        sim.close()
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv=None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modules", default="8,16,32,64", help="module counts (16 ensembles each)")
    p.add_argument("--links", type=int, default=0, help="extra connections (see above)")
    p.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.links)))
        return 0
    rows = []
    for n in [int(m) for m in args.modules.split(",")]:
        row = {"modules": n}
        for name in ("nengo", "nengojax"):
            res = subprocess.run(
                [sys.executable, __file__, "--worker", name, str(n), "--links", str(args.links)],
                capture_output=True,
                text=True,
                check=True,
                env=dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu")),
            )
            row[name] = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scale.json"), "w") as f:
        json.dump(rows, f, indent=1)
    lines = [
        "# Build and compile time against model size",
        "",
        f"`python benchmarks/scale.py --modules {args.modules} --links {args.links}`: "
        "chains of 16-dimensional memories (EnsembleArray of 16 x 50 LIF neurons with "
        "feedback), each process building one size; "
        f"{os.cpu_count()} CPUs. Times in seconds, memory (peak resident set of the process) "
        "in MB; nengojax's peak after its build in brackets (its process also holds JAX, "
        "~180 MB more than nengo's at the start). operators: in nengojax's step.",
        "",
        "| ensembles | connections | operators | nengo build | nengojax build | build ratio "
        "| nengojax compile | compile per ensemble (ms) | nengo peak | nengojax peak "
        "| steps/s nengo | steps/s nengojax |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["nengo"], r["nengojax"]
        lines.append(
            f"| {b['ensembles']} | {b['connections']} | {b['operators']} | "
            f"{a['build_s']:.2f} | {b['build_s']:.2f} | {a['build_s'] / b['build_s']:.2f}x | "
            f"{b['compile_s']:.2f} | {1000 * b['compile_s'] / b['ensembles']:.2f} | "
            f"{a['peak_mb']:.0f} | {b['peak_mb']:.0f} ({b['build_peak_mb']:.0f}) | "
            f"{a['steps_per_s']:.1f} | {b['steps_per_s']:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "scale.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
