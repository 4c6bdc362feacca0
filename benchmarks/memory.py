"""Peak memory: nengojax against nengo.Simulator on a model with one large weight matrix.

The model of issue 12: two 10,000-neuron ensembles joined by a dense 10,000 x
10,000 weight matrix (a ``transform`` on a neurons-to-neurons connection), run
for 100 steps. Each simulator runs in its own process; the figure is that
process's peak resident set size (``ru_maxrss``), which includes the network
itself (the user's float64 matrix, 800 MB) and nengo's built copy of it, which
both simulators hold. Writes ``results/memory.md``.

    python benchmarks/memory.py [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def worker(sim_name: str, n: int) -> dict:
    """Build and run the model in this process; its peak RSS in MB."""
    import resource

    import nengo
    import numpy as np

    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(n, 1, neuron_type=nengo.RectifiedLinear())
        b = nengo.Ensemble(n, 1, neuron_type=nengo.RectifiedLinear())
        weights = np.random.RandomState(0).uniform(-1e-4, 1e-4, (n, n))
        nengo.Connection(a.neurons, b.neurons, transform=weights)
        nengo.Probe(b.neurons[:10])
    if sim_name == "nengojax":
        sys.path.insert(0, ROOT)
        import nengojax

        sim = nengojax.Simulator(net, progress_bar=False)
    else:
        sim = nengo.Simulator(net, progress_bar=False)
    with sim:
        sim.run_steps(100)
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10000, help="neurons per ensemble")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n)))
        return 0
    peaks = {}
    for name in ("nengo", "nengojax"):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--n", str(args.n)],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu")),
        )
        peaks[name] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
    ratio = peaks["nengojax"] / peaks["nengo"]
    lines = [
        "# Peak memory (one large weight matrix)",
        "",
        f"`python benchmarks/memory.py --n {args.n}`: two {args.n}-neuron ensembles, a "
        f"dense {args.n} x {args.n} float64 transform between their neurons, 100 steps; "
        f"peak RSS of each simulator's own process. {platform.platform()}, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| simulator | peak RSS (MB) |",
        "|---|---|",
        f"| nengo.Simulator | {peaks['nengo']:.0f} |",
        f"| nengojax.Simulator | {peaks['nengojax']:.0f} |",
        "",
        f"nengojax / nengo: {ratio:.2f}x.",
        "",
    ]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "memory.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
