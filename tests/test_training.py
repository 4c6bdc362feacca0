"""Training with optax: neuron modes, config, the pure layer and Simulator.fit & co."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import optax
import pytest
from nengo.exceptions import SimulationError, ValidationError

import nengojax
from nengojax import losses, register_neuron_step, training
from nengojax.callbacks import EarlyStopping, ModelCheckpoint
from nengojax.config import configure_settings, get_setting, resolve_trainable
from nengojax.neurons import LeakyReLU, SoftLIFRate, SpikingLeakyReLU
from nengojax.ops.neurons import rate_counterpart

# --- neuron modes ---------------------------------------------------------------------

SPIKING = {
    "LIF": (nengo.LIF(tau_rc=0.03, amplitude=0.5), np.linspace(1.3, 4.0, 8)),
    "AdaptiveLIF": (nengo.AdaptiveLIF(), np.linspace(1.3, 4.0, 8)),
    "SpikingReLU": (nengo.SpikingRectifiedLinear(amplitude=0.3), np.linspace(5, 400, 8)),
    "SpikingLeakyReLU": (SpikingLeakyReLU(0.2), np.array([-300, -90, -20, -2, 3, 40, 150, 400])),
    "RegularSpiking": (
        nengo.RegularSpiking(nengo.LIFRate(), amplitude=0.7),
        np.linspace(1.3, 4, 8),
    ),
    "PoissonSpiking": (nengo.PoissonSpiking(nengo.RectifiedLinear()), np.linspace(5, 400, 8)),
}


def _neuron_net(neuron_type, bias, seed=0):
    """Ensemble with J = bias (no input), probing its neurons' output."""
    n = len(bias)
    with nengo.Network(seed=seed) as net:
        ens = nengo.Ensemble(
            n,
            1,
            neuron_type=neuron_type,
            gain=np.ones(n),
            bias=bias,
            encoders=np.ones((n, 1)),
        )
        p = nengo.Probe(ens.neurons)
    return net, ens, p


def _outputs(compiled, ens, p, n_steps=1):
    """``run(bias, mode)`` -> probe output of item 0, shape (n_steps, n)."""
    params = compiled.init_params()
    key = compiled.key(ens.neurons, "bias")
    state = compiled.init_state(1)

    @jax.jit
    def run_sa(b):
        return training.run_model(compiled, {**params, key: b}, state, {}, n_steps, "spike_aware")

    def run(b, mode):
        if mode == "spike_aware":
            return run_sa(b)[1][compiled.key(p)][0]
        out = training.run_model(compiled, {**params, key: b}, state, {}, n_steps, mode)
        return out[1][compiled.key(p)][0]

    return run, params[key], run_sa


@pytest.mark.parametrize("name", sorted(SPIKING))
def test_spike_aware_gradient_is_rate_derivative(name):
    neuron_type, bias = SPIKING[name]
    net, ens, p = _neuron_net(neuron_type, bias)
    compiled = nengojax.compile(net)
    run, b0, run_sa = _outputs(compiled, ens, p)
    key = compiled.key(p)
    # spike_aware gradient (custom JVP) vs finite differences of the rate counterpart
    grad = jax.grad(lambda b: jnp.sum(run_sa(b)[1][key][0, 0]))(b0)
    eps = 1e-2 * np.maximum(np.abs(np.asarray(b0)), 1.0)
    fd = (np.asarray(run(b0 + eps, "rate")[0]) - np.asarray(run(b0 - eps, "rate")[0])) / (2 * eps)
    assert np.all(np.asarray(grad) != 0)
    np.testing.assert_allclose(grad, fd, rtol=2e-2, atol=1e-3 * np.max(np.abs(fd)))
    # spike_aware forward is exactly the spiking model
    np.testing.assert_array_equal(run(b0, "spike_aware"), run(b0, "simulate"))


@pytest.mark.parametrize("name", ["LIF", "SpikingLeakyReLU", "RegularSpiking"])
def test_spike_aware_forward_equals_spiking_over_time(name):
    neuron_type, bias = SPIKING[name]
    net, ens, p = _neuron_net(neuron_type, bias)
    compiled = nengojax.compile(net)
    params, state = compiled.init_params(), compiled.init_state(2)
    _, sim_out = compiled.run(params, state, 30, mode="simulate")
    _, sa_out = compiled.run(params, state, 30, mode="spike_aware")
    key = compiled.key(p)
    np.testing.assert_array_equal(sa_out[key], sim_out[key])
    assert np.count_nonzero(np.asarray(sim_out[key])) > 0


