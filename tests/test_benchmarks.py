"""The benchmark runner works (smoke test, no speed thresholds)."""

import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_runner_quick(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick"]
    cmd += ["--only", "tutorial,pes", "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(tmp_path / "bench_quick.json") as f:
        data = json.load(f)
    assert [r["network"] for r in data["results"]] == ["tutorial", "pes"]
    for r in data["results"]:
        assert "error" not in r, r
        # nengojax gives nengo's answer on the benchmark networks too
        assert r["nengojax_mb1"]["max_abs_diff_vs_nengo"] < 0.05 * max(
            r["nengojax_mb1"]["max_abs_value"], 1e-3
        )
    assert (tmp_path / "bench_quick.md").read_text().startswith("# nengojax benchmarks")


def test_device_check_cpu_dry_run():
    """benchmarks/device_check.sh runs end to end on the CPU at tiny sizes."""
    script = os.path.join(ROOT, "benchmarks", "device_check.sh")
    t0 = time.perf_counter()
    out = subprocess.run(["bash", script, "--cpu-dry-run"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    report = out.stdout.strip().splitlines()[-1].split("wrote ", 1)[1]
    try:
        assert not report.startswith(os.path.join(ROOT, "benchmarks", "results"))
        text = open(report).read()
        assert text.startswith("# nengojax device check (CPU dry run")
        assert "jax_default_matmul_precision" in text
        assert "| tutorial |" in text  # the benchmark table and the kernel budget
        assert "fusions/step" in text
        assert "1M-neuron model" in text and "| million |" in text
    finally:
        shutil.rmtree(os.path.dirname(report), ignore_errors=True)
    assert elapsed < 60, f"dry run took {elapsed:.0f} s"
