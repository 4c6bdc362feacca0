"""`nengojax.Converter`: rate conversions equal the JAX models, spiking ones approach them."""

import functools
import warnings

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import optax
import pytest
from nengo.exceptions import ValidationError

import nengojax

eqx = pytest.importorskip("equinox")


def keys(n, seed=0):
    return jax.random.split(jax.random.PRNGKey(seed), n)


def run_nengojax(conv, x, n_steps=1, **kwargs):
    """Output at the last step for each sample of ``x`` (shape ``(n, *input_shape)``)."""
    flat = np.asarray(x).reshape(len(x), 1, -1)
    with nengojax.Simulator(conv.net, minibatch_size=len(x), progress_bar=False, **kwargs) as sim:
        out = sim.predict({conv.input: np.tile(flat, (1, n_steps, 1))})[conv.output]
    return out


def run_nengo(conv, x, n_steps=1):
    """nengo.Simulator outputs (all steps) for each sample, resetting in between."""
    current = [None]
    conv.input.output = lambda t: current[0]
    outs = []
    with nengo.Simulator(conv.net, progress_bar=False) as sim:
        for xi in np.asarray(x).reshape(len(x), -1):
            current[0] = xi
            sim.reset()
            sim.run_steps(n_steps)
            outs.append(sim.data[conv.output])
    conv.input.output = np.zeros(conv.input.size_out)
    return np.array(outs)


def eqx_cnn(act2=jax.nn.tanh):
    k = keys(4)
    return eqx.nn.Sequential(
        [
            eqx.nn.Conv2d(2, 4, 3, padding=1, key=k[0]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.AvgPool2d(2, 2),
            eqx.nn.Conv2d(4, 3, 2, stride=1, key=k[1]),
            eqx.nn.Lambda(jax.nn.sigmoid),
            eqx.nn.Lambda(jnp.ravel),
            eqx.nn.Linear(27, 8, key=k[2]),
            eqx.nn.Lambda(act2),
            eqx.nn.Linear(8, 3, key=k[3]),
        ]
    )


def test_equinox_cnn_rate_conversion_equals_jax():
    model = eqx_cnn()
    x = np.random.RandomState(0).randn(6, 2, 8, 8).astype(np.float32)
    conv = nengojax.Converter(model, (2, 8, 8))
    ref = np.asarray(jax.vmap(model)(x))
    out = run_nengojax(conv, x)[:, -1]
    np.testing.assert_allclose(out, ref, atol=2e-5)
    np.testing.assert_allclose(run_nengo(conv, x[:2])[:, -1], ref[:2], atol=2e-5)
    # each layer maps to a nengo object: convolutions into neurons, pooling to a node
    assert isinstance(conv.layers[model.layers[0]], nengo.ensemble.Neurons)
    assert conv.layers[model.layers[0]] is conv.layers[model.layers[1]]
    assert isinstance(conv.layers[model.layers[2]], nengo.Node)
    types = {type(e.neuron_type) for e in conv.net.all_ensembles}
    assert types == {nengo.RectifiedLinear, nengo.Sigmoid, nengo.Tanh}
    convs = [c.transform for c in conv.net.all_connections]
    assert sum(isinstance(t, nengo.Convolution) for t in convs) == 2


def test_equinox_mlp_and_conv1d_with_leaky_relu():
    k = keys(2)
    mlp = eqx.nn.MLP(5, 3, 16, 2, activation=jax.nn.leaky_relu, key=k[0])
    x = np.random.RandomState(1).randn(4, 5).astype(np.float32)
    conv = nengojax.Converter(mlp, (5,))
    np.testing.assert_allclose(run_nengojax(conv, x)[:, -1], jax.vmap(mlp)(x), atol=1e-5)
    c1 = eqx.nn.Sequential(
        [
            eqx.nn.Conv1d(2, 3, 3, padding=1, key=k[1]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.Conv1d(3, 2, 3, stride=2, padding="SAME", key=k[0]),
        ]
    )
    x1 = np.random.RandomState(2).randn(4, 2, 7).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both convolutions convert (no JaxNode)
        conv1 = nengojax.Converter(c1, (2, 7))
    ref = np.asarray(jax.vmap(c1)(x1)).reshape(4, -1)
    np.testing.assert_allclose(run_nengojax(conv1, x1)[:, -1], ref, atol=1e-5)


def test_flax_mlp_and_cnn_rate_conversion_equals_jax():
    nnx = pytest.importorskip("flax.nnx")
    rngs = nnx.Rngs(0)
    mlp = nnx.Sequential(
        nnx.Linear(6, 6, rngs=rngs),
        jax.nn.relu,
        nnx.Linear(6, 6, rngs=rngs),
        functools.partial(jax.nn.leaky_relu, negative_slope=0.2),
        nnx.Linear(6, 6, rngs=rngs),
        jax.nn.sigmoid,
    )
    x = np.random.RandomState(3).randn(5, 6).astype(np.float32)
    conv = nengojax.Converter(mlp, (6,))
    np.testing.assert_allclose(run_nengojax(conv, x)[:, -1], mlp(x), atol=1e-5)
    np.testing.assert_allclose(run_nengo(conv, x[:2])[:, -1], mlp(x[:2]), atol=1e-5)
    cnn = nnx.Sequential(
        nnx.Conv(1, 4, (3, 3), rngs=rngs),
        jax.nn.relu,
        functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2)),
        nnx.Conv(4, 2, (3, 3), padding="VALID", rngs=rngs),
        jnp.tanh,
        lambda h: h.reshape(-1),
        nnx.Linear(2, 3, rngs=rngs),
    )
    xc = np.random.RandomState(4).randn(3, 6, 6, 1).astype(np.float32)
    conv = nengojax.Converter(cnn, (6, 6, 1))
    ref = np.asarray(jax.vmap(cnn)(xc))
    np.testing.assert_allclose(run_nengojax(conv, xc)[:, -1], ref, atol=1e-5)