RATE_PAIRS = {
    "LIF": (nengo.LIF(tau_rc=0.03, amplitude=0.5), nengo.LIFRate(tau_rc=0.03, amplitude=0.5)),
    "AdaptiveLIF": (
        nengo.AdaptiveLIF(tau_n=0.05, inc_n=0.1),
        nengo.AdaptiveLIFRate(tau_n=0.05, inc_n=0.1),
    ),
    "SpikingReLU": (nengo.SpikingRectifiedLinear(0.3), nengo.RectifiedLinear(0.3)),
    "SpikingLeakyReLU": (SpikingLeakyReLU(0.2, 0.5), LeakyReLU(0.2, 0.5)),
    "RegularSpiking": (
        nengo.RegularSpiking(nengo.LIFRate(amplitude=2.0), amplitude=0.25),
        nengo.LIFRate(amplitude=0.5),
    ),
    "StochasticSpiking": (
        nengo.StochasticSpiking(nengo.RectifiedLinear(), amplitude=0.5),
        nengo.RectifiedLinear(amplitude=0.5),
    ),
}


@pytest.mark.parametrize("name", sorted(RATE_PAIRS))
def test_rate_mode_runs_rate_counterpart(name):
    spiking, rate = RATE_PAIRS[name]
    bias = np.array([-3.0, 0.5, 1.5, 2.0, 3.0, 8.0])
    outs = []
    for nt, mode in ((spiking, "rate"), (rate, "simulate")):
        net, ens, p = _neuron_net(nt, bias)
        compiled = nengojax.compile(net)
        _, probes = compiled.run(compiled.init_params(), compiled.init_state(), 20, mode=mode)
        outs.append(np.asarray(probes[compiled.key(p)]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-6)


def test_rate_counterpart_mapping():
    cp = rate_counterpart(nengo.LIF(tau_rc=0.03, tau_ref=0.001, amplitude=2))
    assert type(cp) is nengo.LIFRate
    assert (cp.tau_rc, cp.tau_ref, cp.amplitude) == (0.03, 0.001, 2)
    soft = rate_counterpart(nengo.LIF(), lif_smoothing=0.05)
    assert type(soft) is SoftLIFRate and soft.sigma == 0.05
    assert type(rate_counterpart(nengo.AdaptiveLIF())) is nengo.AdaptiveLIFRate
    assert type(rate_counterpart(nengo.SpikingRectifiedLinear())) is nengo.RectifiedLinear
    assert type(rate_counterpart(SpikingLeakyReLU(0.1))) is LeakyReLU
    base = nengo.Tanh()
    assert rate_counterpart(nengo.PoissonSpiking(base)) is base
    assert rate_counterpart(nengo.Izhikevich()) is None
    rate = nengo.Sigmoid()
    assert rate_counterpart(rate) is rate


def test_lif_smoothing_uses_soft_lif_rate():
    bias = np.array([0.2, 0.9, 1.0, 1.1, 2.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_rates of J < 1 neurons are not finite
        net, ens, p = _neuron_net(nengo.LIF(), bias)
        with net:
            configure_settings(lif_smoothing=0.1)
        ref_net, _, ref_p = _neuron_net(SoftLIFRate(sigma=0.1), bias)
    compiled = nengojax.compile(net)
    _, probes = compiled.run(compiled.init_params(), compiled.init_state(), 3, mode="rate")
    ref = nengojax.compile(ref_net)
    _, ref_probes = ref.run(ref.init_params(), ref.init_state(), 3)
    out = np.asarray(probes[compiled.key(p)])
    np.testing.assert_allclose(out, ref_probes[ref.key(ref_p)], rtol=1e-6)
    assert np.all(out > 0)  # smoothing: no zero rates at or below threshold


def test_izhikevich_stays_spiking_with_warning():
    net, ens, p = _neuron_net(nengo.Izhikevich(), np.linspace(5, 15, 4))
    compiled = nengojax.compile(net)
    params, state = compiled.init_params(), compiled.init_state()
    with pytest.warns(UserWarning, match="no rate counterpart"):
        _, rate = compiled.run(params, state, 20, mode="rate")
    _, spiking = compiled.run(params, state, 20)
    np.testing.assert_array_equal(rate[compiled.key(p)], spiking[compiled.key(p)])


# --- new neuron types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "neuron_type",
    [SoftLIFRate(sigma=0.05), LeakyReLU(0.1, amplitude=0.01), SpikingLeakyReLU(0.1, 0.01)],
    ids=["SoftLIFRate", "LeakyReLU", "SpikingLeakyReLU"],
)
def test_new_types_match_nengo(neuron_type):
    with nengo.Network(seed=2) as net:
        inp = nengo.Node(lambda t: np.sin(2 * np.pi * 4 * t))
        ens = nengo.Ensemble(30, 1, neuron_type=neuron_type)
        nengo.Connection(inp, ens, synapse=None)
        p_neurons = nengo.Probe(ens.neurons)
        p = nengo.Probe(ens, synapse=0.02)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(200)
    if neuron_type.spiking:
        np.testing.assert_allclose(sim.data[p], ref.data[p], atol=2e-2)
    else:
        scale = np.max(np.abs(ref.data[p_neurons]))
        np.testing.assert_allclose(sim.data[p_neurons], ref.data[p_neurons], atol=1e-5 * scale)
    # decodes its input (gain/bias solving works)
    x = nengo.Lowpass(0.02).filt(np.sin(2 * np.pi * 4 * ref.trange())[:, None], dt=0.001)
    assert np.sqrt(np.mean((ref.data[p][50:] - x[50:]) ** 2)) < 0.15


def test_soft_lif_rate_limits_and_gradients():
    J = np.linspace(-5, 6, 101)
    hard = np.zeros_like(J)
    nengo.LIFRate().step(1.0, J, hard)
    soft = np.zeros_like(J)
    SoftLIFRate(sigma=1e-3).step(1.0, J, soft)
    np.testing.assert_allclose(soft, hard, atol=2.0)
    step = nengojax.ops.registry.get_neuron_step(SoftLIFRate(sigma=0.02))
    f = lambda j: step(SoftLIFRate(sigma=0.02), 0.001, j, {}, None)[0]  # noqa: E731
    Jx = jnp.asarray(np.linspace(-200, 10, 57), jnp.float32)
    out = f(Jx)
    grad = jax.vmap(jax.grad(f))(Jx)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad))
    assert np.all(np.asarray(grad) >= 0)


