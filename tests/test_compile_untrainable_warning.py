"""Weights nengo's operator merger stores once for two connections: trained as one
value, listed by ``training.untrainable``, resolved by ``key``, and warned about by
``sim.compile`` only when it is given an optimizer (evaluation trains nothing)."""

import warnings

import nengo
import numpy as np
import optax
import pytest

import nengojax


def _cconv_net():
    # in nengo.networks.Product the merger stores the equal scalar weights of
    # two passthrough connections (input_a, input_b -> sq1.input) once
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
        with pytest.warns(UserWarning, match="trained tied"):
            sim.compile(optax.sgd(0.1), loss={p: nengojax.losses.mse})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sim.compile(loss={p: nengojax.losses.mse})  # for evaluate: no warning
    with nengojax.Simulator(net, minibatch_size=2, optimize=False, progress_bar=False) as sim:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sim.compile(optax.sgd(0.1), loss={p: nengojax.losses.mse})


def test_tied_weights_are_one_param_trained_as_one():
    net, p = _cconv_net()
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        tied = nengojax.training.untrainable(sim.compiled)
        assert tied and all(why in sim.params for why in tied.values())
        conns = {sim.compiled.program.key(c, "weights"): c for c in net.all_connections}
        for key, holder in tied.items():
            assert sim.compiled.key(conns[key], "weights") == holder
            np.testing.assert_array_equal(
                sim.data[conns[key]].weights, sim.data[conns[holder]].weights
            )
        holder = next(iter(tied.values()))
        before = np.array(sim.params[holder])
        x = np.random.RandomState(0).uniform(-1, 1, (2, 3, 4))
        sim.compile(optax.sgd(0.5), loss={p: nengojax.losses.mse})
        sim.fit({_input(net, 0): x, _input(net, 1): x}, {p: x}, epochs=1, verbose=0)
        assert not np.array_equal(sim.params[holder], before)  # the tied value trains
        for key, holder_key in tied.items():  # sim.data shows the trained tied value
            trained = np.asarray(sim.params[holder_key], np.float64).reshape(-1)
            np.testing.assert_array_equal(sim.data[conns[key]].weights.reshape(-1), trained)
    with nengojax.Simulator(net, optimize=False, progress_bar=False) as sim:
        assert nengojax.training.untrainable(sim.compiled) == {}
        assert all(key in sim.params for key in tied)  # unmerged: each its own param


def _input(net, i):
    return [n for n in net.nodes if n.size_in == 0][i]
