"""Run the real-model corpus on nengo.Simulator and nengojax.Simulator and compare them.

Usage::

    python benchmarks/corpus/run.py [--quick] [--models PATTERN] [--timeout 600]
                                    [--jobs 1] [--rerun] [--no-calibrate]
                                    [--out benchmarks/results]

Every (model, simulator) pair runs in a fresh subprocess (``--worker``), so
imports, JIT caches and nengo's decoder cache are cold: what a user sees the
first time they run a model. ``--rerun`` runs each pair a second time in a new
process, reusing the on-disk caches of the first (nengo's decoder cache, and
the JAX persistent compilation cache that nengojax turns on by default; each
model gets its own empty cache directories for its first run), to measure what
persistent caches save.

Timing (all wall clock, ``time.perf_counter``):

- ``build_s``: ``Simulator(net)``;
- ``run_s``: the first ``sim.run(T)``; for nengojax this includes tracing and
  XLA compilation of the scan, which happen inside the first run;
- ``total_s`` = ``build_s + run_s`` (imports and the model's own Python
  construction are reported separately as ``import_s`` and ``net_s``);
- nengojax only: ``warm_run_s``, a second ``sim.run(T)`` in the same process
  (same scan lengths, so no compilation). ``compile_s`` is estimated as
  ``run_s - warm_run_s``; it is an estimate, since the second run also starts
  from a later state and Node functions see later times.

Agreement: each worker saves every probe's data (first run only) to ``.npz``;
the parent compares nengojax's and a float32 nengo run's data against float64
nengo, probe by probe. Probes with ``synapse=None`` (spikes, raw decoded
outputs of spiking ensembles) are filtered with ``Lowpass(0.01)`` first;
probes with their own synapse are compared as they are. ``nrmse`` is
``rms(other - nengo) / rms(nengo)``. A model *agrees* when every probe's
nrmse is at most ``max(0.05, 2 * float32 floor)``, where the float32 floor is
the same probe's nrmse of nengo at float32 (``nengo.rc`` precision 32 bits)
against nengo at float64: chaotic or spike-timing sensitive models differ
between two correct float32 and float64 simulators too, and nengojax computes
in float32. ``strict`` is the plain ``nrmse <= 0.05`` test.

The seed: every model is simulated with ``Simulator(net, seed=SEED)`` when its
network has no seed of its own, and ``numpy.random.seed(SEED)`` runs before
``build()`` (models and nengo_spa vocabularies without an ``rng`` draw from the
global numpy RNG). ``build()`` runs afresh in each worker, so each simulator
sees a freshly built model.
"""

import argparse
import fnmatch
import importlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS_DIR = os.path.join(HERE, "models")
# this checkout's nengojax and models, whatever nengojax is installed
sys.path.insert(0, ROOT)
SEED = 0
THRESHOLD = 0.05
FLOOR_FACTOR = 2.0
SIMS = ("nengo", "nengojax", "nengo32")
#: a float64 nengojax run of the models that do not agree at float32 agrees when
#: its worst probe nrmse against nengo (float64) is at most this: round-off only
FLOAT64_IDENTICAL = 1e-6
#: models in ``--quick`` and the times they run for there
QUICK = {
    "nengo_communication_channel": 0.5,
    "nengo_squaring": 0.5,
    "nengo_integrator": 0.5,
}


def list_models():
    """Names of all corpus models (modules in ``models/``), sorted."""
    return sorted(
        f[:-3] for f in os.listdir(MODELS_DIR) if f.endswith(".py") and not f.startswith("_")
    )


def _import_model(name):
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    return importlib.import_module(f"benchmarks.corpus.models.{name}")


def _probe_items(probes):
    if isinstance(probes, dict):
        return list(probes.items())
    return [(f"p{i}", p) for i, p in enumerate(probes)]


