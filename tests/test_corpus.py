"""The real-model corpus runner works (smoke test; the full corpus is a benchmark).

``benchmarks/corpus/run.py --quick`` runs a few tiny models from the corpus, each
on nengo and nengojax in fresh processes, and compares every probe. Here: the
output files have the documented format, and these models agree with nengo.
"""

import importlib
import json
import os
import subprocess
import sys

import nengo
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "corpus", "run.py")
MODELS = os.path.join(ROOT, "benchmarks", "corpus", "models")
QUICK = ["nengo_communication_channel", "nengo_integrator", "nengo_squaring"]
TIMES = ("build_s", "run_s", "total_s", "steps_per_s", "n_steps", "import_s")


def _run(out, *args):
    cmd = [sys.executable, RUN, "--quick", "--no-calibrate", "--out", str(out), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    with open(out / "corpus_quick.json") as f:
        return json.load(f)


def test_corpus_quick(tmp_path):
    doc = _run(tmp_path)
    assert [r["model"] for r in doc["results"]] == QUICK
    for r in doc["results"]:
        for sim in ("nengo", "nengojax"):
            assert "error" not in r[sim], r[sim]
            assert all(r[sim][k] > 0 for k in TIMES), r[sim]
        assert r["nengojax"]["nengojax_file"].startswith(os.path.join(ROOT, "nengojax"))
        assert "compile_s" in r["nengojax"]
        cmp = r["nengojax_vs_nengo"]
        assert set(cmp) == set(r["nengo"]["probes"])
        assert all(c["nrmse"] <= 0.05 for c in cmp.values()), cmp
        assert r["agrees"] and r["strict"]
    s = doc["summary"]
    assert s["models"] == s["agree"] == len(QUICK)
    assert s["geomean_ratio"] > 0
    md = (tmp_path / "corpus_quick.md").read_text()
    assert md.startswith("# nengojax real-model corpus (quick)")
    assert all(f"| {m} |" in md for m in QUICK)


def test_corpus_quick_spa(tmp_path):
    pytest.importorskip("nengo_spa")
    doc = _run(tmp_path, "--models", "spa_convolution")
    (r,) = doc["results"]
    assert "error" not in r["nengo"] and "error" not in r["nengojax"]
    assert r["agrees"], r["nengojax_vs_nengo"]


def _model_names():
    return sorted(f[:-3] for f in os.listdir(MODELS) if f.endswith(".py") and f[0] != "_")


@pytest.mark.parametrize("name", _model_names())
def test_corpus_model_builds(name):
    """Each corpus module documents its source and builds a network (no simulation)."""
    if name.startswith("spa_"):
        pytest.importorskip("nengo_spa")
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    mod = importlib.import_module(f"benchmarks.corpus.models.{name}")
    doc = mod.__doc__ or ""
    assert "Source:" in doc or "Not from a public source" in doc
    net, probes, run_time = mod.build()
    assert isinstance(net, nengo.Network)
    items = probes.values() if isinstance(probes, dict) else probes
    assert all(isinstance(p, nengo.Probe) for p in items)
    assert 0 < run_time <= 10