# --- config ------------------------------------------------------------------------------


def test_trainable_resolution():
    with nengo.Network() as net:
        configure_settings(trainable=False)
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        conn = nengo.Connection(a, b)
        net.config[nengo.Ensemble].trainable = True
        net.config[b].trainable = False
        with nengo.Network() as sub:
            configure_settings(trainable=True)
            c = nengo.Ensemble(5, 1)
            d = nengo.Ensemble(5, 1)
            sub.config[d].trainable = False
        with nengo.Network() as sub2:
            e = nengo.Ensemble(5, 1)
        net.config[sub2].trainable = False
    assert resolve_trainable(net, a) == (True, "type")
    assert resolve_trainable(net, b) == (False, "instance")
    assert resolve_trainable(net, conn) == (False, "type")
    assert resolve_trainable(net, c) == (True, "type")  # deeper network wins
    assert resolve_trainable(net, d) == (False, "instance")
    assert resolve_trainable(net, e) == (False, "network")
    assert get_setting(net, "spike_aware", "default") == "default"
    with net:
        configure_settings(spike_aware=True, remat=True)
    assert get_setting(net, "spike_aware") is True and get_setting(net, "remat") is True
    assert get_setting(net, "trainable") is False  # earlier settings kept
    with pytest.raises(nengo.exceptions.NetworkContextError):
        configure_settings(trainable=True)
    with pytest.raises(ValidationError):
        with net:
            configure_settings(lif_smoothing=-1)


def _ff_net(seed=0, neuron_type=None, n=16):
    neuron_type = nengo.LIF() if neuron_type is None else neuron_type
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(np.zeros(1), label="inp")
        a = nengo.Ensemble(n, 1, neuron_type=neuron_type, label="a")
        b = nengo.Ensemble(n, 1, neuron_type=neuron_type, label="b")
        out = nengo.Node(size_in=1, label="out")
        c_in = nengo.Connection(inp, a, synapse=None)
        c_ab = nengo.Connection(a, b, function=np.square, synapse=None)
        c_out = nengo.Connection(b, out, synapse=None)
        p = nengo.Probe(out)
    objs = dict(inp=inp, a=a, b=b, out=out, c_in=c_in, c_ab=c_ab, c_out=c_out, p=p)
    return net, objs


def _data(n_items=64, n_steps=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n_items, 1, 1)).repeat(n_steps, axis=1)
    return x, x**2


def _sim(net, mb=16, **kwargs):
    return nengojax.Simulator(
        net, minibatch_size=mb, progress_bar=False, optimize=False, seed=3, **kwargs
    )


def test_trainable_config_freezes_params():
    net, o = _ff_net()
    with net:
        configure_settings(trainable=None)
        net.config[o["a"]].trainable = False
        net.config[o["c_ab"]].trainable = False
        net.config[o["b"].neurons].trainable = False  # b: encoders only
    x, y = _data()
    with _sim(net) as sim:
        before = dict(sim.params)
        sim.compile(optax.adam(0.02), {o["p"]: losses.mse})
        sim.fit({o["inp"]: x}, {o["p"]: y}, epochs=2, verbose=0)
        key = sim.compiled.key
        frozen = [
            key(o["a"], "encoders"),
            key(o["a"].neurons, "bias"),
            key(o["c_ab"], "weights"),
            key(o["b"].neurons, "bias"),
        ]
        trained = [key(o["b"], "encoders"), key(o["c_out"], "weights")]
        for k in frozen:
            np.testing.assert_array_equal(sim.params[k], before[k])
        for k in trained:
            assert not np.array_equal(sim.params[k], before[k]), k
        assert sorted(training.trainable_keys(sim.compiled)) == sorted(trained)


