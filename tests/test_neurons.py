"""nengojax's JAX neuron steps against nengo's NumPy ``step`` methods."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import pytest
from nengo.dists import Choice, Uniform
from nengo.neurons import (
    LIF,
    AdaptiveLIF,
    AdaptiveLIFRate,
    Izhikevich,
    LIFRate,
    PoissonSpiking,
    RatesToSpikesNeuronType,
    RectifiedLinear,
    RegularSpiking,
    Sigmoid,
    SpikingRectifiedLinear,
    StochasticSpiking,
    Tanh,
)

import nengojax
from nengojax.ops.registry import get_neuron_step

DT = 0.001


@pytest.fixture
def x64():
    """Turn on JAX's float64 mode for one test, then restore it."""
    prev = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """The simulator dtype (float64 runs with JAX's x64 mode on)."""
    if request.param == "float64":
        request.getfixturevalue("x64")
    return request.param


def _net(neuron_type, n=30, seed=3, inp=None):
    """An ensemble driven by a varying input, probing output, input and every state."""
    base = getattr(neuron_type, "base_type", neuron_type)
    kwargs = {"max_rates": Uniform(100, 200), "intercepts": Uniform(-0.8, 0.8)}
    if inp is None:
        inp = lambda t: np.sin(2 * np.pi * 3 * t)  # noqa: E731
    if isinstance(base, Sigmoid):  # a sigmoid's max rate must exceed half its ceiling
        kwargs["max_rates"] = Uniform(0.6 / base.tau_ref, 0.9 / base.tau_ref)
    if isinstance(base, Izhikevich):
        # nengo's forward Euler is unstable (and chaotic) for Izhikevich neurons far
        # below threshold, amplifying any rounding difference: stay near the range
        # where the neurons spike
        kwargs.update(encoders=Choice([[1.0]]), intercepts=Uniform(-0.8, 0.1))
        inp = lambda t: 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)  # noqa: E731
    with nengo.Network(seed=seed) as net:
        u = nengo.Node(inp)
        ens = nengo.Ensemble(n, 1, neuron_type=neuron_type, **kwargs)
        nengo.Connection(u, ens, synapse=None)
        probes = {name: nengo.Probe(ens.neurons, name) for name in ens.neurons.probeable}
    return net, probes


def _assert_mostly_close(actual, expected, name, rtol=1e-4, frac=0.05):
    """All but ``frac`` of the elements within ``rtol`` (of themselves or the max).

    In float32, rates right above the LIFRate threshold (infinite slope there)
    can move by a few Hz with the last bit of the current; they stay rare.
    """
    scale = max(np.abs(expected).max(), 1e-30)
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=rtol * scale)
    assert bad.mean() <= frac, (name, bad.sum(), actual[bad][:5], expected[bad][:5])
    assert np.abs(actual - expected).mean() <= rtol * scale, name


def _run_both(net, probes, dtype, t=0.3, **kwargs):
    with nengo.Simulator(net, progress_bar=False) as ref_sim:
        ref_sim.run(t)
    with nengojax.Simulator(net, progress_bar=False, dtype=dtype, **kwargs) as sim:
        sim.run(t)
    ref = {k: np.asarray(ref_sim.data[p]) for k, p in probes.items()}
    out = {k: np.asarray(sim.data[p]) for k, p in probes.items()}
    return ref, out


def _check_steps(neuron_type, J, output, states, rtol, max_flips=0):
    """Each probed step of nengojax against nengo's NumPy ``step`` (in float64).

    Step ``i`` of nengo starts from nengojax's state after step ``i - 1`` and
    gets nengojax's current ``J[i]``, so errors cannot build up: this compares
    the step functions element for element. ``max_flips`` elements may differ
    by more (a float32 spike landing on the other side of the threshold).
    """
    exp_out = np.zeros_like(output[1:], dtype=np.float64)
    exp_states = {k: np.array(v[:-1], dtype=np.float64) for k, v in states.items()}
    for i in range(len(output) - 1):
        neuron_type.step(
            DT,
            np.array(J[i + 1], dtype=np.float64),
            exp_out[i],
            **{k: v[i] for k, v in exp_states.items()},
        )
    pairs = [("output", output[1:], exp_out)]
    pairs += [(k, states[k][1:], exp_states[k]) for k in states]
    for name, actual, expected in pairs:
        scale = max(np.abs(expected).max(), 1.0)
        bad = ~np.isclose(actual, expected, rtol=rtol, atol=rtol * scale)
        assert bad.sum() <= max_flips, (name, bad.sum(), actual[bad], expected[bad])


