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
    # logs name the probe by its label, as NengoDL does
    assert "out_p_accuracy" in hist.history
    assert after["loss"] < before["loss"]
    assert after["out_p_accuracy"] > before["out_p_accuracy"] + 0.2


def test_list_loss_weights_follow_the_loss_dict():
    net, inp, p, x, labels = _classifier()
    with net:
        q = nengo.Probe(inp, label="in_p")
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        sim.compile(optax.sgd(0.0), loss={p: "mse", q: "mse"}, loss_weights=[2.0, 0.0])
        y = {p: np.ones((64, 1, 3)), q: x + 1}
        logs = sim.evaluate(x, y)
        assert logs["loss"] == pytest.approx(2 * logs["out_p_loss"], rel=1e-6)
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
        # NengoDL's: He(scale) has variance scale**2 / fan_in, and a normal
        # truncated at 2 sd keeps 0.774 of its variance (uncorrected)
        (nengojax.dists.He(), 0.7737413 / 200),
        (nengojax.dists.He(scale=np.sqrt(2)), 0.7737413 * 2 / 200),
        (nengojax.dists.VarianceScaling(3.0, "fan_out", "uniform"), 3 / 300),
        (nengojax.dists.VarianceScaling(3.0, "fan_avg", "normal"), 0.7737413 * 3 / 250),
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


def test_initialisers_draw_nengo_dls_samples():
    # NengoDL's He(scale=s): a normal of sd s / sqrt(fan_in) redrawn beyond 2 sd
    he = nengojax.dists.He(scale=1.5).sample(40, 30, rng=np.random.RandomState(2))
    tn = nengojax.dists.TruncatedNormal(stddev=1.5 / np.sqrt(30))
    np.testing.assert_array_equal(he, tn.sample(40, 30, rng=np.random.RandomState(2)))
    glorot = nengojax.dists.Glorot().sample(40, 30, rng=np.random.RandomState(3))
    limit = np.sqrt(3 / 35)
    want = np.random.RandomState(3).uniform(-limit, limit, (40, 30))
    np.testing.assert_array_equal(glorot, want)


def test_configure_settings_nengo_dl_options():
    with nengo.Network(seed=0) as net:
        with pytest.warns(UserWarning, match="no effect"):
            nengojax.configure_settings(use_loop=False, planner=None, simplifications=[])
        with pytest.raises(ValidationError, match="unknown settings"):
            nengojax.configure_settings(keep_histroy=False)
        with pytest.raises(ValidationError, match="keep_history must be"):
            nengojax.configure_settings(keep_history=0)
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


# --- keep_history and stateful ---------------------------------------------------------


def _last_step_net(keep_all=None, per_probe=None):
    """`_classifier`'s network with a second probe, on the hidden ensemble."""
    net, inp, p, _, _ = _classifier()
    with net:
        if keep_all is not None:
            nengojax.configure_settings(keep_history=keep_all)
        p_all = nengo.Probe(net.ensembles[0], label="hidden_p")
        if per_probe is not None:
            net.config[p_all].keep_history = per_probe
    return net, inp, p, p_all


def test_keep_history_false_keeps_the_last_step_of_each_run():
    net, inp, p, p_all = _last_step_net(keep_all=False, per_probe=True)
    ref_net, *_ = _last_step_net()
    with nengojax.Simulator(ref_net, progress_bar=False) as ref:
        ref.run_steps(5)
        ref.run_steps(3)
        full = ref.data[ref_net.probes[0]]
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
        sim.run_steps(3)
        np.testing.assert_array_equal(sim.data[p], full[[4, 7]])
        assert sim.data[p_all].shape[0] == 8  # its own setting keeps everything


def test_keep_history_false_predict_and_fit_use_the_last_step():
    net, inp, p, _ = _last_step_net()
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, size=(8, 4, 2))
    y_last = rng.uniform(-1, 1, size=(8, 1, 3))
    with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as ref:
        full = ref.predict({inp: x})[p]
        ref.compile(optax.sgd(0.1), {p: losses.mse})
        # the same loss on the full history, with NaN (ignored) on all but the last step
        y_full = np.full((8, 4, 3), np.nan)
        y_full[:, -1:] = y_last
        ref.compile(optax.sgd(0.1), {p: losses.nan_mse})
        ref_loss = ref.evaluate({inp: x}, {p: y_full})["loss"]
        ref_hist = ref.fit({inp: x}, {p: y_full}, epochs=2, shuffle=False, verbose=0)
    with net:
        nengojax.configure_settings(keep_history=False)
    with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        out = sim.predict({inp: x})[p]
        assert out.shape == (8, 1, 3)
        np.testing.assert_allclose(out, full[:, -1:], rtol=1e-6)
        sim.compile(optax.sgd(0.1), {p: losses.mse})
        np.testing.assert_allclose(
            sim.evaluate({inp: x}, {p: y_last})["loss"], ref_loss, rtol=1e-5
        )
        hist = sim.fit({inp: x}, {p: y_last}, epochs=2, shuffle=False, verbose=0)
        np.testing.assert_allclose(hist.history["loss"], ref_hist.history["loss"], rtol=1e-5)
        with pytest.raises(ValidationError, match="keeps only its last step"):
            sim.evaluate({inp: x}, {p: np.zeros((8, 4, 3))})
        with pytest.raises(ValidationError, match="give the inputs x"):
            sim.evaluate(y={p: y_last})


