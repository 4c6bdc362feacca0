"""Networks that convolve train one minibatch per call on CPU, without loops
(XLA's CPU backend gives convolutions inside loops slow kernels)."""

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import optax

import nengojax
from nengojax import training


def conv_fn(p, x):
    y = jax.lax.conv_general_dilated(
        x[None], p["kernel"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y[0]


def conv_net(with_jax_conv=True, with_nengo_conv=False):
    rng = np.random.RandomState(0)
    with nengo.Network(seed=0) as net:
        net.config[nengo.Connection].synapse = None
        inp = nengo.Node(np.zeros(36))
        x = inp
        if with_jax_conv:
            kernel = rng.uniform(-0.5, 0.5, (3, 3, 1, 2)).astype(np.float32)
            x = nengojax.Layer(conv_fn)(x, shape_in=(6, 6, 1), params={"kernel": kernel})
        if with_nengo_conv:
            conv = nengo.Convolution(2, (6, 6, 1), kernel_size=(3, 3), strides=(1, 1))
            x = nengojax.Layer(nengo.RectifiedLinear())(x, transform=conv)
        else:
            x = nengojax.Layer(nengo.RectifiedLinear())(x)
        out = nengo.Node(size_in=3)
        nengo.Connection(x, out, transform=nengojax.dists.Glorot())
        probe = nengo.Probe(out)
    return net, inp, probe


def test_holds_convolutions():
    for kwargs, expected in [
        ({"with_jax_conv": True}, True),
        ({"with_jax_conv": False, "with_nengo_conv": True}, True),
        ({"with_jax_conv": False}, False),
    ]:
        net = conv_net(**kwargs)[0]
        assert training.holds_convolutions(nengojax.compile(net)) == expected, kwargs


def test_a_single_minibatch_epoch_has_no_loop_and_equals_the_scan():
    net, inp, probe = conv_net()
    model = nengojax.compile(net)
    params = model.init_params()
    trainable, frozen = training.split_params(params, training.trainable_keys(model))
    opt = optax.sgd(0.1)
    loss = {probe: nengojax.losses.mse}
    epoch = training.make_train_epoch(model, opt, loss, jit=False)
    rng = np.random.RandomState(1)
    xs = {model.key(inp): jnp.asarray(rng.rand(2, 4, 1, 36), jnp.float32)}
    ys = {training.probe_key(model, probe): jnp.asarray(rng.rand(2, 4, 1, 3), jnp.float32)}
    state = model.init_state(4)
    args = (trainable, frozen, opt.init(trainable), state)

    def first(tree):
        return jax.tree_util.tree_map(lambda v: v[:1], tree)

    assert "while" not in jax.jit(epoch).lower(*args, first(xs), first(ys)).as_text()
    # two single-minibatch calls give what one call over both minibatches gives
    (t1, o1, s1), _ = jax.jit(epoch)(*args, first(xs), first(ys))
    second = jax.tree_util.tree_map(lambda v: v[1:], (xs, ys))
    (t2, _, _), out2 = jax.jit(epoch)(t1, frozen, o1, s1, *second)
    (t_both, _, _), _ = jax.jit(epoch)(*args, xs, ys)
    for k in t_both:
        np.testing.assert_allclose(t2[k], t_both[k], rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(t2[k], trainable[k]) for k in trainable)


def test_fit_of_a_conv_network_steps_one_minibatch_per_call(monkeypatch):
    net, inp, probe = conv_net()
    rng = np.random.RandomState(2)
    x = rng.rand(12, 1, 36).astype(np.float32)
    y = rng.rand(12, 1, 3).astype(np.float32)
    results = {}
    for one_per_call in (True, False):
        with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
            monkeypatch.setattr(sim.trainer, "_convolves", one_per_call)
            calls = []
            sim.compile(optimizer=optax.sgd(0.1), loss={probe: nengojax.losses.mse})
            epoch_fn = sim.trainer._epoch_fn

            def counting(*a, epoch_fn=epoch_fn, calls=calls, **k):
                fn = epoch_fn(*a, **k)

                def call(*args):
                    calls.append(jax.tree_util.tree_leaves(args[4])[0].shape[0])
                    return fn(*args)

                return call

            monkeypatch.setattr(sim.trainer, "_epoch_fn", counting)
            hist = sim.fit({inp: x}, {probe: y}, epochs=2, shuffle=False, verbose=0)
            results[one_per_call] = (hist.history["loss"], dict(sim.params), calls)
    losses, params, calls = results[True]
    assert calls == [1] * 6  # 2 epochs x 3 minibatches, one per call
    assert results[False][2] == [3, 3]
    np.testing.assert_allclose(losses, results[False][0], rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(params[k], results[False][1][k], rtol=1e-5, atol=1e-6)
    # on CPU (where the tests run) a convolving network gets one minibatch per call
    if jax.default_backend() == "cpu":
        with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
            assert sim.trainer._one_minibatch_per_call()
