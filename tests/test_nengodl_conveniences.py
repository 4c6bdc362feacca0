"""NengoDL's conveniences in JAX/optax form: string losses and metrics, probe
labels, list loss_weights, bare y, class labels, predict_on_batch, resets,
initialisers."""

from __future__ import annotations

import jax.numpy as jnp
import nengo
import numpy as np
import optax
import pytest
from nengo.exceptions import ValidationError

import nengojax
from nengojax import losses


def _classifier():
    with nengo.Network(seed=0) as net:
        nengojax.configure_settings(trainable=None)
        inp = nengo.Node(np.zeros(2), label="inp")
        hidden = nengo.Ensemble(40, 2, neuron_type=nengo.RectifiedLinear())
        out = nengo.Node(size_in=3, label="out")
        nengo.Connection(inp, hidden, synapse=None)
        nengo.Connection(hidden.neurons, out, transform=np.zeros((3, 40)), synapse=None)
        p = nengo.Probe(out, label="out_p")
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, size=(64, 1, 2))
    labels = (np.sign(x[..., 0]) + (x[..., 1] > 0.5) + 1).clip(0, 2)[..., None]
    return net, inp, p, x, labels


def test_crossentropy_and_accuracy_match_numpy():
    rng = np.random.RandomState(1)
    logits = rng.standard_normal((4, 3, 5))
    labels = rng.randint(0, 5, size=(4, 3, 1))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expect = -np.mean(np.take_along_axis(logp, labels, axis=-1))
    got = losses.sparse_categorical_crossentropy(jnp.asarray(labels), jnp.asarray(logits))
    np.testing.assert_allclose(got, expect, rtol=1e-5)
    onehot = np.eye(5)[labels[..., 0]]
    np.testing.assert_allclose(
        losses.categorical_crossentropy(jnp.asarray(onehot), jnp.asarray(logits)),
        expect,
        rtol=1e-5,
    )
    acc = np.mean(logits.argmax(-1) == labels[..., 0])
    np.testing.assert_allclose(losses.accuracy(labels, jnp.asarray(logits)), acc)
    np.testing.assert_allclose(losses.accuracy(onehot, jnp.asarray(logits)), acc)
    assert losses.get("mse") is losses.mse
    with pytest.raises(ValidationError, match="unknown loss"):
        losses.get("msee")


def test_string_loss_metrics_labels_and_bare_y():
    net, inp, p, x, labels = _classifier()
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        # a loss dict keyed by the probe's label, string loss and metric
        sim.compile(
            optax.adam(0.05),
            loss={"out_p": "sparse_categorical_crossentropy"},
            metrics=["accuracy"],
        )
        before = sim.evaluate(x, labels)  # bare x (one input) and y (one loss probe)
        hist = sim.fit(x, labels, epochs=30, verbose=0)
        after = sim.evaluate(x, labels)
    key = sim.compiled.key(p)
    assert f"{key}_accuracy" in hist.history
    assert after["loss"] < before["loss"]
    assert after[f"{key}_accuracy"] > before[f"{key}_accuracy"] + 0.2


def test_list_loss_weights_follow_the_loss_dict():
    net, inp, p, x, labels = _classifier()
    with net:
        q = nengo.Probe(inp, label="in_p")
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        sim.compile(optax.sgd(0.0), loss={p: "mse", q: "mse"}, loss_weights=[2.0, 0.0])
        y = {p: np.ones((64, 1, 3)), q: x + 1}
        logs = sim.evaluate(x, y)
        key = sim.compiled.key(p)
        assert logs["loss"] == pytest.approx(2 * logs[f"{key}_loss"], rel=1e-6)
        with pytest.raises(ValidationError, match="needs a loss dict with as many"):
            sim.compile(optax.sgd(0.1), loss={p: "mse", q: "mse"}, loss_weights=[1.0])


def test_predict_on_batch_and_resets():
    net, inp, p, x, labels = _classifier()
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        out = sim.predict_on_batch({inp: x[:16]})
        assert out[p].shape == (16, 1, 3)
        with pytest.raises(ValidationError, match="one minibatch"):
            sim.predict_on_batch({inp: x})
        init = {k: np.array(v) for k, v in sim.params.items()}
        sim.compile(optax.adam(0.05), loss={p: "sparse_categorical_crossentropy"})
        sim.fit(x, labels, epochs=2, verbose=0)
        assert any(not np.array_equal(np.asarray(sim.params[k]), v) for k, v in init.items())
        sim.run_steps(3)
        sim.soft_reset()  # keeps params and probe data
        assert sim.n_steps == 0 and sim.data[p].shape == (16, 3, 3)
        sim.reset(include_trainables=True)
        for k, v in init.items():
            np.testing.assert_array_equal(np.asarray(sim.params[k]), v)
        assert sim.data[p].shape == (16, 0, 3)
        with pytest.raises(ValidationError, match="include_processes"):
            sim.reset(include_processes=False)


@pytest.mark.parametrize(
    "dist, var",
    [
        (nengojax.dists.Glorot(), 2 / (300 + 200)),
        (nengojax.dists.He(), 2 / 200),
        (nengojax.dists.VarianceScaling(3.0, "fan_out", "uniform"), 3 / 300),
    ],
)
def test_initialisers(dist, var):
    w = dist.sample(300, 200, rng=np.random.RandomState(0))
    assert w.shape == (300, 200)
    assert abs(w.var() / var - 1) < 0.05
    t = nengojax.dists.TruncatedNormal(stddev=1.0).sample(1000, rng=np.random.RandomState(1))
    assert np.abs(t).max() <= 2.0
    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.ones(20))
        b = nengo.Node(size_in=30)
        conn = nengo.Connection(a, b, transform=dist)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert sim.data[conn].weights.shape == (30, 20)


def test_configure_settings_nengo_dl_options():
    with nengo.Network(seed=0) as net:
        with pytest.warns(UserWarning, match="no effect"):
            nengojax.configure_settings(use_loop=False, planner=None, simplifications=[])
        with pytest.raises(ValidationError, match="keep_history"):
            nengojax.configure_settings(keep_history=False)
        nengojax.configure_settings(inference_only=True, dtype="float32")
        inp = nengo.Node(np.zeros(1))
        ens = nengo.Ensemble(10, 1)
        nengo.Connection(inp, ens)
        p = nengo.Probe(ens)
    with nengojax.Simulator(net, minibatch_size=2, unroll_simulation=2, progress_bar=False) as sim:
        assert sim.compiled.unroll == 2
        assert sim.compiled.float_dtype == np.float32
        with pytest.raises(ValidationError, match="inference_only"):
            sim.compile(optax.sgd(0.1), loss={p: "mse"})
        sim.compile(loss={p: "mse"})  # evaluation only
        assert sim.trainer.spec.trainable == []
        sim.evaluate(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)))