def _check_all_steps(neuron_type, out, dtype):
    """`_check_steps` for a type (and, for rates-to-spikes, its base type too)."""
    f32 = dtype == "float32"
    rtol = 2e-5 if f32 else 1e-12
    flips = int(0.001 * out["output"].size) + 2 if f32 and neuron_type.spiking else 0
    if isinstance(neuron_type, RatesToSpikesNeuronType):
        base = neuron_type.base_type
        _check_steps(base, out["input"], out["rate_out"], {k: out[k] for k in base.state}, rtol, 0)
        J = out["rate_out"]
    else:
        J = out["input"]
    _check_steps(
        neuron_type, J, out["output"], {k: out[k] for k in neuron_type.state}, rtol, flips
    )


RATE_TYPES = [
    LIFRate(),
    LIFRate(tau_rc=0.03, tau_ref=0.0, amplitude=2.0),
    AdaptiveLIFRate(),
    AdaptiveLIFRate(tau_n=0.1, inc_n=0.5, tau_rc=0.03, tau_ref=0.003, amplitude=0.7),
    RectifiedLinear(),
    RectifiedLinear(amplitude=0.3),
    Sigmoid(),
    Sigmoid(tau_ref=0.004),
    Tanh(),
    Tanh(tau_ref=0.004),
]

SPIKING_TYPES = [
    LIF(),
    LIF(tau_rc=0.05, tau_ref=0.001, min_voltage=-1, amplitude=0.5),
    AdaptiveLIF(),
    AdaptiveLIF(tau_n=0.1, inc_n=0.5, tau_rc=0.03, tau_ref=0.003, min_voltage=-0.5, amplitude=0.7),
    SpikingRectifiedLinear(),
    SpikingRectifiedLinear(amplitude=0.3, initial_state={"voltage": Uniform(0, 0.2)}),
    Izhikevich(),
    Izhikevich(tau_recovery=0.03, coupling=0.25, reset_voltage=-60.0, reset_recovery=6.0),
    RegularSpiking(LIFRate()),
    RegularSpiking(Tanh(tau_ref=0.004), amplitude=0.5),
    RegularSpiking(AdaptiveLIFRate(tau_n=0.1, inc_n=0.3, tau_rc=0.03), amplitude=2.0),
]


def _spike_counts(output, amplitude):
    return np.round(output.sum(axis=0) * DT / amplitude).astype(int)


@pytest.mark.parametrize("neuron_type", RATE_TYPES, ids=repr)
def test_rate_types_match_nengo(neuron_type, dtype):
    assert get_neuron_step(neuron_type) is not None
    net, probes = _net(neuron_type)
    ref, out = _run_both(net, probes, dtype)
    assert out["output"].dtype == np.dtype(dtype)
    assert np.abs(ref["output"]).max() > 50  # the input drives the neurons

    # the whole simulation stays close to nengo's ...
    for name in probes:
        if dtype == "float32":
            _assert_mostly_close(out[name], ref[name], name)
        else:
            scale = np.abs(ref[name]).max()
            np.testing.assert_allclose(
                out[name], ref[name], rtol=1e-10, atol=1e-10 * scale, err_msg=name
            )
    # ... and each step matches nengo's step on the same currents and state
    _check_all_steps(neuron_type, out, dtype)