def test_scale_firing_rates_keeps_rates_and_spiking_approaches_them():
    k = keys(3, seed=1)
    model = eqx.nn.Sequential(
        [
            eqx.nn.Linear(4, 16, key=k[0]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.Linear(16, 16, key=k[1]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.Linear(16, 2, key=k[2]),
        ]
    )
    x = np.random.RandomState(5).rand(4, 4).astype(np.float32)
    ref = np.asarray(jax.vmap(model)(x))
    scaled = nengojax.Converter(model, (4,), scale_firing_rates=50)
    np.testing.assert_allclose(run_nengojax(scaled, x)[:, -1], ref, atol=1e-5)
    spiking = nengojax.Converter(
        model,
        (4,),
        swap_activations={jax.nn.relu: nengo.SpikingRectifiedLinear()},
        scale_firing_rates=200,
        synapse=0.01,
    )
    assert all(e.neuron_type.spiking for e in spiking.net.all_ensembles)
    spiking.net.seed = 0
    out = run_nengojax(spiking, x, n_steps=300)
    err = np.abs(out[:, -100:].mean(axis=1) - ref).max()
    assert err < 0.05 * max(1.0, np.abs(ref).max()), err
    # the same spiking network in nengo.Simulator
    out_nengo = run_nengo(spiking, x[:1], 300)[0]
    np.testing.assert_allclose(out_nengo[-100:].mean(0), out[0, -100:].mean(0), atol=0.02)


def test_pooling_max_to_avg_and_jaxnode_fallback():
    k = keys(1)
    maxpool = eqx.nn.Sequential(
        [eqx.nn.Conv2d(1, 2, 3, padding=1, key=k[0]), eqx.nn.MaxPool2d(2, 2)]
    )
    x = np.random.RandomState(6).randn(3, 1, 4, 4).astype(np.float32)
    with pytest.warns(UserWarning, match="layer1_MaxPool2d.*max_to_avg_pool.*JaxNode"):
        conv = nengojax.Converter(maxpool, (1, 4, 4))
    assert isinstance(conv.layers[maxpool.layers[1]], nengojax.JaxNode)
    ref = np.asarray(jax.vmap(maxpool)(x)).reshape(3, -1)
    np.testing.assert_allclose(run_nengojax(conv, x)[:, -1], ref, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        avg = nengojax.Converter(maxpool, (1, 4, 4), max_to_avg_pool=True)
    avg_model = eqx.nn.Sequential([maxpool.layers[0], eqx.nn.AvgPool2d(2, 2)])
    ref = np.asarray(jax.vmap(avg_model)(x)).reshape(3, -1)
    np.testing.assert_allclose(run_nengojax(avg, x)[:, -1], ref, atol=1e-5)
    # an unsupported layer runs in a JaxNode, with a warning naming it
    norm = eqx.nn.Sequential([eqx.nn.Linear(3, 3, key=k[0]), eqx.nn.LayerNorm(3)])
    xn = np.random.RandomState(7).randn(2, 3).astype(np.float32)
    with pytest.warns(UserWarning, match="layer1_LayerNorm cannot be converted"):
        conv = nengojax.Converter(norm, (3,))
    np.testing.assert_allclose(run_nengojax(conv, xn)[:, -1], jax.vmap(norm)(xn), atol=1e-5)
    with pytest.warns(UserWarning, match="layer1_<lambda> cannot be converted"):
        nengojax.Converter(
            eqx.nn.Sequential([eqx.nn.Linear(3, 3, key=k[0]), eqx.nn.Lambda(lambda v: v**2)]),
            (3,),
        )


def test_flax_unsupported_layers_warn():
    nnx = pytest.importorskip("flax.nnx")
    rngs = nnx.Rngs(0)
    model = nnx.Sequential(
        nnx.Linear(4, 4, rngs=rngs),
        lambda v: v.reshape(4, 1),
        functools.partial(nnx.max_pool, window_shape=(2,), strides=(2,)),
        nnx.LayerNorm(1, rngs=rngs),
    )
    x = np.random.RandomState(8).randn(3, 4).astype(np.float32)
    with pytest.warns(UserWarning) as record:
        conv = nengojax.Converter(model, (4,))
    messages = " ".join(str(r.message) for r in record)
    assert "layer2_max_pool" in messages and "layer3_LayerNorm" in messages
    ref = np.asarray(jax.vmap(model)(x)).reshape(3, -1)
    np.testing.assert_allclose(run_nengojax(conv, x)[:, -1], ref, atol=1e-5)


def test_fit_trains_the_converted_network():
    k = keys(2, seed=2)
    model = eqx.nn.Sequential(
        [
            eqx.nn.Linear(2, 16, key=k[0]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.Linear(16, 1, key=k[1]),
        ]
    )
    conv = nengojax.Converter(model, (2,))
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, size=(256, 1, 2))
    y = x[..., :1] * x[..., 1:]
    with nengojax.Simulator(conv.net, minibatch_size=32, progress_bar=False, seed=0) as sim:
        sim.compile(optimizer=optax.adam(0.01), loss={conv.output: nengojax.losses.mse})
        before = sim.evaluate({conv.input: x}, {conv.output: y})["loss"]
        sim.fit({conv.input: x}, {conv.output: y}, epochs=20, verbose=0)
        after = sim.evaluate({conv.input: x}, {conv.output: y})["loss"]
    assert after < 0.5 * before, (before, after)


def test_inference_only_marks_everything_untrainable():
    model = eqx.nn.Linear(3, 2, key=keys(1)[0])
    conv = nengojax.Converter(model, (3,), inference_only=True)
    assert conv.net.config[nengo.Connection].trainable is False
    assert len(conv.layers) == 1 and model in conv.layers
    # a layer run in a JaxNode: its params are frozen too
    norm = eqx.nn.Sequential([eqx.nn.Linear(3, 4, key=keys(1)[0]), eqx.nn.LayerNorm(4)])
    for inference_only, frozen in [(True, True), (False, False)]:
        conv = nengojax.Converter(norm, (3,), inference_only=inference_only)
        nodes = [n for n in conv.net.all_nodes if isinstance(n, nengojax.JaxNode) and n.params]
        assert nodes
        with nengojax.Simulator(conv.net, progress_bar=False) as sim:
            keys_ = nengojax.training.trainable_keys(sim.compiled, conv.net)
        node_keys = [k for k in keys_ if k.startswith(sim.compiled.program.key(nodes[0]))]
        assert (node_keys == []) == frozen


def test_bad_input_raises_validation_errors():
    with pytest.raises(ValidationError, match="Equinox module or a Flax NNX module"):
        nengojax.Converter(lambda v: v, (3,))
    model = eqx.nn.Sequential([eqx.nn.Linear(3, 2, key=keys(1)[0])])
    with pytest.raises(ValidationError, match="layer0_Linear expects 3 inputs"):
        nengojax.Converter(model, (4,))
    with pytest.raises(ValidationError, match="input_shape must be a tuple of ints"):
        nengojax.Converter(model, None)
    with pytest.raises(ValidationError, match="scale_firing_rates must be positive"):
        nengojax.Converter(model, (3,), scale_firing_rates=0)
    relu = eqx.nn.Sequential([eqx.nn.Linear(3, 2, key=keys(1)[0]), eqx.nn.Lambda(jax.nn.relu)])
    with pytest.raises(ValidationError, match="must be a nengo neuron type"):
        nengojax.Converter(relu, (3,), swap_activations={jax.nn.relu: "spiking"})
    conv = eqx.nn.Sequential([eqx.nn.Conv2d(1, 1, 3, key=keys(1)[0])])
    with pytest.raises(ValidationError, match="layer0_Conv2d expects inputs of shape"):
        nengojax.Converter(conv, (4, 4))


def run_doc_blocks(page, tmp_path, monkeypatch):
    """Run the ``code-block:: python`` blocks of ``docs/<page>`` in order, in one
    namespace (as a reader would), in a temporary directory."""
    import os
    import re

    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
    with open(os.path.join(docs, page)) as f:
        text = f.read()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        code = "\n".join(line[3:] for line in block.splitlines())
        exec(compile(code, page, "exec"), namespace)  # noqa: S102
    return namespace


def test_docs_page_runs(tmp_path, monkeypatch):
    pytest.importorskip("flax.nnx")
    ns = run_doc_blocks("converter.rst", tmp_path, monkeypatch)
    assert np.abs(ns["y"][ns["spiking"].output]).max() > 0


def test_dilated_and_grouped_convolutions_run_in_jaxnodes():
    k = keys(2)
    for layer in (
        eqx.nn.Conv2d(2, 2, 3, dilation=2, key=k[0]),
        eqx.nn.Conv2d(2, 2, 3, groups=2, key=k[1]),
        eqx.nn.Conv2d(2, 2, 3, padding=((2, 0), (0, 0)), key=k[1]),
        eqx.nn.Conv2d(2, 2, 3, padding=1, padding_mode="REFLECT", key=k[1]),
    ):
        with pytest.warns(UserWarning, match="layer0_Conv2d cannot be converted"):
            conv = nengojax.Converter(eqx.nn.Sequential([layer]), (2, 6, 6))
        assert isinstance(conv.layers[0], nengojax.JaxNode)
