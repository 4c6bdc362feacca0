"""Whole models from nengo.networks: nengojax against nengo.Simulator."""

import nengo
import numpy as np
import pytest
from nengo.processes import PresentInput

import nengojax

T = 0.3
DT = 0.001


def _input_fn(d, phase=0.0):
    def fn(t):
        return 0.8 * np.sin(2 * np.pi * (t + phase) * np.arange(1, d + 1))

    return fn


def ensemble_array(neuron_type):
    with nengo.Network(seed=1) as net:
        inp = nengo.Node(_input_fn(3), label="inp")
        ea = nengo.networks.EnsembleArray(30, n_ensembles=3, neuron_type=neuron_type)
        nengo.Connection(inp, ea.input)
        p = nengo.Probe(ea.output, synapse=0.01)
    return net, inp, p


def circular_convolution(neuron_type):
    with nengo.Network(seed=2) as net:
        inp = nengo.Node(_input_fn(4), label="inp")
        cc = nengo.networks.CircularConvolution(30, dimensions=2)
        for e in cc.all_ensembles:
            e.neuron_type = neuron_type
        nengo.Connection(inp[:2], cc.input_a)
        nengo.Connection(inp[2:], cc.input_b)
        p = nengo.Probe(cc.output, synapse=0.01)
    return net, inp, p


def product(neuron_type):
    with nengo.Network(seed=3) as net:
        inp = nengo.Node(_input_fn(2), label="inp")
        prod = nengo.networks.Product(40, dimensions=1)
        for e in prod.all_ensembles:
            e.neuron_type = neuron_type
        nengo.Connection(inp[0], prod.input_a)
        nengo.Connection(inp[1], prod.input_b)
        p = nengo.Probe(prod.output, synapse=0.01)
    return net, inp, p


def basal_ganglia_thalamus(neuron_type):
    with nengo.Network(seed=4) as net:
        inp = nengo.Node(lambda t: [0.8, 0.4 + 0.3 * np.sin(8 * t), 0.2], label="inp")
        bg = nengo.networks.BasalGanglia(3, n_neurons_per_ensemble=20)
        th = nengo.networks.Thalamus(3, n_neurons_per_ensemble=20)
        for e in bg.all_ensembles + th.all_ensembles:
            e.neuron_type = neuron_type
        nengo.Connection(inp, bg.input)
        nengo.Connection(bg.output, th.input)
        p = nengo.Probe(th.output, synapse=0.01)
    return net, inp, p


def associative_memory(neuron_type):
    vocab = np.eye(3)
    with nengo.Network(seed=5) as net:
        inp = nengo.Node(lambda t: [0.9 * np.cos(3 * t), 0.9 * np.sin(3 * t), 0.1], label="inp")
        am = nengo.networks.AssociativeMemory(vocab, n_neurons=30)
        for e in am.all_ensembles:
            e.neuron_type = neuron_type
        nengo.Connection(inp, am.input)
        p = nengo.Probe(am.output, synapse=0.01)
    return net, inp, p


def input_gated_memory(neuron_type):
    with nengo.Network(seed=6) as net:
        inp = nengo.Node(lambda t: [np.sin(5 * t), float(t > 0.15)], label="inp")
        mem = nengo.networks.InputGatedMemory(40, dimensions=1)
        for e in mem.all_ensembles:
            e.neuron_type = neuron_type
        nengo.Connection(inp[0], mem.input)
        nengo.Connection(inp[1], mem.gate)
        p = nengo.Probe(mem.output, synapse=0.01)
    return net, inp, p


# nengo 4 dropped nengo.networks.Integrator and Oscillator; these are their
# classic definitions (a recurrently connected ensemble).
def integrator(neuron_type, tau=0.1):
    with nengo.Network(seed=7) as net:
        inp = nengo.Node(lambda t: np.cos(6 * t), label="inp")
        ens = nengo.Ensemble(60, 1, neuron_type=neuron_type)
        nengo.Connection(inp, ens, transform=tau, synapse=tau)
        nengo.Connection(ens, ens, synapse=tau)
        p = nengo.Probe(ens, synapse=0.01)
    return net, inp, p


def oscillator(neuron_type, tau=0.1, freq=10):
    w = 2 * np.pi * freq
    with nengo.Network(seed=8) as net:
        inp = nengo.Node(lambda t: [1, 0] if t < 0.05 else [0, 0], label="inp")
        ens = nengo.Ensemble(80, 2, neuron_type=neuron_type)
        nengo.Connection(inp, ens, transform=tau, synapse=tau)
        nengo.Connection(ens, ens, transform=[[1, -w * tau], [w * tau, 1]], synapse=tau)
        p = nengo.Probe(ens, synapse=0.01)
    return net, inp, p


