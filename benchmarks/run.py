"""Benchmark nengojax against nengo.Simulator on the networks in `networks.py`.

Usage::

    python benchmarks/run.py [--quick] [--only integrator,cconv] [--neuron-type LIF]
                             [--out benchmarks/results] [--peer-venv PATH]

Each network runs in its own subprocess (clean JIT caches and a clean memory
peak). For each: build and compile times, steps/s at minibatch 1, item-steps/s
at minibatch 32 (nengo: 32 sequential runs, reset between), training samples/s
(``fit``, when the installed nengojax has it), peak memory, and a roofline
estimate per step. The ratios against nengo in the same run are the result;
absolute times depend on the machine. Writes ``bench.json`` and ``bench.md``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SIZES = {  # network -> (full kwargs, quick kwargs)
    "tutorial": ({}, {}),
    "integrator": ({}, {"dimensions": 8, "neurons_per_d": 32}),
    "cconv": ({}, {"dimensions": 8, "neurons_per_d": 32}),
    "pes": ({}, {"dimensions": 8, "neurons_per_d": 32}),
    "basal_ganglia": ({}, {"dimensions": 8, "neurons_per_ensemble": 32}),
    "random_network": ({}, {"n_ensembles": 8, "neurons": 128}),
    "large": ({}, {"n_ensembles": 10, "neurons": 128}),
}


def _best(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_machine():
    """Streaming bandwidth (GB/s) and f32 matmul throughput (GFLOP/s) of this machine."""
    import jax
    import jax.numpy as jnp

    x = jnp.ones(32 * 1024 * 1024, jnp.float32)  # 128 MB
    f = jax.jit(lambda a: a * 1.0001 + 1.0)
    f(x).block_until_ready()
    t = _best(lambda: f(x).block_until_ready(), 5)
    bandwidth = 2 * x.nbytes / t / 1e9
    a = jnp.ones((1024, 1024), jnp.float32)
    g = jax.jit(lambda m: m @ m)
    g(a).block_until_ready()
    t = _best(lambda: g(a).block_until_ready(), 5)
    return {"bandwidth_GBps": bandwidth, "matmul_GFLOPs": 2 * 1024**3 / t / 1e9}


def roofline(compiled, machine):
    """Bytes of params and state touched per step, flops of the products, and the
    time per step these bound (at the machine's bandwidth and flop rate)."""
    import numpy as np

    layout = compiled.layout
    param_bytes = sum(b.init.nbytes for b in layout.bases if b.kind in ("param", "const"))
    state_bytes = sum(b.init.nbytes for b in layout.bases if b.kind in ("state", "scratch"))
    flops = 0
    for op in compiled.step_order:
        name = type(op).__name__
        if name in ("DotInc", "BsrDotInc", "SparseDotInc"):
            flops += 2 * np.prod(op.A.shape if not op.A.sparse else (op.A.base.init.size,))
        elif name == "SimNeurons":
            flops += 20 * op.J.size
        elif name == "ElementwiseInc":
            flops += 2 * op.Y.size
    moved = param_bytes + 2 * state_bytes
    bound = max(
        moved / (machine["bandwidth_GBps"] * 1e9), flops / (machine["matmul_GFLOPs"] * 1e9)
    )
    return {
        "param_bytes": int(param_bytes),
        "state_bytes": int(state_bytes),
        "flops_per_step": int(flops),
        "bound_steps_per_s": 1 / bound,
    }


def bench_one(name, neuron_type, quick, n_steps, seq_steps, batch, reps, machine):
    import jax
    import nengo
    import numpy as np

    import nengojax
    from benchmarks.networks import NETWORKS

    nengo.rc.set("decoder_cache", "enabled", "False")
    nt = getattr(nengo, neuron_type)()
    kwargs = SIZES[name][1 if quick else 0]
    net, inp, probe = NETWORKS[name](nt, **kwargs)
    out = {
        "network": name,
        "kwargs": kwargs,
        "n_neurons": int(sum(e.n_neurons for e in net.all_ensembles)),
        "n_ensembles": len(net.all_ensembles),
        "n_connections": len(net.all_connections),
    }

    # --- nengo ---
    t0 = time.perf_counter()
    ref = nengo.Simulator(net, progress_bar=False)
    nengo_build = time.perf_counter() - t0
    with ref:
        ref.run_steps(n_steps)
        ref_out = ref.data[probe].copy()
        ref.reset()
        t_run = _best(lambda: (ref.reset(), ref.run_steps(n_steps)), reps)

        def seq():
            for _ in range(batch):
                ref.reset()
                ref.run_steps(seq_steps)

        t_seq = _best(seq, 1)
    out["nengo"] = {
        "build_s": nengo_build,
        "steps_per_s": n_steps / t_run,
        "seq_item_steps_per_s": batch * seq_steps / t_seq,
    }

    # --- nengojax, minibatch 1 ---
    t0 = time.perf_counter()
    sim = nengojax.Simulator(net, progress_bar=False)
    build = time.perf_counter() - t0
    with sim:
        t0 = time.perf_counter()
        sim.run_steps(n_steps)
        first = time.perf_counter() - t0
        jax_out = sim.data[probe].copy()
        t_run = _best(lambda: (sim.reset(), sim.run_steps(n_steps)), reps)
        compile_s = max(first - t_run, 0.0)
        out["roofline"] = roofline(sim.compiled, machine)
    out["nengojax_mb1"] = {
        "build_s": build,
        "compile_s": compile_s,
        "steps_per_s": n_steps / t_run,
        "max_abs_diff_vs_nengo": float(np.abs(jax_out - ref_out).max()),
        "max_abs_value": float(np.abs(ref_out).max()),
    }

    # --- nengojax, minibatch 32 ---
    t0 = time.perf_counter()
    simb = nengojax.Simulator(net, minibatch_size=batch, progress_bar=False)
    build_b = time.perf_counter() - t0
    with simb:
        t0 = time.perf_counter()
        simb.run_steps(n_steps)
        first = time.perf_counter() - t0
        t_run = _best(lambda: (simb.reset(), simb.run_steps(n_steps)), reps)
    out["nengojax_mb32"] = {
        "build_s": build_b,
        "compile_s": max(first - t_run, 0.0),
        "item_steps_per_s": batch * n_steps / t_run,
    }

    # --- training (fit), where available ---
    if hasattr(nengojax.Simulator, "fit") and inp.size_out > 0:
        try:
            out["fit"] = bench_fit(nengojax, net, inp, probe, batch, quick)
        except Exception as e:  # noqa: BLE001  (report, don't hide)
            out["fit"] = {"error": f"{type(e).__name__}: {e}"}

    out["peak_rss_mb"] = _peak_rss_mb()
    out["jax_backend"] = jax.default_backend()
    return out


def bench_fit(nengojax, net, inp, probe, batch, quick):
    import numpy as np
    import optax

    n_items = batch * (4 if quick else 32)
    n_steps = 10
    rng = np.random.RandomState(0)
    x = rng.uniform(-0.5, 0.5, (n_items, n_steps, inp.size_out))
    y = rng.uniform(-0.5, 0.5, (n_items, n_steps, probe.size_in))
    with nengojax.Simulator(net, minibatch_size=batch, progress_bar=False) as sim:
        sim.compile(optimizer=optax.adam(1e-3), loss={probe: nengojax.losses.mse})
        t0 = time.perf_counter()
        sim.fit({inp: x}, {probe: y}, epochs=1, verbose=0)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim.fit({inp: x}, {probe: y}, epochs=2, verbose=0)
        t = (time.perf_counter() - t0) / 2
    return {"samples_per_s": n_items / t, "first_epoch_s": first, "n_steps": n_steps}


def run_peer(venv, name, quick, n_steps, batch, reps):
    """NengoDL's figures for one network, from its own venv (see peer_nengodl.py)."""
    python = os.path.join(venv, "bin", "python")
    spec = {
        "quick": quick,
        "n_steps": n_steps,
        "batch": batch,
        "reps": reps,
        "kwargs": SIZES[name][1 if quick else 0],
    }
    cmd = [python, os.path.join(HERE, "peer_nengodl.py"), name, json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((li for li in proc.stdout.splitlines() if li.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(line[len("RESULT ") :])


def geomean(values):
    import numpy as np

    values = [v for v in values if v and v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def summarize(results):
    """Ratios against nengo, per network and geometric means."""
    rows = []
    for r in results:
        if "error" in r:
            rows.append({"network": r["network"], "error": r["error"]})
            continue
        n, j1, j32 = r["nengo"], r["nengojax_mb1"], r["nengojax_mb32"]
        rows.append(
            {
                "network": r["network"],
                "n_neurons": r["n_neurons"],
                "mb1_ratio": j1["steps_per_s"] / n["steps_per_s"],
                "mb32_ratio": j32["item_steps_per_s"] / n["seq_item_steps_per_s"],
                "build_compile_s": j1["build_s"] + j1["compile_s"],
                "build_budget_s": 2 * n["build_s"] + 1,
                "roofline_frac": j1["steps_per_s"] / r["roofline"]["bound_steps_per_s"],
            }
        )
        peer = r.get("nengodl", {})
        if "mb1" in peer:
            rows[-1]["vs_nengodl_mb1"] = j1["steps_per_s"] / peer["mb1"]["item_steps_per_s"]
            rows[-1]["vs_nengodl_mb32"] = (
                j32["item_steps_per_s"] / peer["mb32"]["item_steps_per_s"]
            )
    ok = [row for row in rows if "error" not in row]
    return {
        "rows": rows,
        "geomean_mb1_ratio": geomean([row["mb1_ratio"] for row in ok]),
        "min_mb1_ratio": min((row["mb1_ratio"] for row in ok), default=float("nan")),
        "geomean_mb32_ratio": geomean([row["mb32_ratio"] for row in ok]),
        "all_within_build_budget": all(
            row["build_compile_s"] <= row["build_budget_s"] for row in ok
        ),
    }


def markdown(info, results, summary):
    lines = [
        f"# nengojax benchmarks ({'quick' if info['quick'] else 'full'})",
        "",
        f"Machine: {info['platform']}, {info['cpu_count']} CPUs, JAX backend "
        f"{info['jax_backend']}; measured bandwidth {info['machine']['bandwidth_GBps']:.1f} "
        f"GB/s, f32 matmul {info['machine']['matmul_GFLOPs']:.0f} GFLOP/s.",
        f"Versions: python {info['python']}, jax {info['jax']}, nengo {info['nengo']}, "
        f"numpy {info['numpy']}. Neurons: {info['neuron_type']}; {info['n_steps']} steps "
        f"(dt 1 ms), best of {info['reps']}; minibatch {info['batch']} against "
        f"{info['batch']} sequential nengo runs of {info['seq_steps']} steps.",
        "",
        "| network | neurons | nengo steps/s | nengojax steps/s | ratio mb1 | nengo seq "
        "item-steps/s | nengojax mb32 item-steps/s | ratio mb32 | nengo build s | "
        "nengojax build+compile s | fit samples/s | peak MB | % of roofline |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r, row in zip(results, summary["rows"], strict=True):
        if "error" in row:
            lines.append(f"| {row['network']} | error: {row['error']} |")
            continue
        fit = r.get("fit", {}).get("samples_per_s")
        lines.append(
            f"| {r['network']} | {r['n_neurons']} | {r['nengo']['steps_per_s']:.0f} | "
            f"{r['nengojax_mb1']['steps_per_s']:.0f} | {row['mb1_ratio']:.1f}x | "
            f"{r['nengo']['seq_item_steps_per_s']:.0f} | "
            f"{r['nengojax_mb32']['item_steps_per_s']:.0f} | {row['mb32_ratio']:.1f}x | "
            f"{r['nengo']['build_s']:.2f} | {row['build_compile_s']:.2f} | "
            f"{'' if fit is None else f'{fit:.0f}'} | {r['peak_rss_mb']:.0f} | "
            f"{100 * row['roofline_frac']:.0f} |"
        )
    peers = [row for row in summary["rows"] if "vs_nengodl_mb1" in row]
    if peers:
        lines += ["", "| network | vs NengoDL 3.6, mb1 | vs NengoDL 3.6, mb32 |", "|---|---|---|"]
        lines += [
            f"| {row['network']} | {row['vs_nengodl_mb1']:.1f}x | {row['vs_nengodl_mb32']:.1f}x |"
            for row in peers
        ]
    lines += [
        "",
        f"Geometric mean speedup over nengo: minibatch 1 {summary['geomean_mb1_ratio']:.1f}x "
        f"(lowest {summary['min_mb1_ratio']:.1f}x); minibatch {info['batch']} "
        f"{summary['geomean_mb32_ratio']:.1f}x.",
        f"Build + compile within 2 x nengo build + 1 s on every network: "
        f"{summary['all_within_build_budget']}.",
        "",
        "Roofline: the time per step bounded by streaming every param and state byte "
        "from memory at the measured bandwidth, or by the products' flops at the "
        "measured matmul rate, whichever is longer. Over 100 % means the working set "
        "stays in cache between steps (the bound assumes it does not); build times "
        "include nengo's own builder, which nengojax runs.",
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--only", default=None, help="comma-separated networks")
    parser.add_argument("--neuron-type", default="LIF")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument(
        "--peer-venv", default=None, help="NengoDL 3.6 venv: add its figures (optional)"
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--machine", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = args.quick
    n_steps, seq_steps, batch, reps = (100, 50, 32, 2) if quick else (1000, 200, 32, 3)

    if args.one:  # child process: one network, JSON on stdout
        machine = json.loads(args.machine)
        res = bench_one(
            args.one, args.neuron_type, quick, n_steps, seq_steps, batch, reps, machine
        )
        print("RESULT " + json.dumps(res))
        return

    import jax
    import nengo
    import numpy as np

    names = args.only.split(",") if args.only else list(SIZES)
    machine = measure_machine()
    info = {
        "quick": quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "nengo": nengo.__version__,
        "numpy": np.__version__,
        "neuron_type": args.neuron_type,
        "n_steps": n_steps,
        "seq_steps": seq_steps,
        "batch": batch,
        "reps": reps,
        "machine": machine,
    }
    results = []
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--neuron-type", args.neuron_type]
        cmd += ["--machine", json.dumps(machine)] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((li for li in proc.stdout.splitlines() if li.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            res = {"network": name, "error": proc.stderr.strip().splitlines()[-1:]}
        else:
            res = json.loads(line[len("RESULT ") :])
        if args.peer_venv and "error" not in res:
            res["nengodl"] = run_peer(args.peer_venv, name, quick, n_steps, batch, reps)
        results.append(res)
        print(f"{name}: done", flush=True)
    summary = summarize(results)
    os.makedirs(args.out, exist_ok=True)
    tag = "quick" if quick else "full"
    with open(os.path.join(args.out, f"bench_{tag}.json"), "w") as f:
        json.dump({"info": info, "results": results, "summary": summary}, f, indent=1)
    md = markdown(info, results, summary)
    with open(os.path.join(args.out, f"bench_{tag}.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
