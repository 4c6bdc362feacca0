"""The benchmark runner works (smoke test, no speed thresholds)."""

import json
import os
import subprocess
import sys

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