MODELS = [
    ensemble_array,
    circular_convolution,
    product,
    basal_ganglia_thalamus,
    associative_memory,
    input_gated_memory,
    integrator,
    oscillator,
]


def _tolerance(neuron_type, ref):
    scale = max(np.abs(ref).max(), 1e-3)
    # rate neurons agree to float32 round-off; spiking neurons also agree except
    # where float32 round-off flips a spike by one step, which a 10 ms filter
    # turns into a small bump
    return (2e-4 if not neuron_type.spiking else 0.1) * scale


@pytest.mark.parametrize("make", MODELS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("neuron_type", [nengo.LIFRate(), nengo.LIF()], ids=["rate", "spiking"])
def test_matches_nengo(make, neuron_type):
    net, _, p = make(neuron_type)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(T)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(T)
    assert sim.data[p].shape == ref.data[p].shape
    err = np.abs(sim.data[p] - ref.data[p])
    assert err.max() < _tolerance(neuron_type, ref.data[p])
    if neuron_type.spiking:  # most of the trace agrees much more closely
        assert np.median(err) < 1e-3 * max(np.abs(ref.data[p]).max(), 1e-3)


def _with_presented_input(make, neuron_type, values):
    """The same model, its input node replaced by a process playing ``values``."""
    net, inp, p = make(neuron_type)
    inp.output = PresentInput(values, presentation_time=DT)
    return net, p


@pytest.mark.parametrize("make", [ensemble_array, integrator, basal_ganglia_thalamus])
@pytest.mark.parametrize("neuron_type", [nengo.LIFRate(), nengo.LIF()], ids=["rate", "spiking"])
def test_minibatch_data_matches_separate_nengo_runs(make, neuron_type, rng):
    """Each minibatch item, fed its own ``data``, equals a nengo run on that input."""
    k, n = 3, 200
    net, inp, p = make(neuron_type)
    data = rng.uniform(-0.8, 0.8, size=(k, n, inp.size_out))
    # smooth the inputs a little so spiking comparisons are meaningful
    data = nengo.Lowpass(0.005).filt(data, axis=1, dt=DT)
    with nengojax.Simulator(net, minibatch_size=k, progress_bar=False) as sim:
        sim.run_steps(n, data={inp: data})
    assert sim.data[p].shape == (k, n, p.size_in)
    for i in range(k):
        ref_net, ref_p = _with_presented_input(make, neuron_type, data[i])
        with nengo.Simulator(ref_net, progress_bar=False) as ref:
            ref.run_steps(n)
        err = np.abs(sim.data[p][i] - ref.data[ref_p])
        assert err.max() < _tolerance(neuron_type, ref.data[ref_p])


@pytest.mark.parametrize("make", [integrator, product])
def test_data_without_minibatch(make, rng):
    n = 150
    net, inp, p = make(nengo.LIFRate())
    data = rng.uniform(-0.5, 0.5, size=(1, n, inp.size_out))
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(n, data={inp: data})
        # a second run without data falls back on the node's own function
        sim.run_steps(50)
    ref_net, ref_p = _with_presented_input(make, nengo.LIFRate(), data[0])
    with nengo.Simulator(ref_net, progress_bar=False) as ref:
        ref.run_steps(n)
    assert sim.data[p].shape == (n + 50, p.size_in)
    np.testing.assert_allclose(sim.data[p][:n], ref.data[ref_p], atol=2e-4)


def test_minibatch_without_data_repeats_the_model():
    """With no data and no noise, every item of a minibatch is the same run."""
    net, _, p = integrator(nengo.LIF())
    with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        sim.run(0.1)
    with nengojax.Simulator(net, progress_bar=False) as single:
        single.run(0.1)
    for i in range(4):
        np.testing.assert_allclose(sim.data[p][i], single.data[p], atol=1e-6)


def test_minibatch_noise_differs_per_item():
    with nengo.Network(seed=0) as net:
        u = nengo.Node(nengo.processes.WhiteNoise(), size_out=1)
        p = nengo.Probe(u)
    with nengojax.Simulator(net, minibatch_size=3, seed=5, progress_bar=False) as sim:
        sim.run(0.05)
    with nengo.Simulator(net, seed=5, progress_bar=False) as ref:
        ref.run(0.05)
    out = sim.data[p]
    np.testing.assert_allclose(out[0], ref.data[p], atol=1e-6)  # item 0 is nengo's stream
    assert not np.allclose(out[0], out[1])
    assert not np.allclose(out[1], out[2])
