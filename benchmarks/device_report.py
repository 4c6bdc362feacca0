"""Write the device check's report (``gpu.md``) from the outputs of ``device_check.sh``.

Usage: ``python benchmarks/device_report.py --dir OUT --report gpu.md
[--status run=0,fit=0,big=0] [--elapsed S] [--dry-run]``

Reads ``bench_device.json`` (benchmarks/run.py), ``fit_tutorial.json`` and
``big.json`` from ``--dir``; records the device (``jax.devices()``), versions,
the matmul precision the runs used, the benchmark table, the per-step kernel
and fusion counts, and the steps/s the launch + bandwidth model of
docs/performance.rst predicts next to the measured ones.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.hlo import predict_steps_per_s  # noqa: E402


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _versions():
    out = {"python": platform.python_version()}
    for dist in ("nengojax", "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "nengo"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


_DEFAULT_PRECISION = "None (XLA's default: f32 matmuls may run in TF32 on Ampere+ GPUs)"


def _device_lines():
    import jax

    lines = [
        f"- jax.devices(): {', '.join(f'{d.platform}:{d.device_kind}' for d in jax.devices())}",
        f"- JAX backend: {jax.default_backend()}",
        "- jax_default_matmul_precision: "
        + (jax.config.jax_default_matmul_precision or _DEFAULT_PRECISION),
    ]
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if smi.returncode == 0:
            lines.append(f"- nvidia-smi: {smi.stdout.strip()}")
    except (OSError, subprocess.SubprocessError):
        pass
    return lines


def kernel_table(bench: dict) -> list[str]:
    """Markdown rows: per-step kernels and fusions, bytes, predicted and measured steps/s.

    Parameters
    ----------
    bench : dict
        The contents of ``bench_device.json`` (written by ``benchmarks/run.py``).

    Returns
    -------
    list of str
        The table's lines.
    """
    info = bench["info"]
    batch = info["batch"]
    lines = [
        f"| network | kernels/step mb1 | fusions/step mb1 | kernels/step mb{batch} | "
        f"fusions/step mb{batch} | bytes/step mb1 | predicted steps/s mb1 | "
        f"measured steps/s mb1 | predicted steps/s mb{batch} | measured steps/s mb{batch} | "
        "max abs diff vs nengo / max abs value |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in bench["results"]:
        if "error" in r or "hlo" not in r:
            continue
        h1, hb = r["hlo"]["mb1"], r["hlo"][f"mb{batch}"]
        b1 = r["roofline"]["bytes_per_step"]
        bb = r.get("roofline_mb32", r["roofline"])["bytes_per_step"]
        p1 = predict_steps_per_s(h1["kernels"] + 1, b1)
        pb = predict_steps_per_s(hb["kernels"] + 1, bb)
        m1 = r["nengojax_mb1"]["steps_per_s"]
        mb = r["nengojax_mb32"]["item_steps_per_s"] / batch
        lines.append(
            f"| {r['network']} | {h1['kernels']:.0f} | {h1['fusions']:.0f} | "
            f"{hb['kernels']:.0f} | {hb['fusions']:.0f} | {b1 / 1e3:.1f} kB | "
            f"{p1[0]:.0f}-{p1[1]:.0f} | {m1:.0f} | {pb[0]:.0f}-{pb[1]:.0f} | {mb:.0f} | "
            f"{r['nengojax_mb1']['max_abs_diff_vs_nengo']:.2g} / "
            f"{r['nengojax_mb1']['max_abs_value']:.2g} |"
        )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--status", default="")
    parser.add_argument("--elapsed", default="?")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()

    status = dict(kv.split("=") for kv in args.status.split(",") if "=" in kv)
    meaning = {"0": "ok", "124": "timed out", "137": "killed (timeout)"}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# nengojax device check" + (" (CPU dry run, tiny sizes)" if args.dry_run else ""),
        "",
        f"Run {now} by `bash benchmarks/device_check.sh`, {args.elapsed} s in all. Parts: "
        + ", ".join(f"{k} {meaning.get(v, f'exit {v}')}" for k, v in status.items())
        + ".",
        "",
        "## Device and versions",
        "",
        *_device_lines(),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        "",
    ]
    bench = _load(os.path.join(args.dir, "bench_device.json"))
    if bench:
        info = bench["info"]
        lines += [
            "## Benchmark suite (benchmarks/run.py)",
            "",
            f"Runs used jax_default_matmul_precision = {info.get('matmul_precision')}.",
            "",
        ]
        with open(os.path.join(args.dir, "bench_device.md")) as f:
            lines += f.read().splitlines()[2:]
        lines += [
            "",
            "## Kernel budget against the model",
            "",
            "Kernels and fusions per step as XLA compiled the time scan for this device "
            "(`benchmarks/hlo.py`); bytes/step = params + state read + state written. "
            "Predicted steps/s = 1 / ((kernels + 1 loop test) x 5..2 us + bytes / "
            "4.8 TB/s), the model of docs/performance.rst (H200 HBM). The last column "
            "(probe output against nengo.Simulator's, float32) shows what the matmul "
            "precision above costs in accuracy: rerun with `--precision highest` to "
            "compare with full-f32 products.",
            "",
            *kernel_table(bench),
            "",
        ]
    else:
        lines += ["## Benchmark suite", "", "No results (see run.log).", ""]
    fit = _load(os.path.join(args.dir, "fit_tutorial.json"))
    lines += ["## Tutorial fit (benchmarks/fit_tutorial.py)", ""]
    if fit:
        for mode, res in fit.items():
            s = res.get("summary", {})
            lines.append(
                f"- {mode}: mean improvement {100 * s.get('mean_improvement', float('nan')):.1f} "
                f"%, fit {s.get('fit_s_median', float('nan')):.2f} s (median over seeds "
                f"{', '.join(k for k in res if k != 'summary')}; compile included)"
            )
    else:
        lines.append("No results (see fit.log).")
    lines += ["", "## 1M-neuron model (benchmarks/big.py)", ""]
    big_md = os.path.join(args.dir, "big.md")
    if os.path.exists(big_md):
        with open(big_md) as f:
            lines += f.read().splitlines()
    else:
        lines.append("No results (see big.log).")
    os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    with open(args.report, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