def test_learning_rule_connection_warns():
    with nengo.Network(seed=0) as net:
        configure_settings()
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(10, 1)
        conn = nengo.Connection(a, b, learning_rule_type=nengo.PES())
        nengo.Connection(b, conn.learning_rule)
        net.config[conn].trainable = True
    compiled = nengojax.compile(net)
    with pytest.warns(UserWarning, match="online learning rule"):
        keys = training.trainable_keys(compiled)
    assert compiled.program.key(conn, "weights") not in keys
    with pytest.raises(ValidationError, match="simulation state"):
        compiled.key(conn, "weights")  # not a param: state the learning rule changes


def test_tutorial_biases_trainable(monkeypatch):
    # NengoDL's tutorial network: nengo's operator merger must not put the biases
    # in an array with state (they would then not be parameters)
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3))
        a = nengo.Ensemble(20, 1)
        b = nengo.Ensemble(20, 1)
        out = nengo.Node(size_in=1)
        nengo.Connection(inp, a, synapse=None)
        nengo.Connection(a, b, function=np.square, synapse=None)
        nengo.Connection(b, out, function=np.sin, synapse=None)
        nengo.Probe(inp)
        nengo.Probe(out, synapse=0.04)
        p = nengo.Probe(out)
        configure_settings(trainable=False)
        net.config[nengo.Ensemble].trainable = True
    with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        key = sim.compiled.key
        expect = [key(e, "encoders") for e in (a, b)] + [key(e.neurons, "bias") for e in (a, b)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sim.compile(optax.sgd(0.1), {p: losses.mse})
        assert sorted(sim.trainer.spec.trainable) == sorted(expect)
        # a configured-trainable signal that is not a parameter is reported
        params = dict(sim.compiled.program.params)
        del params[key(a.neurons, "bias")]
        monkeypatch.setattr(sim.compiled.program, "params", params)
        with pytest.warns(UserWarning, match="optimize=False"):
            sim.compile(optax.sgd(0.1), {p: losses.mse})


# --- the pure layer ----------------------------------------------------------------------


def _recurrent_net(seed=1):
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(np.zeros(1))
        ens = nengo.Ensemble(24, 1)
        nengo.Connection(inp, ens, synapse=0.005)
        nengo.Connection(ens, ens, synapse=0.02, transform=0.5)
        out = nengo.Node(size_in=1)
        nengo.Connection(ens, out, synapse=0.01)
        p = nengo.Probe(out)
    return net, inp, p


def _recurrent_data(n_items=32, n_steps=15, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.8, 0.8, size=(n_items, 1, 1)).repeat(n_steps, axis=1)
    t = np.arange(1, n_steps + 1)[None, :, None] * 0.001
    y = -x * (1 - np.exp(-t / 0.005))
    return x.astype(np.float32), y.astype(np.float32)


def test_recurrent_training_lowers_loss():
    net, inp, p = _recurrent_net()
    x, y = _recurrent_data()
    with _sim(net, mb=8) as sim:
        # small steps: Adam moves every decoder by ~lr per step, and decoders
        # multiply rates of ~100 Hz
        sim.compile(optax.adam(3e-4), {p: losses.mse})
        before = sim.evaluate({inp: x}, {p: y})["loss"]
        hist = sim.fit({inp: x}, {p: y}, epochs=6, verbose=0)
        after = sim.evaluate({inp: x}, {p: y})["loss"]
    loss = hist.history["loss"]
    assert len(loss) == 6 and loss[-1] < 0.5 * loss[0]
    assert after < 0.5 * before


def test_remat_same_gradients():
    net, inp, p = _recurrent_net()
    x, y = _recurrent_data(n_items=4)
    compiled = nengojax.compile(net)
    tr, fr = training.split_params(compiled.init_params(), training.trainable_keys(compiled))
    state = compiled.init_state(4)
    xs, ys = {compiled.key(inp): x}, {compiled.key(p): y}
    grads = []
    for remat in (False, True):
        fn = training.make_loss_fn(compiled, losses.mse, remat=remat, mode="spike_aware")
        g, _ = jax.jit(jax.grad(fn, has_aux=True))(tr, fr, state, xs, ys)
        grads.append(g)
    for k in tr:
        np.testing.assert_allclose(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-9)
        assert np.any(np.asarray(grads[0][k]) != 0)


@pytest.mark.parametrize("verbose", [0, 1])
def test_own_loop_equals_fit(verbose):
    net, o = _ff_net()
    x, y = _data(n_items=64)
    x, y = x.astype(np.float32), y.astype(np.float32)
    with _sim(net) as sim:
        sim.compile(optax.rmsprop(0.01), {o["p"]: losses.mse})
        hist = sim.fit({o["inp"]: x}, {o["p"]: y}, epochs=3, verbose=verbose)
        fitted = jax.device_get(sim.params)
        seed = sim.seed
    with _sim(net) as sim2:
        compiled = sim2.compiled
        params = compiled.init_params()
        trainable, frozen = training.split_params(params, training.trainable_keys(compiled))
        opt = optax.rmsprop(0.01)
        opt_state = opt.init(trainable)
        step = training.make_train_step(compiled, opt, {compiled.key(o["p"]): losses.mse})
        state0 = compiled.init_state(16, seed=seed)
        epoch_losses = []
        for epoch in range(3):
            values = []
            for idx in training.minibatch_indices(64, 16, epoch, seed):
                xb = {compiled.key(o["inp"]): x[idx]}
                yb = {compiled.key(o["p"]): y[idx]}
                trainable, opt_state, loss, aux = step(
                    trainable, frozen, opt_state, state0, xb, yb
                )
                values.append(float(loss))
            epoch_losses.append(np.mean(values))
    for k, v in trainable.items():
        np.testing.assert_array_equal(fitted[k], v, err_msg=k)
    np.testing.assert_allclose(hist.history["loss"], epoch_losses, rtol=1e-6)


def test_pure_layer_shapes_and_aux():
    net, o = _ff_net()
    compiled = nengojax.compile(net)
    x, y = _data(n_items=4)
    tr, fr = training.split_params(compiled.init_params(), training.trainable_keys(compiled))
    fn = training.make_loss_fn(
        compiled, {o["p"]: losses.mse}, loss_weights={o["p"]: 2.0}, metrics=[losses.mse]
    )
    xs, ys = {compiled.key(o["inp"]): x}, {compiled.key(o["p"]): y}
    value, aux = fn(tr, fr, compiled.init_state(4), xs, ys)
    pk = compiled.key(o["p"])
    np.testing.assert_allclose(value, 2 * aux["losses"][pk], rtol=1e-6)
    np.testing.assert_allclose(aux["metrics"][pk]["mse"], aux["losses"][pk], rtol=1e-6)
    eval_step = training.make_eval_fn(compiled, {o["p"]: losses.mse})
    ev, _ = eval_step(compiled.init_params(), compiled.init_state(4), xs, ys)
    assert np.isfinite(float(ev))
    predict = training.make_predict_fn(compiled)
    _, probes = predict(compiled.init_params(), compiled.init_state(4), xs, 1)
    assert probes[pk].shape == (4, 1, 1)
    with pytest.raises(ValidationError, match="optax"):
        training.make_train_step(compiled, "adam", losses.mse)
    with pytest.raises(ValidationError, match="trainable keys"):
        training.split_params(compiled.init_params(), ["nope"])
    idx = training.minibatch_indices(10, 3, epoch=0, seed=1)
    assert len(idx) == 3 and all(len(i) == 3 for i in idx)
    assert len(set(np.concatenate(idx))) == 9
    assert not np.array_equal(
        np.concatenate(idx), np.concatenate(training.minibatch_indices(10, 3, 1, 1))
    )


# --- Simulator ---------------------------------------------------------------------------


def _rate_net(seed=0):
    """Rate neurons and every kind of connection (for exact nengo round trips)."""
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node([0.3, -0.2], label="inp")
        a = nengo.Ensemble(20, 2, neuron_type=nengo.LIFRate(), label="a")
        b = nengo.Ensemble(15, 1, neuron_type=nengo.RectifiedLinear(), radius=1.5, label="b")
        c = nengo.Ensemble(10, 3, neuron_type=nengo.LIFRate(), label="c")
        out = nengo.Node(size_in=2, label="out")
        nengo.Connection(inp, a, transform=[[1.0, 0.5], [-0.3, 1.0]], synapse=0.005)
        nengo.Connection(a, b, function=lambda v: v[0] * v[1], synapse=0.01)
        nengo.Connection(
            a, c[1:], function=lambda v: [v[0], v[1], v[0]], transform=np.ones((2, 3))
        )
        nengo.Connection(b.neurons, c.neurons, transform=np.full((10, 15), 0.002))
        nengo.Connection(b, out[0], synapse=None)
        nengo.Connection(c, out, transform=[[1, 0, 0.5], [0, 1, -0.5]], synapse=0.005)
        p = nengo.Probe(out)
    return net, inp, p


def test_freeze_params_round_trip():
    net, inp, p = _rate_net()
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, size=(16, 10, 2)).astype(np.float32)
    y = np.tanh(x).astype(np.float32)
    const = np.tile(np.array([[[0.3, -0.2]]], np.float32), (16, 40, 1))
    with _sim(net) as sim:
        before = sim.predict({inp: const})[p]
        sim.compile(optax.adam(0.02), {p: losses.mse})
        sim.fit({inp: x}, {p: y}, epochs=3, verbose=0)
        trained = sim.predict({inp: const})[p]
        assert not np.allclose(trained, before, atol=1e-3)
        ens = net.ensembles[0]
        data = sim.data[ens]
        np.testing.assert_allclose(
            data.bias, sim.params[sim.compiled.key(ens.neurons, "bias")], rtol=1e-6
        )
        kwargs = sim.get_nengo_params(ens)
        assert set(kwargs) == {"encoders", "gain", "bias", "normalize_encoders"}
        sim.freeze_params(net)
        scaled = {e: sim.data[e].scaled_encoders for e in net.ensembles}
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(40)
    np.testing.assert_allclose(ref.data[p], trained[0], atol=2e-4)
    for e in net.ensembles:
        np.testing.assert_allclose(ref.data[e].scaled_encoders, scaled[e], rtol=1e-5, atol=1e-6)
    with _sim(net) as fresh:  # a new nengojax simulator of the frozen network
        np.testing.assert_allclose(fresh.predict({inp: const})[p], trained, atol=2e-5)