def test_run_steps_stateless_goes_back_to_the_state_before():
    net, inp, p, _ = _last_step_net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
        state, t = sim.state, sim.time
        sim.run_steps(4, stateful=False)
        assert sim.time == t and sim.n_steps == 3
        for k in state["signals"]:
            np.testing.assert_array_equal(sim.state["signals"][k], state["signals"][k])
        assert sim.data[p].shape[0] == 7  # the stateless run's data were added
        first = sim.data[p][3:7].copy()
        sim.run_steps(4)  # from the same state: the same outputs
        np.testing.assert_allclose(sim.data[p][7:11], first, rtol=1e-6)
        with pytest.raises(ValidationError, match="stateful must be"):
            sim.run_steps(1, stateful="no")


def test_configured_stateless_network():
    net, inp, p, _ = _last_step_net()
    with net:
        nengojax.configure_settings(stateful=False)
    x = np.ones((2, 3, 2))
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        sim.run_steps(5)
        assert sim.n_steps == 0 and sim.data[p].shape == (2, 5, 3)
        with pytest.raises(ValidationError, match="configured stateless"):
            sim.run_steps(1, stateful=True)
        with pytest.raises(ValidationError, match="configured stateless"):
            sim.predict({inp: x}, stateful=True)
        assert sim.predict({inp: x})[p].shape == (2, 3, 3)


def test_validation_split_is_the_last_items_as_validation_data():
    net, inp, p, x, labels = _classifier()
    y = np.eye(3)[labels[..., 0].astype(int)]
    kwargs = dict(epochs=2, shuffle=False, verbose=0)
    with nengojax.Simulator(net, minibatch_size=8, progress_bar=False) as sim:
        sim.compile(optax.adam(0.01), {p: losses.mse})
        split = sim.fit({inp: x}, {p: y}, validation_split=0.25, **kwargs)
    with nengojax.Simulator(net, minibatch_size=8, progress_bar=False) as sim:
        sim.compile(optax.adam(0.01), {p: losses.mse})
        explicit = sim.fit(
            {inp: x[:48]}, {p: y[:48]}, validation_data=({inp: x[48:]}, {p: y[48:]}), **kwargs
        )
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(split.history[key], explicit.history[key], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(validation_split=1.0), "validation_split must be"),
        (dict(validation_split="0.1"), "validation_split must be"),
        (dict(validation_split=0.01), "leaves"),
        (dict(validation_split=0.2, validation_data=({}, {})), "not both"),
        (dict(batch_size=16), "batch_size=16"),
        (dict(epochs=1.5), "epochs"),
    ],
)
def test_fit_refuses_bad_split_batch_size_and_epochs(kwargs, match):
    net, inp, p, x, labels = _classifier()
    with nengojax.Simulator(net, minibatch_size=8, progress_bar=False) as sim:
        sim.compile(optax.adam(0.01), {p: losses.mse})
        before = {k: np.array(v) for k, v in sim.params.items()}
        with pytest.raises(ValidationError, match=match):
            sim.fit({inp: x}, {p: np.zeros((64, 1, 3))}, verbose=0, **kwargs)
        for k, v in sim.params.items():
            np.testing.assert_array_equal(v, before[k])


def test_batch_size_equal_to_minibatch_size_is_accepted():
    net, inp, p, x, labels = _classifier()
    with nengojax.Simulator(net, minibatch_size=8, progress_bar=False) as sim:
        sim.compile(optax.adam(0.01), {p: losses.mse})
        hist = sim.fit({inp: x}, {p: np.zeros((64, 1, 3))}, batch_size=8, verbose=0)
    assert len(hist.history["loss"]) == 1


def test_log_names_are_labels_when_unique_else_keys():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1))
        a = nengo.Node(size_in=1)
        b = nengo.Node(size_in=1)
        nengo.Connection(inp, a, synapse=None)
        nengo.Connection(inp, b, synapse=None)
        pa = nengo.Probe(a, label="twin")
        pb = nengo.Probe(b, label="twin")  # the same label: keys instead
        pc = nengo.Probe(a, label="solo")
        pd = nengo.Probe(b)  # no label
    model = nengojax.compile(net)
    names = {p: nengojax.training.log_name(model, model.key(p)) for p in (pa, pb, pc, pd)}
    assert names[pc] == "solo"
    for p in (pa, pb, pd):
        assert names[p] == model.key(p)