@pytest.mark.parametrize("neuron_type", SPIKING_TYPES, ids=repr)
def test_spiking_types_match_nengo(neuron_type, dtype):
    assert get_neuron_step(neuron_type) is not None
    net, probes = _net(neuron_type)
    ref, out = _run_both(net, probes, dtype)
    assert out["output"].dtype == np.dtype(dtype)
    amplitude = getattr(neuron_type, "amplitude", 1.0)
    ref_counts = _spike_counts(ref["output"], amplitude)
    assert np.abs(ref_counts).sum() > 50  # the neurons spike

    counts = _spike_counts(out["output"], amplitude)
    if dtype == "float64":
        # same spikes; Izhikevich amplifies 1e-14 differences in the currents
        np.testing.assert_array_equal(out["output"], ref["output"])
        rtol = 1e-2 if isinstance(neuron_type, Izhikevich) else 1e-10
        for name in probes:
            scale = max(np.abs(ref[name]).max(), 1.0)
            np.testing.assert_allclose(
                out[name], ref[name], rtol=0, atol=rtol * scale, err_msg=name
            )
    else:
        # float32 may move a spike by one step now and then
        assert np.abs(counts - ref_counts).max() <= 1
        assert np.count_nonzero(counts - ref_counts) <= 0.25 * len(counts)
        if "rate_out" in probes:  # the deterministic base type's rates
            _assert_mostly_close(out["rate_out"], ref["rate_out"], "rate_out")
    _check_all_steps(neuron_type, out, dtype)


@pytest.mark.parametrize(
    "neuron_type",
    [
        PoissonSpiking(LIFRate()),
        PoissonSpiking(Tanh(tau_ref=0.004), amplitude=0.5),
        StochasticSpiking(LIFRate(tau_rc=0.03), amplitude=2.0),
        StochasticSpiking(Tanh(tau_ref=0.004)),
    ],
    ids=repr,
)
def test_stochastic_types(neuron_type):
    assert get_neuron_step(neuron_type) is not None
    t = 1.0
    net, probes = _net(neuron_type, n=40, inp=lambda t: 0.6)
    ref, out = _run_both(net, probes, "float32", t=t)
    amp = neuron_type.amplitude

    # the base type's rates are deterministic: they match nengo's
    _assert_mostly_close(out["rate_out"], ref["rate_out"], "rate_out")
    rates = out["rate_out"][-1].astype(np.float64)  # the rates the spikes come from
    assert np.all(out["rate_out"] == out["rate_out"][-1])  # constant input and rates
    if neuron_type.negative:
        assert (rates < -20).sum() >= 5 and (rates > 20).sum() >= 5

    spikes = out["output"] * (DT / amp)  # signed spike counts per step
    np.testing.assert_allclose(spikes, np.round(spikes), atol=1e-4)
    spikes = np.round(spikes)
    assert np.all(spikes * np.sign(rates) >= 0)  # spikes carry the sign of the rate
    n_steps = spikes.shape[0]
    e = np.abs(rates) * DT
    mean = n_steps * e
    if isinstance(neuron_type, PoissonSpiking):
        var_step = e
    else:
        frac = e - np.floor(e)
        var_step = frac * (1 - frac)
        # stochastic rounding: floor(e) or floor(e) + 1 spikes in every step
        n = np.abs(spikes)
        assert np.all((n >= np.floor(e) - 1e-3) & (n <= np.floor(e) + 1 + 1e-3))
    var = n_steps * var_step
    counts = np.abs(spikes).sum(axis=0)
    ref_counts = np.abs(ref["output"] * (DT / amp)).sum(axis=0)

    # per neuron, and all together, within 5 standard deviations of the mean
    assert np.all(np.abs(counts - mean) <= 5 * np.sqrt(var) + 1e-3)
    assert np.all(np.abs(counts - ref_counts) <= 5 * np.sqrt(2 * var) + 1e-3)
    assert abs((counts - mean).sum()) <= 4 * np.sqrt(var.sum())

    # the per-step variance (pooled over active neurons) matches the distribution
    active = mean > 50
    assert active.sum() >= 10
    emp_var = np.var(np.abs(spikes[:, active]), axis=0).sum()
    assert emp_var == pytest.approx(var_step[active].sum(), rel=0.15)