def worker(args):
    """Build and run one model on one simulator; write ``<stem>.json`` and ``<stem>.npz``."""
    t_start = time.perf_counter()
    res = {"model": args.worker, "sim": args.sim, "seed": SEED}
    stem = os.path.join(args.out_dir, f"{args.worker}.{args.sim}{args.suffix}")
    try:
        import nengo
        import numpy as np

        if args.cache_dir:
            nengo.rc.set("decoder_cache", "path", args.cache_dir)
        if args.sim == "nengo32":
            nengo.rc.set("precision", "bits", "32")
        if args.sim in ("nengojax", "nengojax64"):
            import nengojax

            sim_cls = nengojax.Simulator
            res["nengojax_file"] = nengojax.__file__
            if args.sim == "nengojax64":  # nengojax's documented float64 mode
                import functools

                import jax

                jax.config.update("jax_enable_x64", True)
                sim_cls = functools.partial(nengojax.Simulator, dtype="float64")
        else:
            sim_cls = nengo.Simulator
        mod = _import_model(args.worker)
        res["import_s"] = time.perf_counter() - t_start

        np.random.seed(SEED)
        t0 = time.perf_counter()
        net, probes, run_time = mod.build()
        res["net_s"] = time.perf_counter() - t0
        if args.run_time is not None:
            run_time = args.run_time
        res["run_time"] = run_time
        items = _probe_items(probes)
        seed = SEED if net.seed is None else None
        res["n_neurons"] = sum(e.n_neurons for e in net.all_ensembles)

        t0 = time.perf_counter()
        sim = sim_cls(net, seed=seed, progress_bar=False)
        res["build_s"] = time.perf_counter() - t0
        with sim:
            t0 = time.perf_counter()
            sim.run(run_time)
            res["run_s"] = time.perf_counter() - t0
            res["n_steps"] = int(sim.n_steps)
            res["dt"] = float(sim.dt)
            data = {k: np.asarray(sim.data[p]) for k, p in items}
            res["probes"] = {
                k: {"filter": p.synapse is None, "shape": list(data[k].shape)} for k, p in items
            }
            np.savez(stem + ".npz", **data)
            if args.sim == "nengojax" and args.warm:
                t0 = time.perf_counter()
                sim.run(run_time)
                res["warm_run_s"] = time.perf_counter() - t0
                res["compile_s"] = max(res["run_s"] - res["warm_run_s"], 0.0)
                res["warm_steps_per_s"] = res["n_steps"] / res["warm_run_s"]
        res["total_s"] = res["build_s"] + res["run_s"]
        res["steps_per_s"] = res["n_steps"] / res["run_s"]
    except Exception as e:  # noqa: BLE001 - recorded, never dropped
        res["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    res["wall_s"] = time.perf_counter() - t_start
    with open(stem + ".json", "w") as f:
        json.dump(res, f)


def _run_worker(name, sim, out_dir, cache_dir, timeout, run_time, warm, suffix=""):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--sim", sim]
    cmd += ["--out-dir", out_dir, "--cache-dir", cache_dir, "--suffix", suffix]
    if run_time is not None:
        cmd += ["--run-time", str(run_time)]
    if warm:
        cmd += ["--warm"]
    stem = os.path.join(out_dir, f"{name}.{sim}{suffix}")
    for ext in (".json", ".npz"):
        if os.path.exists(stem + ext):
            os.remove(stem + ext)
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    env["NENGOJAX_CACHE_DIR"] = os.path.join(cache_dir, "jax")  # empty on a first run
    t0 = time.perf_counter()
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"model": name, "sim": sim, "error": f"timeout after {timeout} s"}
    wall = time.perf_counter() - t0
    if not os.path.exists(stem + ".json"):
        tail = (out.stderr or out.stdout or "").strip().splitlines()[-1:] or [""]
        return {
            "model": name,
            "sim": sim,
            "error": f"worker died (rc {out.returncode}): {tail[0]}",
        }
    with open(stem + ".json") as f:
        res = json.load(f)
    res["process_s"] = wall
    return res


def _filtered(x, dt):
    import nengo

    return nengo.Lowpass(0.01).filt(x.astype(float), dt=dt, y0=0)


