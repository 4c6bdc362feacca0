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
    "pes_2048": ({}, {"n_neurons": 256, "dimensions": 8}),
    "relu_array": ({}, {"n_ensembles": 20, "n_neurons": 50}),
    "spa_states": ({}, {"n_states": 2, "dimensions": 32, "neurons_per_d": 10}),
    "conv_net": ({}, {"size": 12, "channels": 4}),
}
NEW_SHAPES = ("pes_2048", "relu_array", "spa_states", "conv_net")  # issue 14


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


def cache_sizes() -> dict[str, int]:
    """Data/unified cache sizes in bytes of CPU 0, by level (from Linux sysfs; {} elsewhere)."""
    import glob

    sizes = {}
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(os.path.join(d, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(d, "level")) as f:
                level = int(f.read())
            with open(os.path.join(d, "size")) as f:
                text = f.read().strip()
        except OSError:
            continue
        mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1], 1)
        sizes[f"L{level}"] = int(text.rstrip("KMG")) * mult
    return sizes


def _stream_bandwidth(nbytes: int, repeats: int) -> float:
    """Read+write bandwidth (GB/s) of an in-place scale over ``nbytes``, looped on device."""
    import jax
    import jax.numpy as jnp

    x = jnp.ones(max(nbytes // 4, 1024), jnp.float32)
    f = jax.jit(
        lambda a: jax.lax.fori_loop(0, repeats, lambda i, b: b * 1.0001 + 1.0, a),
        donate_argnums=0,
    )
    x = f(x).block_until_ready()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        x = f(x)
        x.block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * x.nbytes * repeats / min(times) / 1e9


def measure_machine() -> dict:
    """Streaming bandwidth (GB/s) from memory and from each cache level, f32 matmul
    throughput (GFLOP/s) and the cache sizes of this machine.

    Each cache level's bandwidth streams a buffer of half that level's size (so
    it stays there); ``bandwidth_GBps`` streams 128 MB (main memory).
    """
    import jax
    import jax.numpy as jnp

    caches = cache_sizes() if jax.default_backend() == "cpu" else {}
    bandwidth = _stream_bandwidth(128 * 1024**2, 4)
    cache_bw = {
        level: _stream_bandwidth(size // 2, max(4, int(2e9 // max(size, 1))))
        for level, size in caches.items()
        if level != "L1"
    }
    a = jnp.ones((1024, 1024), jnp.float32)
    g = jax.jit(lambda m: m @ m)
    g(a).block_until_ready()
    t = _best(lambda: g(a).block_until_ready(), 5)
    return {
        "bandwidth_GBps": bandwidth,
        "matmul_GFLOPs": 2 * 1024**3 / t / 1e9,
        "cache_bytes": caches,
        "cache_bandwidth_GBps": cache_bw,
    }


def _tree_bytes(tree):
    import jax

    return int(sum(getattr(x, "nbytes", 0) for x in jax.tree_util.tree_leaves(tree)))


def roofline(model, machine: dict, minibatch_size: int | None = None) -> dict:
    """Bytes and flops per step of ``model.run``, and the time per step they bound.

    Each step reads every param and state byte and writes the state (``moved``
    = params + 2 x state; intermediates are assumed to stay in registers or L1).
    Where that working set fits in a cache level (params + state <= its size),
    it stays there between steps and streams at that level's measured bandwidth;
    otherwise at main memory's. Flops are XLA's cost analysis of one step, at the
    measured matmul rate. The bound is the longer of the two times.
    """
    import jax

    params = model.init_params()
    state = model.init_state(minibatch_size=minibatch_size)
    param_bytes = _tree_bytes(params)
    state_bytes = _tree_bytes(state)
    flops = 0.0
    try:
        lowered = jax.jit(lambda p, s: model.run(p, s, 1)).lower(params, state)
        cost = lowered.compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list | tuple) else cost
        flops = float(cost.get("flops", 0.0))
    except Exception:  # noqa: BLE001  (cost analysis is optional per backend)
        pass
    moved = param_bytes + 2 * state_bytes
    working_set = param_bytes + state_bytes
    level, bandwidth = "memory", machine["bandwidth_GBps"]
    # the fastest measured level that holds the working set (a small buffer's
    # measurement also pays loop overhead, so an inner level can measure slower)
    for lvl, bw in machine.get("cache_bandwidth_GBps", {}).items():
        if working_set <= machine["cache_bytes"][lvl] and bw > bandwidth:
            level, bandwidth = lvl, bw
    bound = max(moved / (bandwidth * 1e9), flops / (machine["matmul_GFLOPs"] * 1e9))
    return {
        "param_bytes": param_bytes,
        "state_bytes": state_bytes,
        "bytes_per_step": moved,
        "flops_per_step": int(flops),
        "resident_in": level,
        "bound_steps_per_s": 1 / bound,
    }


def kernel_counts(model, batch: int) -> dict:
    """Per-step HLO instructions, fusions and kernels of the time scan at minibatch
    1 and ``batch`` (see ``hlo.py``)."""
    from benchmarks.hlo import kernel_budget

    out = {}
    for mb in (1, batch):
        res = kernel_budget(model, None if mb == 1 else mb)
        out[f"mb{mb}"] = {
            k: res[k] for k in ("instructions", "ops", "fusions", "kernels", "by_kind")
        }
    return out


def bench_one(
    name, neuron_type, quick, n_steps, seq_steps, batch, reps, machine, fit=True, cache=False
):
    import jax
    import nengo
    import numpy as np

    import nengojax
    from benchmarks.networks import NETWORKS

    nengo.rc.set("decoder_cache", "enabled", str(bool(cache)))
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

        t_seq = _best(seq, max(1, reps - 1))
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
        out["roofline_mb32"] = roofline(sim.compiled, machine, batch)
        out["hlo"] = kernel_counts(sim.compiled, batch)
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
        "batch": batch,
        "build_s": build_b,
        "compile_s": max(first - t_run, 0.0),
        "item_steps_per_s": batch * n_steps / t_run,
    }

    # --- training (fit), where available ---
    if fit and hasattr(nengojax.Simulator, "fit") and inp.size_out > 0:
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
                "roofline_frac_mb32": (
                    j32["item_steps_per_s"]
                    / j32.get("batch", 32)
                    / r["roofline_mb32"]["bound_steps_per_s"]
                    if "roofline_mb32" in r
                    else float("nan")
                ),
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


def _cache_text(machine):
    caches = machine.get("cache_bandwidth_GBps", {})
    if not caches:
        return "no cache levels measured"
    return ", ".join(
        f"{lvl} {machine['cache_bytes'][lvl] / 1024**2:g} MB at {bw:.0f} GB/s"
        for lvl, bw in sorted(caches.items())
    )


def _pair(r, key, batch):
    hlo = r.get("hlo")
    if not hlo:
        return ""
    return f"{hlo['mb1'][key]:.0f}/{hlo[f'mb{batch}'][key]:.0f}"


def markdown(info, results, summary):
    lines = [
        f"# nengojax benchmarks ({info.get('tag') or ('quick' if info['quick'] else 'full')})",
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
        "nengojax build+compile s | fit samples/s | peak MB | % of roofline mb1/mb32 | "
        "HLO ops/step mb1/mb32 | fusions/step mb1/mb32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
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
            f"{100 * row['roofline_frac']:.0f}/{100 * row['roofline_frac_mb32']:.0f} | "
            f"{_pair(r, 'instructions', info['batch'])} | "
            f"{_pair(r, 'fusions', info['batch'])} |"
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
        "(read params and state, write state) at the bandwidth of where they live, or "
        "by the step's flops (XLA cost analysis) at the measured matmul rate, whichever "
        "is longer. A working set (params + state) that fits in a cache level stays "
        "there between steps and streams at that level's measured bandwidth "
        f"({_cache_text(info['machine'])}); larger ones stream from memory. "
        "Per-kernel launch/dispatch costs are not in the bound: small networks sit far "
        "below it. HLO ops/step: instructions in the time scan's loop body of the "
        "optimized HLO on this backend; fusions/step: its fused kernels "
        "(`benchmarks/hlo.py`; CPU counts are a proxy for a GPU's). Build times include "
        "nengo's own builder, which nengojax runs.",
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument(
        "--only", default=None, help="comma-separated networks ('shapes': issue 14's new ones)"
    )
    parser.add_argument("--neuron-type", default="LIF")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument(
        "--peer-venv", default=None, help="NengoDL 3.6 venv: add its figures (optional)"
    )
    parser.add_argument("--steps", type=int, default=None, help="steps per timed run")
    parser.add_argument(
        "--seq-steps", type=int, default=None, help="steps of each sequential nengo run"
    )
    parser.add_argument("--reps", type=int, default=None, help="best of this many runs")
    parser.add_argument(
        "--tag", default=None, help="output name bench_TAG (default: quick or full)"
    )
    parser.add_argument("--no-fit", action="store_true", help="skip the fit measurement")
    parser.add_argument(
        "--decoder-cache",
        action="store_true",
        help="let nengo cache decoder solves (nengojax's builds reuse the reference's; "
        "build times then no longer compare)",
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--machine", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = args.quick
    n_steps, seq_steps, batch, reps = (100, 50, 32, 2) if quick else (1000, 200, 32, 3)
    n_steps = args.steps or n_steps
    seq_steps = args.seq_steps or seq_steps
    reps = args.reps or reps

    if args.one:  # child process: one network, JSON on stdout
        machine = json.loads(args.machine)
        res = bench_one(
            args.one,
            args.neuron_type,
            quick,
            n_steps,
            seq_steps,
            batch,
            reps,
            machine,
            fit=not args.no_fit,
            cache=args.decoder_cache,
        )
        print("RESULT " + json.dumps(res))
        return

    import jax
    import nengo
    import numpy as np

    names = args.only.split(",") if args.only else list(SIZES)
    if "shapes" in names:  # the network shapes of issue 14
        i = names.index("shapes")
        names[i : i + 1] = NEW_SHAPES
    machine = measure_machine()
    info = {
        "quick": quick,
        "tag": args.tag,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
        "matmul_precision": jax.config.jax_default_matmul_precision,
        "nengo": nengo.__version__,
        "numpy": np.__version__,
        "neuron_type": args.neuron_type,
        "n_steps": n_steps,
        "seq_steps": seq_steps,
        "batch": batch,
        "reps": reps,
        "decoder_cache": args.decoder_cache,
        "machine": machine,
    }
    results = []
    tag = args.tag or ("quick" if quick else "full")
    md = ""
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--neuron-type", args.neuron_type]
        cmd += ["--machine", json.dumps(machine)] + (["--quick"] if quick else [])
        for opt, val in (("--steps", args.steps), ("--seq-steps", args.seq_steps)):
            cmd += [opt, str(val)] if val else []
        cmd += ["--reps", str(reps)]
        cmd += ["--no-fit"] if args.no_fit else []
        cmd += ["--decoder-cache"] if args.decoder_cache else []
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
        # written after every network: a run cut short keeps what it measured
        md = write_results(args.out, tag, info, results)
    print(md)


def write_results(out: str, tag: str, info: dict, results: list) -> str:
    """Write ``bench_TAG.json`` and ``bench_TAG.md`` into ``out``; return the markdown."""
    summary = summarize(results)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"bench_{tag}.json"), "w") as f:
        json.dump({"info": info, "results": results, "summary": summary}, f, indent=1)
    md = markdown(info, results, summary)
    with open(os.path.join(out, f"bench_{tag}.md"), "w") as f:
        f.write(md)
    return md


if __name__ == "__main__":
    main()