def test_sim_data_shows_trained_values():
    net, o = _ff_net()
    x, y = _data(n_items=32)
    with _sim(net) as sim:
        built = sim.data[o["b"]]
        assert built is sim.model.params[o["b"]]  # untouched before training
        sim.compile(optax.adam(0.05), {o["p"]: losses.mse})
        sim.fit({o["inp"]: x}, {o["p"]: y}, epochs=1, verbose=0)
        key = sim.compiled.key
        np.testing.assert_allclose(
            sim.data[o["b"]].scaled_encoders, sim.params[key(o["b"], "encoders")], rtol=1e-6
        )
        np.testing.assert_allclose(
            sim.data[o["c_out"]].weights, sim.params[key(o["c_out"], "weights")], rtol=1e-6
        )
        assert not np.allclose(sim.data[o["b"]].bias, built.bias)


def test_save_load_round_trip(tmp_path):
    net, o = _ff_net()
    other, _ = _ff_net(n=12)
    x, y = _data(n_items=32)
    with _sim(net) as sim:
        sim.compile(optax.adam(0.05), {o["p"]: losses.mse})
        sim.fit({o["inp"]: x}, {o["p"]: y}, epochs=1, verbose=0)
        path = sim.save_params(tmp_path / "trained", include_state=True)
        assert path.endswith(".npz")
        expect = sim.predict({o["inp"]: x})[o["p"]]
        saved = jax.device_get(sim.params)
    with _sim(net) as sim2:
        sim2.load_params(path, include_state=True)
        for k, v in saved.items():
            np.testing.assert_array_equal(sim2.params[k], v)
        np.testing.assert_array_equal(sim2.predict({o["inp"]: x})[o["p"]], expect)
    with _sim(other) as sim3:
        init = jax.device_get(sim3.params)
        with pytest.raises(ValidationError, match="different model"):
            sim3.load_params(path)
        for k, v in init.items():
            np.testing.assert_array_equal(sim3.params[k], v)
        (tmp_path / "junk.npz").write_bytes(b"not a file")
        with pytest.raises(ValidationError):
            sim3.load_params(tmp_path / "junk.npz")