def compare(ref, other, out_dir):
    """Per-probe nrmse and max abs diff of ``other`` against ``ref`` (two worker results)."""
    import numpy as np

    if "error" in ref or "error" in other:
        return None
    a = np.load(os.path.join(out_dir, f"{ref['model']}.{ref['sim']}.npz"))
    b = np.load(os.path.join(out_dir, f"{other['model']}.{other['sim']}.npz"))
    probes = {}
    for k, info in ref["probes"].items():
        x = a[k].astype(float)
        if k not in b.files:
            probes[k] = {"nrmse": math.inf, "max_abs": math.inf, "note": "missing"}
            continue
        y = b[k].astype(float)
        if x.shape != y.shape:
            probes[k] = {"nrmse": math.inf, "max_abs": math.inf, "note": f"shape {y.shape}"}
            continue
        if info["filter"] and x.ndim == 2 and x.shape[0] > 1:
            x, y = _filtered(x, ref["dt"]), _filtered(y, ref["dt"])
        diff = y - x
        rms_ref = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
        rms_diff = float(np.sqrt(np.mean(diff**2))) if x.size else 0.0
        if not np.all(np.isfinite(y)):
            nrmse = math.inf
        elif rms_ref > 0:
            nrmse = rms_diff / rms_ref
        else:
            nrmse = 0.0 if rms_diff == 0 else math.inf
        probes[k] = {
            "nrmse": nrmse,
            "max_abs": float(np.max(np.abs(diff))) if diff.size else 0.0,
            "rms_ref": rms_ref,
        }
    return probes


def verdict(jax_cmp, f32_cmp):
    """(worst nrmse, agrees, strict) of nengojax against nengo, given the float32 floor."""
    if jax_cmp is None:
        return None, False, False
    worst, agrees = 0.0, True
    for k, c in jax_cmp.items():
        floor = f32_cmp[k]["nrmse"] if f32_cmp and k in f32_cmp else 0.0
        floor = floor if math.isfinite(floor) else 0.0
        worst = max(worst, c["nrmse"])
        agrees &= c["nrmse"] <= max(THRESHOLD, FLOOR_FACTOR * floor)
    return worst, agrees, worst <= THRESHOLD


def _geomean(xs):
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def run_corpus(names, out, quick, timeout, rerun, calibrate, warm):
    """Run every model on each simulator; return the results document."""
    work = os.path.join(out, "tmp", "corpus")
    cache = os.path.join(work, "cache")
    shutil.rmtree(cache, ignore_errors=True)  # first runs start from empty caches
    os.makedirs(work, exist_ok=True)
    sims = SIMS if calibrate else SIMS[:2]
    load_start = [round(x, 2) for x in os.getloadavg()]
    rows = []
    for name in names:
        run_time = QUICK.get(name, 0.2) if quick else None
        row = {"model": name}
        for sim in sims:
            cache_dir = os.path.join(cache, name, sim)
            row[sim] = _run_worker(
                name, sim, work, cache_dir, timeout, run_time, warm and sim == "nengojax"
            )
            if rerun and sim != "nengo32":
                row[sim + "_rerun"] = _run_worker(
                    name, sim, work, cache_dir, timeout, run_time, False, "_rerun"
                )
        ref = row["nengo"]
        if "error" in ref:
            row["error"] = "nengo: " + ref["error"]
        row["nengojax_vs_nengo"] = compare(ref, row["nengojax"], work)
        row["nengo32_vs_nengo"] = compare(ref, row["nengo32"], work) if calibrate else None
        worst, agrees, strict = verdict(row["nengojax_vs_nengo"], row["nengo32_vs_nengo"])
        row.update(worst_nrmse=worst, agrees=agrees, strict=strict)
        if row["nengo32_vs_nengo"]:
            row["f32_floor"] = max(c["nrmse"] for c in row["nengo32_vs_nengo"].values())
        if not agrees and "error" not in ref and "error" not in row["nengojax"]:
            # does it differ at float64 too (a bug), or only by float32 round-off
            # growing through a spike-timing-sensitive model?
            cache64 = os.path.join(cache, name, "nengojax64")
            row["nengojax64"] = _run_worker(
                name, "nengojax64", work, cache64, timeout, run_time, False
            )
            cmp64 = compare(ref, row["nengojax64"], work)
            row["nengojax64_vs_nengo"] = cmp64
            if cmp64:
                row["float64_worst_nrmse"] = max(c["nrmse"] for c in cmp64.values())
                row["float64_identical"] = row["float64_worst_nrmse"] <= FLOAT64_IDENTICAL
        try:
            row["doc"] = (_import_model(name).__doc__ or "").strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001
            row["doc"] = f"(import failed: {type(e).__name__})"
        rows.append(row)
        _print_row(row)
    machine = _machine()
    machine["loadavg_start"] = load_start
    return {
        "machine": machine,
        "quick": quick,
        "rerun": rerun,
        "results": rows,
        "summary": summarize(rows),
    }


