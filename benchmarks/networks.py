"""Benchmark networks, built from nengo's public API in sizes a user would pick.

Each builder returns ``(network, input_node, probe)``; inputs are live (time-varying
signals), so neurons spike and activity changes every step.
"""

import nengo
import numpy as np


def _drive(d, label="inp"):
    freqs = 1.0 + np.arange(d) % 7

    def fn(t):
        return 0.7 * np.sin(2 * np.pi * freqs * t)

    return nengo.Node(fn, label=label)


def integrator(neuron_type, dimensions=32, neurons_per_d=64, tau=0.1, seed=0):
    """An EnsembleArray integrating its input (recurrent connection)."""
    with nengo.Network(seed=seed) as net:
        inp = _drive(dimensions)
        ea = nengo.networks.EnsembleArray(neurons_per_d, dimensions, neuron_type=neuron_type)
        nengo.Connection(inp, ea.input, transform=tau, synapse=tau)
        nengo.Connection(ea.output, ea.input, synapse=tau)
        p = nengo.Probe(ea.output, synapse=0.01)
    return net, inp, p


def cconv(neuron_type, dimensions=32, neurons_per_d=64, seed=0):
    """Circular convolution of two vectors."""
    with nengo.Network(seed=seed) as net:
        inp = _drive(2 * dimensions)
        cc = nengo.networks.CircularConvolution(neurons_per_d, dimensions)
        for ens in cc.all_ensembles:
            ens.neuron_type = neuron_type
        nengo.Connection(inp[:dimensions], cc.input_a)
        nengo.Connection(inp[dimensions:], cc.input_b)
        p = nengo.Probe(cc.output, synapse=0.01)
    return net, inp, p


def pes(neuron_type, dimensions=32, neurons_per_d=64, seed=0):
    """An EnsembleArray learning a communication channel with PES."""
    with nengo.Network(seed=seed) as net:
        inp = _drive(dimensions)
        pre = nengo.networks.EnsembleArray(neurons_per_d, dimensions, neuron_type=neuron_type)
        post = nengo.Node(size_in=dimensions)
        err = nengo.Node(size_in=dimensions)
        nengo.Connection(inp, pre.input)
        for i, ens in enumerate(pre.all_ensembles):
            conn = nengo.Connection(
                ens, post[i], learning_rule_type=nengo.PES(1e-3), function=lambda x: 0
            )
            nengo.Connection(err[i], conn.learning_rule)
        nengo.Connection(post, err)
        nengo.Connection(inp, err, transform=-1)
        p = nengo.Probe(post, synapse=0.01)
    return net, inp, p


def basal_ganglia(neuron_type, dimensions=32, neurons_per_ensemble=64, seed=0):
    """Basal ganglia action selection followed by a thalamus."""
    with nengo.Network(seed=seed) as net:
        inp = _drive(dimensions)
        bg = nengo.networks.BasalGanglia(dimensions, neurons_per_ensemble)
        th = nengo.networks.Thalamus(dimensions, neurons_per_ensemble)
        for ens in bg.all_ensembles + th.all_ensembles:
            ens.neuron_type = neuron_type
        nengo.Connection(inp, bg.input)
        nengo.Connection(bg.output, th.input)
        p = nengo.Probe(th.output, synapse=0.01)
    return net, inp, p


def random_network(neuron_type, n_ensembles=32, neurons=512, dimensions=4, fan_out=4, seed=0):
    """Many ensembles with random decoded connections between them."""
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        inp = _drive(dimensions)
        ens = [
            nengo.Ensemble(neurons, dimensions, neuron_type=neuron_type)
            for _ in range(n_ensembles)
        ]
        nengo.Connection(inp, ens[0])
        for i, e in enumerate(ens):
            for j in rng.choice(n_ensembles, fan_out, replace=False):
                if j != i:
                    t = rng.uniform(-1, 1, (dimensions, dimensions)) / (dimensions * fan_out)
                    nengo.Connection(e, ens[j], transform=t)
        p = nengo.Probe(ens[-1], synapse=0.01)
    return net, inp, p


def tutorial(neuron_type, seed=0):
    """The network of the "Coming from Nengo" tutorial (x -> x^2 -> sin)."""
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3), label="inp")
        square = nengo.Ensemble(20, 1, neuron_type=neuron_type)
        sin = nengo.Ensemble(20, 1, neuron_type=neuron_type)
        out = nengo.Node(size_in=1)
        nengo.Connection(inp, square)
        nengo.Connection(square, sin, function=np.square)
        nengo.Connection(sin, out, function=np.sin)
        p = nengo.Probe(out, synapse=0.01)
    return net, inp, p


def large(neuron_type, n_ensembles=200, neurons=512, dimensions=8, seed=0):
    """A large model (>= 100k neurons): a chain of ensembles with a side input."""
    with nengo.Network(seed=seed) as net:
        inp = _drive(dimensions)
        ens = [
            nengo.Ensemble(neurons, dimensions, neuron_type=neuron_type)
            for _ in range(n_ensembles)
        ]
        nengo.Connection(inp, ens[0])
        for a, b in zip(ens[:-1], ens[1:], strict=True):
            nengo.Connection(a, b)
        p = nengo.Probe(ens[-1], synapse=0.01)
    return net, inp, p


NETWORKS = {
    "integrator": integrator,
    "cconv": cconv,
    "pes": pes,
    "basal_ganglia": basal_ganglia,
    "random_network": random_network,
    "tutorial": tutorial,
    "large": large,
}