def test_bad_inputs(tmp_path):
    net, o = _ff_net()
    x, y = _data(n_items=32)
    inp, p = o["inp"], o["p"]
    with nengo.Network():
        foreign = nengo.Probe(nengo.Node([0]))
    with _sim(net) as sim:
        init = jax.device_get(sim.params)
        with pytest.raises(SimulationError, match="compile"):
            sim.fit({inp: x}, {p: y})
        with pytest.raises(ValidationError, match="optax"):
            sim.compile(optimizer="adam", loss=losses.mse)
        with pytest.raises(ValidationError, match="optax"):
            sim.compile(optimizer=lambda g: g, loss=losses.mse)
        with pytest.raises(ValidationError, match="not a Probe"):
            sim.compile(optax.adam(0.1), {foreign: losses.mse})
        sim.compile(loss={p: losses.mse})  # evaluation only
        with pytest.raises(SimulationError, match="optimizer"):
            sim.fit({inp: x}, {p: y})
        sim.compile(optax.adam(0.1), {p: losses.mse})
        with pytest.raises(ValidationError, match="same number of items"):
            sim.fit({inp: x}, {p: y[:16]})
        with pytest.raises(ValidationError, match="same number of steps"):
            sim.fit({inp: x}, {p: np.repeat(y, 2, axis=1)})
        with pytest.raises(ValidationError, match="expected shape"):
            sim.fit({inp: x[:, :, 0]}, {p: y})
        bad = y.copy()
        bad[3, 0, 0] = np.nan
        with pytest.raises(ValidationError, match="nan_mse"):
            sim.fit({inp: x}, {p: bad})
        with pytest.raises(ValidationError, match="not an input Node"):
            sim.fit({o["out"]: x}, {p: y})
        with pytest.raises(ValidationError, match="not a Probe"):
            sim.fit({inp: x}, {foreign: y})
        with pytest.raises(ValidationError, match="fewer"):
            sim.fit({inp: x[:4]}, {p: y[:4]})
        with pytest.raises(ValidationError, match="NaN"):
            sim.fit({inp: np.full_like(x, np.nan)}, {p: y})
        assert sim.trainer.spec.opt_state is None
        for k, v in init.items():  # nothing trained
            np.testing.assert_array_equal(sim.params[k], v)
        sim.compile(optax.adam(0.1), {p: losses.nan_mse})
        hist = sim.fit({inp: x}, {p: bad}, epochs=1, verbose=0)
        assert np.isfinite(hist.history["loss"][0])
        with pytest.raises(ValidationError, match="not a nengojax parameter file"):
            np.savez(tmp_path / "plain.npz", a=np.zeros(2))
            sim.load_params(tmp_path / "plain.npz")
    with pytest.raises(nengo.exceptions.SimulatorClosed):
        sim.fit({inp: x}, {p: y})


