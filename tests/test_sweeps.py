"""Sweeps with the functional API: ``jax.vmap`` over stacked params or states
equals the same simulations run one at a time."""

import jax
import jax.numpy as jnp
import nengo
import numpy as np

import nengojax

N_STEPS = 100


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def test_vmap_over_bias_equals_separate_runs():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(10 * t), label="stim")
        ens = nengo.Ensemble(30, 1, label="ens")
        nengo.Connection(stim, ens)
        p = nengo.Probe(ens, synapse=0.01)
        p_spikes = nengo.Probe(ens.neurons)
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    key = model.key(ens.neurons, "bias")
    assert key in params, sorted(params)
    rng = np.random.RandomState(1)
    biases = params[key][None] + rng.uniform(-2, 2, size=(64, *params[key].shape))
    biases = jnp.asarray(biases, params[key].dtype)

    def run(bias):
        return model.run({**params, key: bias}, state, N_STEPS)[1]

    swept = jax.jit(jax.vmap(run))(biases)
    assert swept[model.key(p)].shape == (64, N_STEPS, 1)
    sep = [run(b) for b in biases]
    for k in (model.key(p), model.key(p_spikes)):
        np.testing.assert_allclose(swept[k], np.stack([s[k] for s in sep]), atol=1e-5)
    # the sweep did change the output
    out = np.asarray(swept[model.key(p)])
    assert np.abs(out - out[:1]).max() > 0.05


def test_vmap_over_jax_node_param_equals_separate_runs():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: [np.sin(10 * t), np.cos(10 * t)], label="stim")
        node = nengojax.JaxNode(
            lambda prm, x: jnp.tanh(prm["w"] @ x), shape_in=2, pass_time=False,
            params={"w": np.eye(2)}, label="layer",
        )  # fmt: skip
        nengo.Connection(stim, node, synapse=None)
        p = nengo.Probe(node, synapse=0.005)
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    key = model.key(node, "params/w")
    ws = jnp.asarray(np.random.RandomState(2).normal(size=(64, 2, 2)), params[key].dtype)

    def run(w):
        return model.run({**params, key: w}, state, N_STEPS)[1][model.key(p)]

    swept = jax.jit(jax.vmap(run))(ws)
    sep = np.stack([run(w) for w in ws])
    np.testing.assert_allclose(swept, sep, atol=1e-6)
    # and equals the formula (the probe's synapse delays its output by one step)
    t = (np.arange(N_STEPS) + 1) * model.dt
    x = np.stack([np.sin(10 * t), np.cos(10 * t)], axis=-1)
    direct = np.tanh(np.einsum("kij,tj->kti", np.asarray(ws), x))
    filt = nengo.Lowpass(0.005).filt(direct, dt=model.dt, axis=1, y0=0)
    np.testing.assert_allclose(swept[:, 1:], filt[:, :-1], atol=1e-4)


def _poisson_net():
    # no host sources (a constant input Node): the only randomness is JAX's,
    # drawn from state["rng"]
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5], label="stim")
        ens = nengo.Ensemble(40, 1, neuron_type=nengo.PoissonSpiking(nengo.LIFRate()))
        nengo.Connection(stim, ens)
        p = nengo.Probe(ens, synapse=0.01)
    return net, p


def test_vmap_over_seeds_equals_separate_runs():
    net, p = _poisson_net()
    model = nengojax.compile(net)
    assert not model.host_sources
    params = model.init_params()
    seeds = np.arange(16)
    states = [model.init_state(seed=int(s)) for s in seeds]
    # init_state takes a Python int, so it is not vmapped itself: stack its results
    stacked = _stack(states)
    assert stacked["rng"].shape[0] == len(seeds)

    def run(st):
        return model.run(params, st, N_STEPS)[1][model.key(p)]

    swept = np.asarray(jax.jit(jax.vmap(run))(stacked))
    sep = np.stack([run(st) for st in states])
    np.testing.assert_allclose(swept, sep, atol=1e-5)
    # different seeds give different spike trains
    assert np.abs(swept[1:] - swept[:1]).max() > 1e-3
    # the same seed twice gives the same output
    np.testing.assert_allclose(run(model.init_state(seed=3)), sep[3], atol=0)


def test_vmap_over_seeds_with_host_noise():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(nengo.processes.WhiteNoise(), size_out=1, label="noise")
        ens = nengo.Ensemble(20, 1)
        nengo.Connection(stim, ens)
        p = nengo.Probe(ens, synapse=0.01)
    model = nengojax.compile(net)
    params = model.init_params()
    states = [model.init_state(seed=s) for s in range(4)]

    def run(st):
        return model.run(params, st, N_STEPS)[1][model.key(p)]

    swept = jax.vmap(run)(_stack(states))
    np.testing.assert_allclose(swept, np.stack([run(st) for st in states]), atol=1e-5)


def test_tutorial_biases_are_params():
    missing = []
    for seed in range(10):
        with nengo.Network(seed=seed) as net:
            inpt = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3))
            square = nengo.Ensemble(20, 1)
            sin = nengo.Ensemble(20, 1)
            outpt = nengo.Node(size_in=1)
            nengo.Connection(inpt, square)
            nengo.Connection(square, sin, function=np.square)
            nengo.Connection(sin, outpt, function=np.sin)
            nengo.Probe(outpt, synapse=0.01)
        model = nengojax.compile(net)
        params = model.init_params()
        for ens in (square, sin):
            if model.key(ens.neurons, "bias") not in params:
                missing.append((seed, ens))
    assert not missing
