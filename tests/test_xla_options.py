"""XLA compile options (`nengojax.runtime.xla_options`): used at the top level,
and the same functions still work inside users' own jit/grad/vmap/scan."""

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import optax
import pytest

import nengojax
from nengojax.runtime import xla_options
from nengojax.training import make_train_step, split_params, trainable_keys


def _decode(x, w):
    # the shape of a step's neuron update and decode (one fused reduce)
    return (w * jnp.maximum(x, 0.0)).reshape(200, 250).sum(1)


def test_cpu_programs_compile_without_library_fusions():
    if jax.default_backend() != "cpu":
        pytest.skip("CPU options")
    x = jax.ShapeDtypeStruct((50000,), jnp.float32)
    plain = jax.jit(_decode).lower(x, x).compile().as_text()
    if "ynn_fusion" not in plain:
        pytest.skip("this jaxlib makes no YNNPACK fusions")
    assert xla_options.compiler_options() == xla_options.CPU_OPTIONS
    text = xla_options.jit(_decode).lower(x, x).compile().as_text()
    assert "ynn_fusion" not in text


def test_jit_works_inside_other_transformations():
    fn = xla_options.jit(_decode)
    rng = np.random.RandomState(0)
    x, w = (jnp.asarray(rng.randn(50000), jnp.float32) for _ in range(2))
    expected = np.asarray(jax.jit(_decode)(x, w))
    np.testing.assert_allclose(fn(x, w), expected, rtol=1e-5, atol=1e-4)
    # traced arguments
    np.testing.assert_allclose(jax.jit(fn)(x, w), expected, rtol=1e-5, atol=1e-4)
    # concrete arrays closed over by an outer jit: JAX refuses the options there
    np.testing.assert_allclose(jax.jit(lambda: fn(x, w))(), expected, rtol=1e-5, atol=1e-4)
    grad = jax.grad(lambda w: fn(x, w).sum())(w)
    np.testing.assert_allclose(grad, np.maximum(np.asarray(x), 0), rtol=1e-6)


def _net():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.sin, label="inp")
        a = nengo.Ensemble(20, 1, neuron_type=nengo.LIFRate(), label="a")
        nengo.Connection(inp, a)
        p = nengo.Probe(a, synapse=0.01)
    return net, inp, p


def test_run_inside_a_users_jit_equals_the_top_level_run():
    net, _, p = _net()
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    _, top = model.run(params, state, 50)
    _, closed = jax.jit(lambda: model.run(params, state, 50))()
    _, traced = jax.jit(lambda s: model.run(params, s, 50))(state)
    key = model.key(p)
    np.testing.assert_allclose(closed[key], top[key], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(traced[key], top[key], rtol=1e-6, atol=1e-7)


def test_train_step_inside_a_users_scan():
    net, inp, p = _net()
    model = nengojax.compile(net)
    params = model.init_params()
    trainable, frozen = split_params(params, trainable_keys(model))
    opt = optax.sgd(0.01)
    step = make_train_step(model, opt, {model.key(p): nengojax.losses.mse})
    state = model.init_state(minibatch_size=4)
    x = {model.key(inp): np.ones((4, 5, 1), np.float32)}
    y = {model.key(p): np.zeros((4, 5, 1), np.float32)}

    def body(carry, _):
        t, o = carry
        t, o, loss, _ = step(t, frozen, o, state, x, y)
        return (t, o), loss

    (_, _), losses = jax.lax.scan(body, (trainable, opt.init(trainable)), None, length=3)
    t, o = trainable, opt.init(trainable)
    expected = []
    for _ in range(3):
        t, o, loss, _ = step(t, frozen, o, state, x, y)
        expected.append(loss)
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert expected[-1] < expected[0]


def test_a_jaxlib_without_the_options_gets_plain_programs(monkeypatch):
    if jax.default_backend() != "cpu":
        pytest.skip("CPU options")
    monkeypatch.setattr(xla_options, "CPU_OPTIONS", {"xla_cpu_no_such_option": 1})
    monkeypatch.setattr(xla_options, "_refused", [])
    rng = np.random.RandomState(1)
    x, w = (jnp.asarray(rng.randn(50000), jnp.float32) for _ in range(2))
    fn = xla_options.jit(_decode)
    assert fn.top is not fn.nested
    np.testing.assert_allclose(fn(x, w), jax.jit(_decode)(x, w), rtol=1e-5, atol=1e-4)
    assert fn.top is fn.nested and xla_options.compiler_options() == {}
    # compiling ahead falls back the same way
    again = xla_options.jit(_decode)
    assert again.top is again.nested
    monkeypatch.setattr(xla_options, "_refused", [])
    ahead = xla_options.jit(_decode)
    ahead.compile(x, w)
    assert ahead.top is ahead.nested
