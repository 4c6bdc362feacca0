"""An Equinox module inside a JaxNode, its parameters trained by ``Simulator.fit``.

Equinox is optional (``pip install -e ".[equinox]"``; the ``test`` extra
includes it); these tests are skipped without it.
"""

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import optax
import pytest

import nengojax

eqx = pytest.importorskip("equinox")


def _mlp_net(seed=0):
    """``inp -> JaxNode(MLP)``; returns ``net, inp, node, probe, static``."""
    model = eqx.nn.MLP(
        in_size=1, out_size=1, width_size=16, depth=2, activation=jnp.tanh,
        key=jax.random.PRNGKey(seed),
    )  # fmt: skip
    # the arrays (a pytree: what nengojax trains) and the rest of the module
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def forward(p, x):
        return eqx.combine(p, static)(x)

    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(np.zeros(1))
        node = nengojax.JaxNode(forward, shape_in=(1,), params=params, pass_time=False)
        nengo.Connection(inp, node, synapse=None)
        probe = nengo.Probe(node)
    return net, inp, node, probe, static


def _data(n, seed):
    x = np.random.RandomState(seed).uniform(-1, 1, size=(n, 1, 1))
    return x, np.sin(np.pi * x)


def test_module_params_are_params():
    net, _, node, _, static = _mlp_net()
    # one param per array of the module: 3 weights and 3 biases
    assert len(node.param_attrs) == 6
    assert all(a.startswith("params/layers/") for a in node.param_attrs)
    model = nengojax.compile(net)
    params = model.init_params()
    keys = [model.key(node, a) for a in node.param_attrs]
    assert all(k in params for k in keys)
    assert sorted(nengojax.training.trainable_keys(model, net)) == sorted(keys)


def test_fit_trains_module():
    net, inp, node, probe, static = _mlp_net()
    x, y = _data(512, seed=1)
    x_test, y_test = _data(128, seed=2)
    with nengojax.Simulator(net, minibatch_size=32, seed=0, progress_bar=False) as sim:
        sim.compile(optimizer=optax.adam(1e-2), loss={probe: nengojax.losses.mse})
        before = sim.evaluate({inp: x_test}, {probe: y_test})["loss"]
        history = sim.fit({inp: x}, {probe: y}, epochs=30, verbose=0)
        after = sim.evaluate({inp: x_test}, {probe: y_test})["loss"]
        pred = sim.predict({inp: x_test})[probe]
        trained = sim.get_nengo_params(node)["params"]
        sim.freeze_params(node)
    losses = history.history["loss"]
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.5f}; test mse {before:.4f} -> {after:.5f}")
    assert losses[-1] < 0.05 * losses[0], losses
    assert after < 0.05 * before, (before, after)
    assert after < 0.01

    # the trained arrays rebuild a working Equinox module
    module = eqx.combine(jax.tree_util.tree_map(jnp.asarray, trained), static)
    direct = jax.vmap(module)(jnp.asarray(x_test[:, 0], jnp.float32))
    np.testing.assert_allclose(pred[:, 0], np.asarray(direct), atol=1e-5)

    # and freeze_params put them into the node, which nengo.Simulator then runs
    inp.output = np.array([0.5])
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(1)
    assert abs(ref.data[probe][0, 0] - np.sin(np.pi * 0.5)) < 0.1