def _t(r, key):
    return r.get(key) if isinstance(r, dict) and "error" not in r else None


def _wall_ratios(rows, suffix=""):
    """nengo total / nengojax total of the runs ``nengo{suffix}``/``nengojax{suffix}``:
    every ratio, those of models nengo takes >= 1 s on a first run, and the
    worst ``(extra seconds, model)``."""
    ratios, ratios_1s, extra = [], [], []
    for r in rows:
        first = _t(r.get("nengo"), "total_s")
        n, j = _t(r.get("nengo" + suffix), "total_s"), _t(r.get("nengojax" + suffix), "total_s")
        if n and j:
            ratios.append(n / j)
            extra.append((j - n, r["model"]))
            if first and first >= 1.0:
                ratios_1s.append(n / j)
    return ratios, ratios_1s, (max(extra) if extra else (None, None))


def summarize(rows):
    """Totals over the corpus (see module docstring)."""
    ratios, ratios_1s, worst_extra = _wall_ratios(rows)
    rr, rr_1s, worst_rextra = _wall_ratios(rows, "_rerun")
    return {
        "rerun_geomean_ratio": _geomean(rr),
        "rerun_geomean_ratio_nengo_ge_1s": _geomean(rr_1s),
        "rerun_worst_extra_s": worst_rextra[0],
        "rerun_worst_extra_model": worst_rextra[1],
        "float64_checked": sum("float64_identical" in r for r in rows),
        "float64_identical": sum(bool(r.get("float64_identical")) for r in rows),
        "models": len(rows),
        "nengo_ok": sum("error" not in r["nengo"] for r in rows),
        "nengojax_ok": sum("error" not in r["nengojax"] for r in rows),
        "agree": sum(bool(r["agrees"]) for r in rows),
        "agree_strict": sum(bool(r["strict"]) for r in rows),
        "geomean_ratio": _geomean(ratios),
        "geomean_ratio_nengo_ge_1s": _geomean(ratios_1s),
        "n_nengo_ge_1s": len(ratios_1s),
        "worst_extra_s": worst_extra[0],
        "worst_extra_model": worst_extra[1],
        "nengo_total_s": sum(_t(r["nengo"], "total_s") or 0 for r in rows),
        "nengojax_total_s": sum(_t(r["nengojax"], "total_s") or 0 for r in rows),
    }


def _machine():
    import jax
    import nengo
    import numpy

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "nengo": nengo.__version__,
        "numpy": numpy.__version__,
        "jax": jax.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import nengo_spa

        info["nengo_spa"] = nengo_spa.__version__
    except ImportError:
        info["nengo_spa"] = None
    return info


def _fmt(x, spec=".2f"):
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "inf"
    return format(x, spec)


def _print_row(r):
    n, j = r["nengo"], r["nengojax"]
    print(
        f"{r['model']:42s} nengo {_fmt(_t(n, 'total_s'))} s  nengojax {_fmt(_t(j, 'total_s'))} s"
        f"  worst nrmse {_fmt(r['worst_nrmse'], '.3g')}  agrees {r['agrees']}"
        + (f"  [{j['error']}]" if "error" in j else "")
        + (f"  [nengo {n['error']}]" if "error" in n else ""),
        flush=True,
    )