# --- minibatches from an iterable ------------------------------------------------------


def _fit_history(sim, inp, p, *args, **kwargs):
    sim.compile(optax.adam(1e-3), {p: losses.mse})
    return sim.fit(*args, verbose=0, **kwargs).history["loss"]


def test_fit_on_a_list_of_minibatches_equals_the_arrays_unshuffled():
    net, inp, p, x, labels = _classifier()
    y = np.eye(3)[labels[..., 0].astype(int)]
    batches = [({inp: x[i : i + 16]}, {p: y[i : i + 16]}) for i in range(0, 64, 16)]
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        ref = _fit_history(sim, inp, p, {inp: x}, {p: y}, epochs=3, shuffle=False)
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        got = _fit_history(sim, inp, p, batches, epochs=3)
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_fit_on_a_generator_takes_new_minibatches_each_epoch():
    net, inp, p, x, labels = _classifier()
    y = np.eye(3)[labels[..., 0].astype(int)]
    drawn = []

    def generator():
        for i in range(0, 64, 16):
            drawn.append(i)
            yield {inp: x[i : i + 16]}, {p: y[i : i + 16]}

    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        got = _fit_history(sim, inp, p, generator(), epochs=2, steps_per_epoch=2)
    assert drawn == [0, 16, 32, 48]  # 2 epochs x 2 minibatches, each drawn once
    # epoch 1 trains on items 0-31, epoch 2 on items 32-63, in order
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        first = _fit_history(sim, inp, p, {inp: x[:32]}, {p: y[:32]}, shuffle=False)
        # fit again: the optimizer state carries on, as between epochs
        second = sim.fit({inp: x[32:]}, {p: y[32:]}, shuffle=False, verbose=0)
    np.testing.assert_allclose(got, [first[0], second.history["loss"][0]], rtol=1e-5)


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (lambda b: iter(b), {}, "needs steps_per_epoch"),
        (lambda b: iter(b), dict(steps_per_epoch=3, epochs=2), "gave 4 minibatches"),
        (lambda b: b[:1] + [(b[1][0], {})], {}, "minibatch 1"),
        (
            lambda b: [(b[0][0], b[0][1]), ({k: v[:5] for k, v in b[1][0].items()}, b[1][1])],
            {},
            "minibatch 1",
        ),
        (lambda b: b, dict(validation_split=0.5), "validation_split needs arrays"),
        (lambda b: iter(b), dict(steps_per_epoch=0), "steps_per_epoch"),
    ],
)
def test_fit_on_bad_minibatch_iterables(make, kwargs, match):
    net, inp, p, x, labels = _classifier()
    y = np.eye(3)[labels[..., 0].astype(int)]
    batches = [({inp: x[i : i + 16]}, {p: y[i : i + 16]}) for i in range(0, 64, 16)]
    with nengojax.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        sim.compile(optax.adam(1e-3), {p: losses.mse})
        with pytest.raises(ValidationError, match=match):
            sim.fit(make(batches), verbose=0, **kwargs)


def test_nengo_dl_spellings_of_steps_reset_and_predict_on_batch():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(2))
        ens = nengo.Ensemble(20, 2)
        nengo.Connection(inp, ens)
        p = nengo.Probe(ens)
    with nengojax.Simulator(net, minibatch_size=3, progress_bar=False) as sim:
        out = sim.predict_on_batch(n_steps=4)  # no x: the network's own inputs
        assert out[p].shape == (3, 4, 2)
        sim.run_steps(n_steps=5)
        assert sim.n_steps == 5 and sim.data[p].shape == (3, 5, 2)
        for bad in ({}, {"steps": 3, "n_steps": 3}):
            with pytest.raises(ValidationError, match="n_steps"):
                sim.run_steps(**bad)
        assert sim.n_steps == 5
        key = sim.compiled.key(ens.neurons, "bias")
        init = np.array(sim.params[key])
        sim.params = {**sim.params, key: init + 1}
        sim.soft_reset(include_trainable=False)
        np.testing.assert_array_equal(sim.params[key], init + 1)
        sim.soft_reset(include_trainable=True)  # NengoDL's spelling
        np.testing.assert_array_equal(sim.params[key], init)
        sim.params = {**sim.params, key: init + 1}
        sim.reset(include_trainable=True)
        np.testing.assert_array_equal(sim.params[key], init)
        with pytest.raises(ValidationError, match="one minibatch of 3"):
            sim.predict_on_batch(np.zeros((5, 4, 2)))
