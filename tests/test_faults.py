"""Bad input and faults: a clear nengo exception before anything changes, and
nothing lost when user code fails mid-run."""

from __future__ import annotations

import jax.numpy as jnp
import nengo
import numpy as np
import optax
import pytest
from nengo.exceptions import SimulationError, ValidationError

import nengojax
from nengojax import losses


def _net():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1))
        ens = nengo.Ensemble(20, 1)
        nengo.Connection(inp, ens)
        p = nengo.Probe(ens, synapse=0.01)
    return net, inp, ens, p


@pytest.mark.parametrize(
    "value, match",
    [
        (np.full((1, 5, 1), 1e39), "too large for float32"),
        (np.full((1, 5, 1), 1 + 1j), "real numbers"),
        (np.full((1, 5, 1), np.inf), "NaN or infinite"),
    ],
    ids=["overflow", "complex", "inf"],
)
def test_bad_data_values(value, match):
    net, inp, _, p = _net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(ValidationError, match=match):
            sim.run_steps(5, data={inp: value})
        assert sim.n_steps == 0


def test_same_node_twice_in_data():
    net, inp, _, _ = _net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        key = sim.compiled.key(inp)
        with pytest.raises(ValidationError, match="twice"):
            sim.run_steps(5, data={inp: np.ones((1, 5, 1)), key: np.zeros((1, 5, 1))})


def test_reset_validates_before_changing():
    net, _, _, p = _net()
    with nengojax.Simulator(net, seed=3, progress_bar=False) as sim:
        sim.run_steps(5)
        for bad in (-3, 2.5, "1", 2**32):
            with pytest.raises(ValidationError, match="seed"):
                sim.reset(seed=bad)
            assert sim.seed == 3
        assert sim.n_steps == 5  # nothing changed
        sim.run_steps(5)
        assert sim.data[p].shape == (10, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"minibatch_size": 2.5}, "integer"),
        ({"minibatch_size": 0}, "integer"),
        ({"seed": 2.5}, "seed"),
        ({"dt": 0}, "dt"),
        ({"dt": float("nan")}, "dt"),
    ],
)
def test_bad_simulator_arguments(kwargs, match):
    net, _, _, _ = _net()
    with pytest.raises(ValidationError, match=match):
        nengojax.Simulator(net, progress_bar=False, **kwargs)


def test_simulator_of_a_non_network():
    net, _, ens, _ = _net()
    with pytest.raises(ValidationError, match="nengo.Network"):
        nengojax.Simulator(ens)


@pytest.mark.parametrize("steps", [2.5, "10", float("nan"), float("inf"), -1, True])
def test_bad_step_counts(steps):
    net, _, _, _ = _net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(ValidationError):
            sim.run_steps(steps)
        if isinstance(steps, str) or not np.isfinite(steps) or steps < 0:
            with pytest.raises(ValidationError):
                sim.run(steps)
        assert sim.n_steps == 0


def test_loss_weight_without_loss():
    net, inp, ens, p = _net()
    with net:
        q = nengo.Probe(ens.neurons)
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        with pytest.raises(ValidationError, match="has no loss"):
            sim.compile(optax.sgd(0.1), loss={p: losses.mse}, loss_weights={q: 2.0})
        with pytest.raises(ValidationError, match="finite number"):
            sim.compile(optax.sgd(0.1), loss={p: losses.mse}, loss_weights={p: np.nan})


def test_fit_stops_on_non_finite_loss_keeping_finite_params():
    net, inp, _, p = _net()
    x = np.linspace(-1, 1, 16)[:, None, None]
    with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        before = {k: np.array(v) for k, v in sim.params.items()}

        def exploding(y_true, y_pred):
            return jnp.inf * jnp.mean(jnp.square(y_pred - y_true))

        sim.compile(optax.sgd(0.1), loss={p: exploding})
        with pytest.raises(SimulationError, match="fit stopped") as info:
            sim.fit({inp: x}, {p: x}, epochs=3, verbose=0)
        assert "stopped" in info.value.history.params
        for k, v in sim.params.items():
            assert np.all(np.isfinite(v)), k
        # the divergence is in the first chunk: the params are the ones before it
        for k, v in before.items():
            np.testing.assert_array_equal(np.asarray(sim.params[k]), v)


class _FailOnce:
    """A Node function that raises once, at a given step."""

    def __init__(self, at, exc):
        self.at, self.exc, self.failed = at, exc, False

    def __call__(self, t):
        if not self.failed and t > self.at:
            self.failed = True
            raise self.exc("fault injected")
        return np.sin(20 * t)