def test_fit_history_callbacks_and_warnings(tmp_path, capsys):
    net, o = _ff_net()
    x, y = _data(n_items=70)
    inp, p = o["inp"], o["p"]
    with _sim(net) as sim:
        sim.compile(optax.adam(0.01), losses.mse, metrics=[losses.mse])
        stop = EarlyStopping(monitor="loss", patience=0, min_delta=1e9)
        ckpt = ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.npz"), monitor="loss")
        with pytest.warns(UserWarning, match="last 6 item"):
            hist = sim.fit(
                {inp: x},
                {p: y},
                epochs=10,
                validation_data=({inp: x[:20]}, {p: y[:20]}),
                callbacks=[stop, ckpt],
                verbose=1,
            )
        printed = capsys.readouterr().out
        assert "Epoch 1/10" in printed and "loss" in printed
        assert stop.stopped_epoch == 1 and hist.epoch == [0, 1]
        pk = sim.compiled.key(p)
        for k in ("loss", "val_loss", f"{pk}_mse", f"val_{pk}_mse", f"val_{pk}_loss"):
            assert len(hist.history[k]) == 2, k
        assert len(ckpt.saved) == 2
        last = jax.device_get(sim.params)
        sim.load_params(ckpt.saved[0])
        sim.load_params(ckpt.saved[-1])
        for k, v in last.items():
            np.testing.assert_array_equal(sim.params[k], v)


def test_evaluate_predict_stateful():
    net, inp, p = _recurrent_net()
    x, y = _recurrent_data(n_items=8, n_steps=10)
    with _sim(net, mb=8) as sim:
        sim.compile(loss={p: losses.mse})
        first = sim.predict({inp: x})[p]
        again = sim.predict({inp: x})[p]
        np.testing.assert_array_equal(first, again)
        assert first.shape == (8, 10, 1) and sim.n_steps == 0
        ev = sim.evaluate({inp: x}, {p: y})
        np.testing.assert_allclose(ev["loss"], np.mean((first - y) ** 2), rtol=1e-5)
        s1 = sim.predict({inp: x}, stateful=True)[p]
        np.testing.assert_array_equal(s1, first)
        assert sim.n_steps == 10
        s2 = sim.predict({inp: x}, stateful=True)[p]
        assert not np.allclose(s2, first) and sim.n_steps == 20
        # 5 items on a minibatch of 8: padded, not dropped
        np.testing.assert_array_equal(sim.predict({inp: x[:5]})[p], first[:5])


def test_spike_aware_fit():
    net, o = _ff_net()
    with net:
        configure_settings(spike_aware=True)
    x, y = _data(n_items=32, n_steps=3)
    with _sim(net) as sim:
        sim.compile(optax.adam(0.01), {o["p"]: losses.mse})
        hist = sim.fit({o["inp"]: x}, {o["p"]: y}, epochs=2, verbose=0)
    assert hist.params["mode"] == "spike_aware"
    assert np.all(np.isfinite(hist.history["loss"]))


class _BadGradReLU(nengo.RectifiedLinear):
    """ReLU whose JAX step has a wrong (doubled) gradient."""


@jax.custom_jvp
def _bad_relu(J):
    return jnp.maximum(J, 0)


