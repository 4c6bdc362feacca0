"""examples/lmu.py: the nengo LMU network on nengojax is the plain-JAX model.

The example's functions, on a small cell and random sequences: the forward pass
of the nengo network (``sim.predict``) equals `plain_jax_lmu`'s, one ``sim.fit``
step equals one plain JAX + optax step, the fixed A and B stay fixed, and the
loss falls. (tests/test_examples.py runs the script itself with ``--quick``.)
"""

import importlib.util
import os

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nengojax

pytest.importorskip("sklearn")  # the example module imports it (its data)
pytest.importorskip("matplotlib")

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.fixture(scope="module")
def lmu():
    spec = importlib.util.spec_from_file_location("lmu_example", os.path.join(PATH, "lmu.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


UNITS, ORDER, STEPS, MB = 24, 12, 20, 16


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, STEPS, 1)).astype(np.float32)
    # a label that needs memory: which third of the sequence has the largest mean
    y = np.argmax(x[:, :, 0].reshape(n, 4, 5).mean(-1)[:, :3], axis=1)
    return x, y[:, None, None]


def test_lmu_matrices(lmu):
    a, b = lmu.lmu_matrices(6, 10.0)
    assert a.shape == (6, 6) and b.shape == (6, 1)
    # zero-order hold of a stable system: the memory decays
    assert np.max(np.abs(np.linalg.eigvals(a))) < 1
    assert not np.allclose(a, np.eye(6))


def test_nengojax_equals_plain_jax(lmu):
    net, inp, p = lmu.build_lmu_network(units=UNITS, order=ORDER, theta=STEPS, seed=1)
    x, y = data(MB)
    forward = lmu.plain_jax_lmu(ORDER, STEPS)
    with nengojax.Simulator(net, minibatch_size=MB, seed=0) as sim:
        sim.compile(
            optimizer=optax.adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        key_a = sim.compiled.key(net.lmu.conn_a, "weights")
        a0 = np.array(sim.params[key_a])
        params0 = lmu.plain_jax_params(sim, net)
        assert params0["hh"].shape == (UNITS, UNITS)
        assert params0["mh"].shape == (UNITS, ORDER)
        assert params0["out"].shape == (10, UNITS)

        # the forward pass: the last step's logits (keep_history=False)
        out = sim.predict(x)[p]
        assert out.shape == (MB, 1, 10)
        plain = np.asarray(forward(params0, x))
        assert np.std(plain) > 0.05  # not a trivially small output
        np.testing.assert_allclose(out[:, -1], plain, atol=2e-5, rtol=1e-5)
        # the recurrence matters: a shorter sequence gives different logits
        assert np.max(np.abs(np.asarray(forward(params0, x[:, 1:])) - plain)) > 1e-3

        # one fit step (one minibatch, in order) is one plain JAX + optax step
        opt = optax.adam(1e-3)
        step = lmu.plain_jax_train_step(forward, opt)
        expected, _, loss = step(params0, opt.init(params0), x, y)
        history = sim.fit(x, y, epochs=1, shuffle=False, verbose=0)
        np.testing.assert_allclose(history.history["loss"][0], float(loss), rtol=1e-5)
        trained = lmu.plain_jax_params(sim, net)
        for name in params0:
            assert not np.allclose(trained[name], params0[name])  # everything trains
            np.testing.assert_allclose(trained[name], expected[name], atol=2e-5, err_msg=name)
        np.testing.assert_array_equal(np.asarray(sim.params[key_a]), a0)  # A is frozen


def test_lmu_loss_decreases(lmu):
    net, inp, p = lmu.build_lmu_network(units=UNITS, order=ORDER, theta=STEPS)
    x, y = data(4 * MB, seed=1)
    with nengojax.Simulator(net, minibatch_size=MB, seed=0) as sim:
        sim.compile(
            optimizer=optax.adam(1e-2),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        before = sim.evaluate(x, y)
        history = sim.fit(x, y, epochs=15, verbose=0)
        after = sim.evaluate(x, y)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert after["loss"] < 0.7 * before["loss"]
    assert after["probe_accuracy"] > before["probe_accuracy"]
    assert set(history.history) == {"loss", "probe_accuracy"}
    # plain JAX on the trained params agrees with nengojax's evaluation
    forward = lmu.plain_jax_lmu(ORDER, STEPS)
    # (the params are read after the Simulator closed: they are kept)
    logits = forward(lmu.plain_jax_params(sim, net), x)
    acc = float(jnp.mean(jnp.argmax(logits, -1) == y[:, 0, 0]))
    assert acc == pytest.approx(after["probe_accuracy"], abs=1e-6)
