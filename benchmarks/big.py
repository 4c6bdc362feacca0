"""Scale checks: a 1M-neuron model at minibatch 1, and compile time for 1000 ensembles.

Usage: ``python benchmarks/big.py [--neurons 1000000] [--ensembles 1000] [--out DIR]``

Reports build time (nengo's builder, run by nengojax), compile time, steps/s
and the process's peak memory, and writes ``big.json`` / ``big.md``.
"""

import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


NOTE = (
    "\nBuild s is the Simulator constructor: nengo's builder with nengojax's shared "
    "decoder solves, nengo's operator merges (made on bit sets) and nengojax's layout; "
    "nengo build s is nengo.Simulator's constructor on the same network, and decoders "
    "equal says whether every connection's weights are nengo's bit for bit. Compile s is "
    "the first run minus a later run of the same length. Peak GB is the process's peak "
    "resident memory during nengojax's build and runs.\n"
)


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def many_ensembles(n_ensembles, neurons, dimensions, seed=0, solve=True):
    """A chain of ensembles (each decoding into the next) with a live input.

    With ``solve=False`` the chain's connections get random decoders
    (``nengo.solvers.NoSolver``) instead of solved ones: the same shapes and
    the same work per step, without the decoder solves that dominate the
    build (minutes for 1M neurons on a few cores).
    """
    import nengo
    import numpy as np

    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(lambda t: np.sin(2 * np.pi * np.arange(1, dimensions + 1) * t))
        ens = [nengo.Ensemble(neurons, dimensions) for _ in range(n_ensembles)]
        nengo.Connection(inp, ens[0])
        for a, b in zip(ens[:-1], ens[1:], strict=True):
            if solve:
                nengo.Connection(a, b)
            else:
                dec = rng.uniform(-1, 1, (neurons, dimensions)) / neurons
                nengo.Connection(a, b, solver=nengo.solvers.NoSolver(dec))
        p = nengo.Probe(ens[-1], synapse=0.01)
    return net, p


def nengo_build(net):
    """Seconds nengo.Simulator takes to build ``net``, and its built model."""
    import nengo

    t0 = time.perf_counter()
    sim = nengo.Simulator(net, progress_bar=False, optimize=True)
    seconds = time.perf_counter() - t0
    sim.close()
    return seconds, sim.model


def same_decoders(net, nengo_model, sim):
    """Whether every connection's weights equal nengo's, bit for bit."""
    import numpy as np

    return all(
        np.array_equal(nengo_model.params[c].weights, sim.data[c].weights)
        for c in net.all_connections
    )


def measure(net, n_steps=200, compare=False):
    """nengojax's build, compile and steps/s (and its memory peak); then, with
    ``compare``, nengo.Simulator's build of the same network and its decoders."""
    import nengojax

    t0 = time.perf_counter()
    sim = nengojax.Simulator(net, progress_bar=False)
    build = time.perf_counter() - t0
    with sim:
        t0 = time.perf_counter()
        sim.run_steps(n_steps)
        first = time.perf_counter() - t0
        sim.reset()
        t0 = time.perf_counter()
        sim.run_steps(n_steps)
        run = time.perf_counter() - t0
    result = {
        "build_s": build,
        "compile_s": max(first - run, 0.0),
        "steps_per_s": n_steps / run,
        "peak_rss_GB": peak_rss_gb(),  # before nengo's build adds its own
    }
    if compare:
        result["nengo_build_s"], nengo_model = nengo_build(net)
        result["decoders_equal"] = same_decoders(net, nengo_model, sim)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1_000_000)
    parser.add_argument("--ensembles", type=int, default=1000)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--part", choices=["million", "ensembles"], default=None)
    parser.add_argument(
        "--no-solve",
        action="store_true",
        help="random decoders in the 1M-neuron chain (NoSolver): same step, fast build",
    )
    parser.add_argument(
        "--no-nengo", action="store_true", help="skip nengo.Simulator's build (minutes at 1M)"
    )
    args = parser.parse_args()
    import nengo

    nengo.rc.set("decoder_cache", "enabled", "False")
    if args.part is None:  # each part in its own process, for its own memory peak
        results = {}
        for part in ("ensembles", "million"):
            cmd = [sys.executable, __file__, "--part", part]
            cmd += ["--neurons", str(args.neurons), "--ensembles", str(args.ensembles)]
            cmd += ["--no-solve"] if args.no_solve else []
            cmd += ["--no-nengo"] if args.no_nengo else []
            out = os.popen(" ".join(cmd)).read()
            line = next(li for li in out.splitlines() if li.startswith("RESULT "))
            results[part] = json.loads(line[7:])
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "big.json"), "w") as f:
            json.dump(results, f, indent=1)
        md = [
            "| check | size | build s | nengo build s | build speedup | decoders equal "
            "| compile s | steps/s | peak GB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for part, r in results.items():
            nengo_s = r.get("nengo_build_s")
            nengo_cols = (
                f"{nengo_s:.1f} | {nengo_s / r['build_s']:.2f}x | {r['decoders_equal']}"
                if nengo_s
                else "- | - | -"
            )
            md.append(
                f"| {part} | {r['size']} | {r['build_s']:.1f} | {nengo_cols} | "
                f"{r['compile_s']:.1f} | {r['steps_per_s']:.0f} | {r['peak_rss_GB']:.2f} |"
            )
        text = "\n".join(md) + "\n" + NOTE
        with open(os.path.join(args.out, "big.md"), "w") as f:
            f.write(text)
        print(text)
        return
    if args.part == "ensembles":
        net, _ = many_ensembles(args.ensembles, 50, 2)
        res = measure(net, compare=not args.no_nengo)
        res["size"] = f"{args.ensembles} ensembles x 50 neurons"
    else:
        per = 1000
        net, _ = many_ensembles(args.neurons // per, per, 4, solve=not args.no_solve)
        res = measure(net, n_steps=50, compare=not args.no_nengo)
        res["size"] = f"{args.neurons} neurons ({args.neurons // per} ensembles x {per})"
        res["size"] += " (NoSolver decoders)" if args.no_solve else ""
    print("RESULT " + json.dumps(res))


if __name__ == "__main__":
    main()