def _faulty_net(fn):
    with nengo.Network(seed=1) as net:
        node = nengo.Node(fn)
        ens = nengo.Ensemble(30, 1)
        nengo.Connection(node, ens)
        p = nengo.Probe(ens, synapse=0.01)
        q = nengo.Probe(node)
    return net, p, q


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_late_in_a_run_keeps_completed_steps(exc):
    net, p, q = _faulty_net(_FailOnce(0.9505, exc))
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(exc, match="fault injected"):
            sim.run(1.0)
        # nengo has run the steps before the failing one: so has nengojax
        assert sim.n_steps == 950
        assert sim.data[p].shape == (950, 1) and len(sim.trange()) == 950
        sim.run_steps(50)  # continue: the function does not fail again
        data = sim.data[p]
    ref_net, rp, _ = _faulty_net(_FailOnce(10.0, exc))
    with nengojax.Simulator(ref_net, progress_bar=False) as ref:
        ref.run(1.0)
    np.testing.assert_allclose(data, ref.data[rp], atol=1e-6)


class _FailOnceWithInput(_FailOnce):
    """A Node function of its input (a host callback every step) that raises once."""

    def __call__(self, t, x):
        return super().__call__(t) + 0.5 * x


def _faulty_callback_net(fn, minibatch):
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: np.cos(9 * t))
        node = nengo.Node(fn, size_in=1)
        ens = nengo.Ensemble(30, 1)
        nengo.Connection(stim, node, synapse=None)
        nengo.Connection(node, ens)
        p = nengo.Probe(ens, synapse=0.01)
    return net, p


@pytest.mark.parametrize("minibatch", [None, 2])
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_callback_failure_mid_chunk_keeps_completed_steps(exc, minibatch):
    # the failing function runs inside the compiled loop (a host callback): the
    # loop stops at its step, which leaves the state as it was before it
    net, p = _faulty_callback_net(_FailOnceWithInput(0.3005, exc), minibatch)
    with pytest.warns(UserWarning, match="runs on the host"):
        sim = nengojax.Simulator(net, minibatch_size=minibatch, progress_bar=False)
    with sim:
        with pytest.raises(exc, match="fault injected"):
            sim.run(1.0)
        assert sim.n_steps == 300 and len(sim.trange()) == 300
        assert sim.data[p].shape[-2] == 300
        sim.run_steps(700)  # continue: the function does not fail again
        data = sim.data[p]
    ref_net, rp = _faulty_callback_net(_FailOnceWithInput(10.0, exc), minibatch)
    with pytest.warns(UserWarning, match="runs on the host"):
        ref = nengojax.Simulator(ref_net, minibatch_size=minibatch, progress_bar=False)
    with ref:
        ref.run(1.0)
    np.testing.assert_allclose(data, ref.data[rp], atol=1e-6)


def test_node_returning_none_midway_keeps_completed_steps():
    with nengo.Network(seed=2) as net:
        u = nengo.Node(lambda t: [1.0] if t < 0.0045 else None)
        p = nengo.Probe(u)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(SimulationError, match="invalid type"):
            sim.run(0.01)
        assert sim.n_steps == 4 and sim.data[p].shape == (4, 1)


def test_predict_bad_n_steps_and_params_shape():
    net, inp, ens, p = _net()
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        for bad in (-3, 0, 2.5):
            with pytest.raises(ValidationError, match="n_steps"):
                sim.predict(n_steps=bad)
        key = sim.compiled.key(ens.neurons, "bias")
        sim.params[key] = np.zeros(3)
        with pytest.raises(ValidationError, match=f"params\\[{key!r}\\]"):
            sim.run_steps(2)


def test_simulator_refuses_concurrent_runs():
    import threading

    net, _, _, _ = _net()
    started, release = threading.Event(), threading.Event()

    def slow(t):
        started.set()
        release.wait(10)
        return 0.0

    with net:
        nengo.Node(slow)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        worker = threading.Thread(target=sim.run_steps, args=(3,))
        worker.start()
        assert started.wait(30)
        with pytest.raises(SimulationError, match="already running"):
            sim.run_steps(1)
        release.set()
        worker.join(60)
        assert sim.n_steps == 3


def test_one_step_training_with_a_filtered_probe_warns():
    net, inp, _, p = _net()
    x = np.zeros((4, 1, 1))
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        sim.compile(optax.sgd(0.1), loss={p: losses.mse})
        with pytest.warns(UserWarning, match="one step"):
            sim.fit({inp: x}, {p: x}, verbose=0)