def test_stochastic_minibatch_items_differ():
    net, probes = _net(StochasticSpiking(LIFRate()), n=20, inp=lambda t: 0.6)
    with nengojax.Simulator(net, progress_bar=False, minibatch_size=2) as sim:
        sim.run(0.2)
    out = sim.data[probes["output"]]
    assert out.shape == (2, 200, 20)
    assert out.sum() > 0
    assert not np.array_equal(out[0], out[1])
    # and time steps differ: not one frozen random draw
    assert len({tuple(row) for row in np.asarray(out[0] > 0)}) > 10


@pytest.mark.parametrize(
    "neuron_type",
    [
        LIFRate(),
        LIFRate(tau_rc=0.03, tau_ref=0.0, amplitude=2.0),
        AdaptiveLIFRate(tau_n=0.1, inc_n=0.5),
        Sigmoid(),
        Tanh(),
        RectifiedLinear(amplitude=0.5),
    ],
    ids=repr,
)
def test_rate_step_gradients_finite(neuron_type):
    step = get_neuron_step(neuron_type)
    J = np.array([-1e3, -200.0, -1.0, 0.0, 0.5, 1.0, 1.0 + 1e-6, 1.5, 10.0, 1e4], np.float32)
    names = list(neuron_type.make_state(len(J), rng=np.random.RandomState(0)))
    state = {name: jnp.zeros(J.shape, jnp.float32) for name in names}

    def out_fn(J):
        return step(neuron_type, DT, J, state, None)[0].sum()

    def all_fn(J):
        out, new_state = step(neuron_type, DT, J, state, None)
        return out.sum() + sum(v.sum() for v in new_state.values())

    @jax.jit
    def run(J):
        return step(neuron_type, DT, J, state, None)[0], jax.grad(out_fn)(J), jax.grad(all_fn)(J)

    out, g_out, g_all = (np.asarray(a) for a in run(jnp.asarray(J)))
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert np.all(np.isfinite(g_out)), g_out
    assert np.all(np.isfinite(g_all)), g_all

    # where smooth, the gradient is the derivative of nengo's rate function
    def nengo_out(J):
        o = np.zeros_like(J)
        neuron_type.step(DT, J, o, **{k: np.zeros_like(J) for k in names})
        return o

    smooth = [2, 4, 7, 8]  # J = -1, 0.5, 1.5, 10
    Jd, h = J[smooth].astype(np.float64), 1e-6
    fd = (nengo_out(Jd + h) - nengo_out(Jd - h)) / (2 * h)
    np.testing.assert_allclose(g_out[smooth], fd, rtol=2e-3, atol=1e-3)


def test_lif_rate_grad_values(x64):
    nt = LIFRate(tau_rc=0.02, tau_ref=0.002, amplitude=1.5)
    step = get_neuron_step(nt)
    J = jnp.asarray([0.5, 1.0, 2.0])
    g = jax.grad(lambda J: step(nt, DT, J, {}, None)[0].sum())(J)
    j = 1.0
    rate = 1.0 / (nt.tau_ref + nt.tau_rc * np.log1p(1 / j))
    expected = nt.amplitude * nt.tau_rc * rate**2 / (j * (j + 1))
    np.testing.assert_allclose(np.asarray(g), [0.0, 0.0, expected], rtol=1e-12)


