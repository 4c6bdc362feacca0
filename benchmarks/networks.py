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


def pes_2048(neuron_type, n_neurons=2048, dimensions=32, seed=0):
    """One 2048-neuron ensemble in 32-D learning a function with PES; the error is
    the decoded output minus a target from a Node (issue 14's first shape)."""
    with nengo.Network(seed=seed) as net:
        inp = _drive(dimensions)
        target = nengo.Node(
            lambda t: 0.5 * np.cos(2 * np.pi * t * (1 + np.arange(dimensions) % 5))
        )
        ens = nengo.Ensemble(n_neurons, dimensions, neuron_type=neuron_type)
        post = nengo.Node(size_in=dimensions)
        err = nengo.Node(size_in=dimensions)
        nengo.Connection(inp, ens)
        conn = nengo.Connection(
            ens, post, learning_rule_type=nengo.PES(1e-4), function=lambda x: np.zeros(len(x))
        )
        nengo.Connection(post, err)
        nengo.Connection(target, err, transform=-1)
        nengo.Connection(err, conn.learning_rule)
        p = nengo.Probe(post, synapse=0.01)
    return net, inp, p


def relu_array(neuron_type, n_ensembles=200, n_neurons=250, seed=0):
    """A 200 x 250 EnsembleArray of RectifiedLinear neurons (200 one-dimensional
    ensembles of 250 neurons) with a recurrent connection. The neuron type is
    always RectifiedLinear (``neuron_type`` is ignored)."""
    del neuron_type
    with nengo.Network(seed=seed) as net:
        inp = _drive(n_ensembles)
        ea = nengo.networks.EnsembleArray(
            n_neurons, n_ensembles, neuron_type=nengo.RectifiedLinear()
        )
        nengo.Connection(inp, ea.input, transform=0.5)
        nengo.Connection(ea.output, ea.input, transform=0.5, synapse=0.05)
        p = nengo.Probe(ea.output, synapse=0.01)
    return net, inp, p


def _cconv_matrix(vec):
    """The matrix of circular convolution with ``vec`` (binding with a fixed vector)."""
    d = len(vec)
    return np.array([np.roll(vec[::-1], i + 1) for i in range(d)])


def spa_states(neuron_type, n_states=4, dimensions=64, subdimensions=16, neurons_per_d=50,
               seed=0):  # fmt: skip
    """SPA-style working memory: ``n_states`` 64-D EnsembleArray states of 16-D
    subensembles (50 neurons per dimension), each binding into the next with a
    dense circular-convolution transform, plus a recurrent memory on each."""
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        inp = _drive(dimensions)
        states = [
            nengo.networks.EnsembleArray(
                neurons_per_d * subdimensions,
                dimensions // subdimensions,
                ens_dimensions=subdimensions,
                neuron_type=neuron_type,
                radius=0.5,
            )
            for _ in range(n_states)
        ]
        nengo.Connection(inp, states[0].input, transform=0.3)
        for a, b in zip(states, states[1:] + states[:1], strict=True):
            vec = rng.randn(dimensions) / np.sqrt(dimensions)
            nengo.Connection(a.output, b.input, transform=0.5 * _cconv_matrix(vec))
        for s in states:
            nengo.Connection(s.output, s.input, transform=0.5, synapse=0.1)
        p = nengo.Probe(states[-1].output, synapse=0.01)
    return net, inp, p


def conv_net(neuron_type, size=28, channels=8, seed=0):
    """A small spiking convolutional network (NengoDL-style): 28x28 input, 3x3
    convolution to ``channels`` maps, strided 3x3 convolution to 2 x ``channels``
    maps, dense readout to 10."""
    with nengo.Network(seed=seed) as net:
        rng = np.random.RandomState(seed)
        img = rng.uniform(0, 1, size * size)
        inp = nengo.Node(lambda t: img * (0.5 + 0.5 * np.sin(2 * np.pi * t)), label="inp")
        c1 = nengo.Convolution(channels, (size, size, 1), kernel_size=(3, 3))
        l1 = nengo.Ensemble(c1.output_shape.size, 1, neuron_type=neuron_type)
        nengo.Connection(inp, l1.neurons, transform=c1)
        c2 = nengo.Convolution(
            2 * channels, c1.output_shape.shape, kernel_size=(3, 3), strides=(2, 2)
        )
        l2 = nengo.Ensemble(c2.output_shape.size, 1, neuron_type=neuron_type)
        nengo.Connection(l1.neurons, l2.neurons, transform=c2)
        out = nengo.Node(size_in=10)
        dense = rng.randn(10, l2.n_neurons) / l2.n_neurons
        nengo.Connection(l2.neurons, out, transform=dense)
        p = nengo.Probe(out, synapse=0.01)
    return net, inp, p


NETWORKS = {
    "integrator": integrator,
    "cconv": cconv,
    "pes": pes,
    "basal_ganglia": basal_ganglia,
    "random_network": random_network,
    "tutorial": tutorial,
    "large": large,
    "pes_2048": pes_2048,
    "relu_array": relu_array,
    "spa_states": spa_states,
    "conv_net": conv_net,
}