def test_training_through_a_host_node_names_it():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1))
        ens = nengo.Ensemble(10, 1)
        seen = []  # a side effect: the function stays on the host
        host = nengo.Node(lambda t, x: seen.append(t) or x**2, size_in=1, label="squarer")
        nengo.Connection(inp, ens)
        nengo.Connection(ens, host)
        p = nengo.Probe(host)
    x = np.zeros((2, 3, 1))
    with pytest.warns(UserWarning, match="runs on the host"):
        sim = nengojax.Simulator(net, minibatch_size=2, progress_bar=False)
    with sim:
        sim.compile(optax.sgd(0.1), loss={p: losses.mse})
        with pytest.raises(SimulationError, match="squarer"):
            sim.fit({inp: x}, {p: x}, verbose=0)


def test_float64_program_after_x64_is_switched_off():
    import jax

    net, _, _, _ = _net()
    jax.config.update("jax_enable_x64", True)
    try:
        model = nengojax.compile(net, dtype="float64")
        params, state = model.init_params(), model.init_state()
    finally:
        jax.config.update("jax_enable_x64", False)
    with pytest.raises(ValidationError, match="x64"):
        model.run(params, state, 2)


def test_jax_node_non_finite_output_is_a_simulation_error_like_a_node():
    import jax.numpy as jnp

    with nengo.Network(seed=0) as net:
        bad = nengojax.JaxNode(lambda t: jnp.where(t > 0.0055, jnp.nan, t), shape_out=(1,))
        p = nengo.Probe(bad)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(SimulationError, match="non-finite value at t=0.006"):
            sim.run(0.01)
        assert sim.n_steps == 5 and sim.data[p].shape == (5, 1)
        np.testing.assert_allclose(sim.data[p][:, 0], np.arange(1, 6) * 0.001, rtol=1e-6)
    # the functional API records the fault in the state and runs on
    model = nengojax.compile(net)
    state, probes = model.run(model.init_params(), model.init_state(), 10)
    assert np.asarray(state["fault"])[0] == 5
    assert np.isnan(np.asarray(probes[model.key(p)])[-1, 0])


def test_memory_estimate_names_the_biggest_arrays():
    from nengo.exceptions import BuildError

    from nengojax.runtime.memory import available_bytes, check_memory, program_bytes

    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(300, 1)
        b = nengo.Ensemble(200, 1)
        nengo.Connection(a.neurons, b.neurons, transform=np.ones((200, 300)))
    program = nengojax.compile(net).program
    need = program_bytes(program)
    assert need >= 3 * 200 * 300 * 4  # the weights, in float32, held three times
    check_memory(program, available=need)  # fits exactly: no error
    with pytest.raises(BuildError, match=r"\(200, 300\)"):
        check_memory(program, available=need // 2)
    assert available_bytes() is None or available_bytes() > 0


def test_out_of_memory_is_a_build_error_not_a_crash(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "oom.py"
    script.write_text(
        "import nengo, numpy as np\n"
        "import nengojax\n"
        "from nengojax.runtime import memory\n"
        "memory.available_bytes = lambda: 10 * 2**20  # as if 10 MiB were left\n"
        "with nengo.Network(seed=0) as net:\n"
        "    a = nengo.Ensemble(2000, 1)\n"
        "    b = nengo.Ensemble(2000, 1)\n"
        "    nengo.Connection(a.neurons, b.neurons, transform=np.ones((2000, 2000)))\n"
        "try:\n"
        "    nengojax.Simulator(net, progress_bar=False)\n"
        "except nengo.exceptions.BuildError as e:\n"
        "    print('BUILDERROR', e)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BUILDERROR" in out.stdout and "(2000, 2000)" in out.stdout


def test_checkpoint_name_needing_missing_log_key_fails_before_training(tmp_path):
    from nengojax.callbacks import EarlyStopping, ModelCheckpoint

    net, inp, _, p = _net()
    x = np.zeros((4, 3, 1))
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        sim.compile(optax.sgd(0.1), loss={p: losses.mse})
        before = {k: np.array(v) for k, v in sim.params.items()}
        ckpt = ModelCheckpoint(str(tmp_path / "new_dir" / "ckpt-{val_loss:.3f}.npz"))
        with pytest.raises(ValidationError, match="val_loss"):
            sim.fit({inp: x}, {p: x}, epochs=2, callbacks=[ckpt], verbose=0)
        with pytest.raises(ValidationError, match="val_loss"):
            sim.fit({inp: x}, {p: x}, epochs=2, callbacks=[EarlyStopping()], verbose=0)
        for k, v in before.items():  # nothing trained
            np.testing.assert_array_equal(np.asarray(sim.params[k]), v)
        ok = ModelCheckpoint(str(tmp_path / "new_dir" / "ckpt-{epoch}-{loss:.3f}.npz"))
        sim.fit({inp: x}, {p: x}, epochs=2, callbacks=[ok], verbose=0)
        assert len(ok.saved) == 2
