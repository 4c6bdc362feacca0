"""``sim.compile`` warns about weights nengo's operator merger made untrainable
only when it is given an optimizer (evaluation alone trains nothing)."""

import warnings

import nengo
import numpy as np
import optax
import pytest

import nengojax


def _cconv_net():
    # in nengo.networks.Product the merger packs the scalar weight of one
    # passthrough connection with simulation state
    with nengo.Network(seed=0) as net:
        net.config[nengo.Ensemble].neuron_type = nengo.RectifiedLinear()
        net.config[nengo.Connection].synapse = None
        a = nengo.Node(np.zeros(4))
        b = nengo.Node(np.zeros(4))
        cconv = nengo.networks.CircularConvolution(4, 4, invert_b=True)
        nengo.Connection(a, cconv.input_a)
        nengo.Connection(b, cconv.input_b)
        p = nengo.Probe(cconv.output)
    return net, p


def test_warns_with_an_optimizer_only():
    net, p = _cconv_net()
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        with pytest.warns(UserWarning, match="cannot be trained"):
            sim.compile(optax.sgd(0.1), loss={p: nengojax.losses.mse})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sim.compile(loss={p: nengojax.losses.mse})  # for evaluate: no warning
    with nengojax.Simulator(net, minibatch_size=2, optimize=False, progress_bar=False) as sim:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sim.compile(optax.sgd(0.1), loss={p: nengojax.losses.mse})