def test_dtype_follows_J(x64):
    key = jax.random.PRNGKey(0)
    types = RATE_TYPES + SPIKING_TYPES[:8] + [RegularSpiking(LIFRate())]
    types += [PoissonSpiking(LIFRate()), StochasticSpiking(Tanh())]
    for nt in types:
        step = get_neuron_step(nt)
        names = [n for n in nt.make_state(7, rng=np.random.RandomState(0)) if n != "rng"]
        for dtype in (jnp.float32, jnp.float64):
            J = jax.ShapeDtypeStruct((7,), dtype)
            state = {n: J for n in names}
            out, new_state = jax.eval_shape(
                lambda J, s, nt=nt, step=step: step(nt, DT, J, s, key), J, state
            )
            assert out.dtype == dtype, nt
            assert out.shape == (7,), nt
            assert set(new_state) == set(names), nt
            for v in new_state.values():
                assert v.dtype == dtype and v.shape == (7,), nt


class CustomRate(nengo.neurons.NeuronType):
    """A neuron type nengojax knows nothing about, with state."""

    state = {"acc": Choice([0.0])}
    negative = False

    def gain_bias(self, max_rates, intercepts):
        gain = np.asarray(max_rates) / (40 * (1 - np.asarray(intercepts)))
        return gain, -np.asarray(intercepts) * gain

    def max_rates_intercepts(self, gain, bias):
        intercepts = -bias / gain
        return 40 * gain * (1 - intercepts), intercepts

    def step(self, dt, J, output, acc):
        output[...] = 40 * np.maximum(J, 0) * (1 + acc)
        acc += dt * np.abs(J)


class MyLIF(LIF):
    """A subclass with a step of its own: LIF's JAX step does not serve it, so
    its NumPy step runs on the host."""

    def step(self, dt, J, output, voltage, refractory_time):
        super().step(dt, J, output, voltage, refractory_time)


class PlainLIF(LIF):
    """A subclass that computes what LIF computes: LIF's JAX step serves it."""


def test_subclass_without_own_step_uses_base_step():
    net, probes = _net(PlainLIF(tau_rc=0.03), n=20)
    ref_net, ref_probes = _net(LIF(tau_rc=0.03), n=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no host-fallback warning
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sim.run(0.1)
    with nengojax.Simulator(ref_net, progress_bar=False) as ref:
        ref.run(0.1)
    for key in probes:
        np.testing.assert_array_equal(sim.data[probes[key]], ref.data[ref_probes[key]])


@pytest.mark.parametrize(
    "neuron_type", [CustomRate(), MyLIF(tau_rc=0.03), RegularSpiking(CustomRate())], ids=repr
)
def test_host_fallback(neuron_type):
    net, probes = _net(neuron_type, n=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sim.run(0.1)
            sim.run(0.05)  # another run length: no new warning
    msgs = [str(w.message) for w in caught if "no JAX implementation" in str(w.message)]
    name = type(neuron_type.base_type if hasattr(neuron_type, "base_type") else neuron_type)
    assert len(msgs) == 1, msgs
    assert name.__name__ in msgs[0]
    with nengo.Simulator(net, progress_bar=False) as ref_sim:
        ref_sim.run(0.15)
    for key, p in probes.items():
        ref = ref_sim.data[p]
        scale = max(np.abs(ref).max(), 1.0)
        if neuron_type.spiking and key == "output":
            amp = getattr(neuron_type, "amplitude", 1.0)
            counts = _spike_counts(sim.data[p], amp)
            assert np.abs(counts - _spike_counts(ref, amp)).max() <= 1
        elif not neuron_type.spiking or key == "rate_out":
            np.testing.assert_allclose(sim.data[p], ref, rtol=1e-5, atol=1e-5 * scale, err_msg=key)


@pytest.mark.parametrize(
    "neuron_type, random",
    [(LIF(), False), (RectifiedLinear(), False), (PoissonSpiking(LIFRate()), True)],
)
def test_only_random_neurons_make_keys(neuron_type, random):
    """A step whose neurons draw no random numbers makes no PRNG key (no
    threefry hash each step); stochastic neurons still get theirs."""
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(10, 1, neuron_type=neuron_type)
        nengo.Probe(ens.neurons)
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    text = str(jax.make_jaxpr(lambda p, s: model.run(p, s, 3))(params, state))
    assert ("random_fold_in" in text or "threefry" in text) == random
