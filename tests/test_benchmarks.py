"""The benchmark runner works (smoke test, no speed thresholds)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


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
    out = subprocess.run(["bash", script, "--cpu-dry-run"], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
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


@pytest.mark.parametrize("name", ["pes_2048", "relu_array", "spa_states", "conv_net"])
def test_issue14_shapes_match_nengo(name):
    """The new benchmark shapes (quick sizes) give nengo's answer on nengojax."""
    import nengo
    import numpy as np

    import nengojax
    from benchmarks.networks import NETWORKS
    from benchmarks.run import SIZES

    net, _, probe = NETWORKS[name](nengo.LIF(), **SIZES[name][1])
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(50)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(50)
    scale = max(np.abs(ref.data[probe]).max(), 1e-3)
    assert np.abs(sim.data[probe] - ref.data[probe]).max() < 0.05 * scale


def test_fault_sweep_ends_every_case_clearly():
    # benchmarks/faults.py: each bad input or fault ends in a nengo exception
    # naming what is wrong, the user's own exception with every completed step
    # kept, or the right result; never a silent wrong result or a raw error
    import warnings

    from benchmarks import faults

    for _, name, fn, expect in faults.CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome, detail = faults.run_case(fn, expect)
        assert outcome in ("error", "kept", "ok"), (name, outcome, detail)
