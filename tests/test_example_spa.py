"""The SPA examples (ports of NengoDL's spa-retrieval and spa-memory notebooks).

Their quick paths train and improve the models; the untrained models match
``nengo.Simulator``; the fast way the examples draw their training sets gives
the same numbers as one shared vocabulary (as the notebooks draw them).
"""

import importlib.util
import os
import sys

import nengo
import numpy as np
import pytest

import nengojax

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", f"{EXAMPLES}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def retrieval():
    return _load("spa_retrieval")


@pytest.fixture(scope="module")
def memory():
    return _load("spa_memory")


def _with_node_outputs(nodes, data):
    """Make each Node output its rows of ``data`` (item 0), one per step, for nengo."""
    for node, x in zip(nodes, data, strict=True):
        rows = np.asarray(x[0])
        node.output = lambda t, rows=rows: rows[min(int(round(t / 0.001)) - 1, len(rows) - 1)]


def _nengo_vs_nengojax(build, data, n_steps):
    """Max abs difference of a probe: nengojax with ``data=`` vs nengo with Node outputs."""
    net, nodes, probe = build()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(n_steps, data={n: x[:1] for n, x in zip(nodes, data, strict=True)})
        ours = sim.data[probe]
    net, nodes, probe = build()
    _with_node_outputs(nodes, data)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(n_steps)
        theirs = ref.data[probe]
    return float(np.max(np.abs(ours - theirs))), float(np.max(np.abs(theirs)))


# --- the data ------------------------------------------------------------------------------


def test_training_sets_equal_shared_vocabulary_draws(retrieval, memory):
    shared = retrieval.get_data(40, 2, 16, vocab_seed=1)
    fast = retrieval.get_data(40, 2, 16, vocab_seed=1, shared_vocab=False)
    for a, b in zip(shared[:3], fast[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    shared = memory.get_binding_data(30, 2, 16, 0, 0.01, 0.03)
    fast = memory.get_binding_data(30, 2, 16, 0, 0.01, 0.03, shared_vocab=False)
    for a, b in zip(shared[:6], fast[:6], strict=True):
        np.testing.assert_array_equal(a, b)
    roles, _, cues, _, mem, output, vocab = shared
    assert len(vocab.vectors) == 30 * 4  # two roles and two fillers per item
    assert np.isnan(output[:, :20]).all() and not np.isnan(output[:, 20:]).any()
    np.testing.assert_allclose(np.linalg.norm(cues[:, -1], axis=-1), 1)
    # the memory target ends at the sum of the two bound pairs
    bound = [vocab.parse(f"ROLE_0_{i} * FILLER_0_{i}").v for i in range(2)]
    np.testing.assert_allclose(mem[0, -1], bound[0] + bound[1], atol=1e-12)


def test_nan_mse_is_nengodls(memory):
    # NengoDL's nan_mse: the mean over all entries, NaN targets as zero error
    # (nengojax.losses.nan_mse averages over the non-NaN targets instead)
    y_pred = np.zeros((2, 5, 3))
    y_true = np.full((2, 5, 3), 2.0)
    y_true[:, :2] = np.nan
    assert float(memory.nan_mse(y_true, y_pred)) == pytest.approx(4.0 * 3 / 5)
    assert float(nengojax.losses.nan_mse(y_true, y_pred)) == pytest.approx(4.0)


# --- the untrained models against nengo ---------------------------------------------------


def test_untrained_retrieval_matches_nengo(retrieval):
    traces, cues, _, _ = retrieval.get_data(2, 2, 32, vocab_seed=0)

    def build():
        net, trace_inp, cue_inp, out = retrieval.build_network()
        return net, (trace_inp, cue_inp), out

    diff, scale = _nengo_vs_nengojax(build, (traces, cues), 1)
    assert scale > 0.1 and diff < 1e-5 * max(scale, 1)


def test_untrained_memory_matches_nengo(memory):
    inputs, _, _ = memory.get_memory_data(2, 32, 0, 0.01, 0.04)

    def build():
        net, sp_input, _, memory_probe = memory.build_memory()
        return net, (sp_input,), memory_probe

    diff, scale = _nengo_vs_nengojax(build, (inputs,), 50)
    assert scale > 0.3 and diff < 1e-5 * max(scale, 1)


def test_untrained_binding_matches_nengo(memory):
    roles, fills, cues, *_ = memory.get_binding_data(2, 2, 16, 1, 0.01, 0.03)

    def build():
        net, inp, probes = memory.build_binding(dims=16)
        return net, (inp["role"], inp["filler"], inp["cue"]), probes["output"]

    diff, scale = _nengo_vs_nengojax(build, (roles, fills, cues), 50)
    assert scale > 0.05 and diff < 1e-5 * max(scale, 1)


# --- training ------------------------------------------------------------------------------


def test_retrieval_quick_training_improves(retrieval, tmp_path):
    r = retrieval.run(quick=True, outdir=str(tmp_path))
    assert r["loss"][-1] < 0.8 * r["loss"][0]
    assert r["acc_after"] >= r["acc_before"] + 0.1
    assert os.path.exists(tmp_path / "spa_retrieval.png")
    assert os.path.exists(tmp_path / "spa_retrieval_params.npz")


def test_memory_quick_training_improves(memory, tmp_path):
    r = memory.run_memory(quick=True, outdir=str(tmp_path))
    assert r["train_loss"][-1] < r["train_loss"][0]
    assert r["loss_after"] < 0.95 * r["loss_before"]
    assert r["similarity_after"] > r["similarity_before"]
    assert os.path.exists(tmp_path / "spa_memory_part1.png")
    # part 2, smaller than its quick path (8 dimensions) to keep the test short
    r = memory.run_binding(quick=True, n_train=320, epochs=3, dims=8)
    assert r["train_loss"][-1] < r["train_loss"][0]
    assert r["loss_after"] < 0.95 * r["loss_before"]