@_bad_relu.defjvp
def _bad_relu_jvp(primals, tangents):
    (J,), (dJ,) = primals, tangents
    return jnp.maximum(J, 0), 2.0 * jnp.where(J > 0, dJ, 0)


@register_neuron_step(_BadGradReLU)
def _bad_step(nt, dt, J, state, rng):
    return nt.amplitude * _bad_relu(J), state


def test_check_gradients():
    net, inp, p = _recurrent_net()
    with _sim(net, mb=2) as sim:
        results = sim.check_gradients(n_steps=5)
        assert all(np.isfinite(a) and np.isfinite(n) for a, n in results)
    bad_net, o = _ff_net(neuron_type=_BadGradReLU())
    with _sim(bad_net, mb=2) as sim:
        x, _ = _data(n_items=2)
        with pytest.raises(SimulationError, match="gradient check failed"):
            sim.check_gradients({o["inp"]: x})


def test_jax_node_params_train_and_freeze():
    with nengo.Network(seed=0) as net:
        configure_settings()
        inp = nengo.Node(np.zeros(2))
        node = nengojax.JaxNode(
            lambda prm, x: jnp.tanh(x @ prm["w"] + prm["b"]),
            shape_in=(2,),
            pass_time=False,
            params={"w": np.eye(2), "b": np.zeros(2)},
        )
        frozen_node = nengojax.JaxNode(
            lambda prm, x: prm * x, shape_in=(2,), pass_time=False, params=np.ones(2)
        )
        nengo.Connection(inp, node, synapse=None)
        nengo.Connection(node, frozen_node, synapse=None)
        p = nengo.Probe(frozen_node)
        net.config[frozen_node].trainable = False
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(32, 1, 2)).astype(np.float32)
    y = np.tanh(x @ np.array([[0.5, -1.0], [1.0, 0.3]]) + 0.2).astype(np.float32)
    with _sim(net) as sim:
        key = sim.compiled.key
        assert sorted(training.trainable_keys(sim.compiled)) == [
            key(node, "params/b"),
            key(node, "params/w"),
        ]
        sim.compile(optax.adam(0.05), {p: losses.mse})
        hist = sim.fit({inp: x}, {p: y}, epochs=5, verbose=0)
        assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
        np.testing.assert_array_equal(sim.params[key(frozen_node, "params")], np.ones(2))
        trained = sim.get_nengo_params(node)["params"]
        np.testing.assert_allclose(trained["w"], sim.params[key(node, "params/w")])
        sim.freeze_params([node])
        expect = sim.predict({inp: x})[p]
    with _sim(net) as fresh:
        np.testing.assert_allclose(fresh.predict({inp: x})[p], expect, atol=1e-6)


def test_regularize_without_target():
    net, o = _ff_net()
    with net:
        p_act = nengo.Probe(o["b"].neurons)
    x, y = _data(n_items=32)
    with _sim(net) as sim:
        sim.compile(
            optax.adam(0.01),
            {o["p"]: losses.mse, p_act: losses.Regularize(order=1, weight=1e-3)},
            loss_weights={p_act: 0.5},
        )
        hist = sim.fit({o["inp"]: x}, {o["p"]: y}, epochs=2, verbose=0)
        ev = sim.evaluate({o["inp"]: x}, {o["p"]: y})
    pk, ak = sim.compiled.key(o["p"]), sim.compiled.key(p_act)
    assert set(hist.history) == {"loss", f"{pk}_loss", f"{ak}_loss"}
    np.testing.assert_allclose(ev["loss"], ev[f"{pk}_loss"] + 0.5 * ev[f"{ak}_loss"], rtol=1e-5)
    assert ev[f"{ak}_loss"] > 0


def test_stateful_fit_and_no_minibatch():
    net, inp, p = _recurrent_net()
    x, y = _recurrent_data(n_items=4, n_steps=10)
    with nengojax.Simulator(net, progress_bar=False, seed=3) as sim:  # no minibatch_size
        sim.compile(optax.adam(1e-4), {p: losses.mse})
        state = jax.device_get(sim.state)
        sim.fit({inp: x}, {p: y}, epochs=1, verbose=0)
        assert sim.n_steps == 0
        leaves = jax.tree_util.tree_leaves
        for a, b in zip(leaves(state), leaves(sim.state), strict=True):
            np.testing.assert_array_equal(a, b)
        sim.fit({inp: x}, {p: y}, epochs=1, verbose=0, stateful=True)
        assert sim.n_steps == 40  # 4 minibatches of one item, 10 steps each
        shapes = [np.shape(v) for v in jax.tree_util.tree_leaves(sim.state)]
        assert shapes == [np.shape(v) for v in jax.tree_util.tree_leaves(state)]
        sim.run_steps(5)
        assert sim.data[p].shape == (5, 1)