def write_markdown(doc, path, notes=None):
    """The results table (one row a model) and the totals, as markdown."""
    m, s = doc["machine"], doc["summary"]
    lines = [
        "# nengojax real-model corpus" + (" (quick)" if doc["quick"] else ""),
        "",
        f"{m['date']}; Python {m['python']}, {m['cpus']} CPUs, nengo {m['nengo']}, "
        f"nengo_spa {m['nengo_spa']}, numpy {m['numpy']}, jax {m['jax']}; {m['platform']}.",
        f"Load average (1, 5, 15 min) at the start {m.get('loadavg_start', '-')}, at the end "
        f"{m.get('loadavg', '-')}: the 2 cores are shared, so times are noisy; compare "
        "ratios, not absolute times.",
        "First run: each (model, simulator) in a fresh process (see `benchmarks/corpus/run.py`"
        " and `README.md` there for what each column measures). Times in seconds; "
        "total = `Simulator(net)` + first `sim.run(T)`; ratio = nengo total / nengojax total "
        "(> 1: nengojax faster). nengojax run (compile): the first run, and in brackets "
        "the first run less a second, warm run of the same length (an estimate of "
        "compilation); nengojax steps/s (warm): first run, and in brackets the warm run. "
        "nrmse: worst probe; f32 floor: worst probe nrmse of nengo "
        "float32 vs nengo float64.",
        "",
        "| model | T (s) | nengo build | nengo run | nengo total | nengojax build | "
        "nengojax run (compile) | nengojax total | ratio | steps/s nengo | steps/s nengojax "
        "| worst nrmse | f32 floor | agrees | note |",
        "|" + "---|" * 15,
    ]
    for r in doc["results"]:
        n, j = r["nengo"], r["nengojax"]
        nt, jt = _t(n, "total_s"), _t(j, "total_s")
        note = ""
        if "error" in n:
            note = f"nengo error: {n['error']}"
        elif "error" in j:
            note = f"nengojax error: {j['error']}"
        if notes and r["model"] in notes:
            note = (note + "; " if note else "") + notes[r["model"]]
        agree = "yes" if r["agrees"] else "no"
        if r["agrees"] and not r["strict"]:
            agree = "yes (floor)"
        if "float64_identical" in r:
            agree += (
                f" (float64: {'identical' if r['float64_identical'] else 'differs'}, "
                f"nrmse {_fmt(r['float64_worst_nrmse'], '.2g')})"
            )
        jsteps = _fmt(_t(j, "steps_per_s"), ".0f")
        if _t(j, "warm_steps_per_s") is not None:
            jsteps += f" ({_fmt(j['warm_steps_per_s'], '.0f')})"
        jrun = _fmt(_t(j, "run_s"))
        if _t(j, "compile_s") is not None:
            jrun += f" ({_fmt(j['compile_s'])})"
        lines.append(
            f"| {r['model']} | {_fmt(_t(n, 'run_time') or _t(j, 'run_time'), 'g')} "
            f"| {_fmt(_t(n, 'build_s'))} | {_fmt(_t(n, 'run_s'))} | {_fmt(nt)} "
            f"| {_fmt(_t(j, 'build_s'))} | {jrun} | {_fmt(jt)} "
            f"| {_fmt(nt / jt if nt and jt else None)} "
            f"| {_fmt(_t(n, 'steps_per_s'), '.0f')} | {jsteps} "
            f"| {_fmt(r['worst_nrmse'], '.3g')} | {_fmt(r.get('f32_floor'), '.3g')} "
            f"| {agree} | {note.replace('|', '/')} |"
        )
    if doc["rerun"]:
        lines += ["", "## Rerun (second process, on-disk caches of the first run)", ""]
        lines += ["| model | nengo total | nengojax total | ratio |", "|---|---|---|---|"]
        for r in doc["results"]:
            nt = _t(r.get("nengo_rerun"), "total_s")
            jt = _t(r.get("nengojax_rerun"), "total_s")
            lines.append(
                f"| {r['model']} | {_fmt(nt)} | {_fmt(jt)} "
                f"| {_fmt(nt / jt if nt and jt else None)} |"
            )
    lines += [
        "",
        "## Totals",
        "",
        f"- models: {s['models']}; ran on nengo: {s['nengo_ok']}; ran on nengojax: "
        f"{s['nengojax_ok']}",
        f"- agree (nrmse <= max({THRESHOLD}, {FLOOR_FACTOR:g} x float32 floor) on every probe): "
        f"{s['agree']} / {s['models']}; strictly (every probe nrmse <= {THRESHOLD}): "
        f"{s['agree_strict']} / {s['models']}",
        f"- of the models that do not agree at float32, run again with nengojax at float64: "
        f"{s.get('float64_identical', 0)} / {s.get('float64_checked', 0)} identical to nengo "
        f"(every probe nrmse <= {FLOAT64_IDENTICAL:g}: float32 round-off, not a different model)",
        f"- geometric mean of nengo total / nengojax total: {_fmt(s['geomean_ratio'])} "
        f"(all models that ran on both); {_fmt(s['geomean_ratio_nengo_ge_1s'])} over the "
        f"{s['n_nengo_ge_1s']} models where nengo takes >= 1 s",
        f"- worst extra seconds (nengojax total - nengo total): {_fmt(s['worst_extra_s'])} "
        f"({s['worst_extra_model']})",
        f"- rerun (second process, warm disk caches): geometric mean of nengo total / "
        f"nengojax total {_fmt(s.get('rerun_geomean_ratio'))}; "
        f"{_fmt(s.get('rerun_geomean_ratio_nengo_ge_1s'))} over the models where nengo "
        f"takes >= 1 s on a first run; worst extra seconds "
        f"{_fmt(s.get('rerun_worst_extra_s'))} ({s.get('rerun_worst_extra_model')})",
        f"- sum of totals: nengo {_fmt(s['nengo_total_s'], '.1f')} s, nengojax "
        f"{_fmt(s['nengojax_total_s'], '.1f')} s",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main(argv=None):
    """Command line entry point (see module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="short runs (0.2-0.5 s); with no --models, only a few small models",
    )
    p.add_argument("--models", default=None, help="fnmatch pattern(s), comma separated")
    p.add_argument("--timeout", type=float, default=600, help="seconds per worker")
    p.add_argument("--jobs", type=int, default=1, help="only 1 is supported (shared cores)")
    p.add_argument("--rerun", action="store_true", help="run each pair again, warm caches")
    p.add_argument("--no-calibrate", action="store_true", help="skip the nengo float32 run")
    p.add_argument("--no-warm", action="store_true", help="skip nengojax's second run")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument(
        "--notes",
        default=os.path.join(HERE, "notes.json"),
        help="JSON {model: note} added to the table",
    )
    p.add_argument(
        "--from-json", default=None, help="rewrite the markdown from this results JSON only"
    )
    # worker mode
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--sim", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--run-time", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--suffix", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    notes = None
    if args.notes:
        with open(args.notes) as f:
            notes = json.load(f)
    if args.from_json:
        with open(args.from_json) as f:
            doc = json.load(f)
        doc["summary"] = summarize(doc["results"])
        write_markdown(doc, os.path.splitext(args.from_json)[0] + ".md", notes)
        return 0
    if args.jobs != 1:
        p.error("--jobs: only 1 is supported (the timings must not share cores)")
    names = list_models()
    if args.quick and not args.models:
        names = [n for n in names if n in QUICK]
    if args.models:
        pats = args.models.split(",")
        names = [n for n in names if any(fnmatch.fnmatch(n, q) for q in pats)]
    os.makedirs(args.out, exist_ok=True)
    doc = run_corpus(
        names,
        args.out,
        args.quick,
        args.timeout,
        args.rerun,
        not args.no_calibrate,
        not args.no_warm,
    )
    stem = "corpus_quick" if args.quick else "corpus"
    with open(os.path.join(args.out, stem + ".json"), "w") as f:
        json.dump(doc, f, indent=1, default=float)
    write_markdown(doc, os.path.join(args.out, stem + ".md"), notes)
    print(json.dumps(doc["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
