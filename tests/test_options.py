"""Compile options: ``unroll`` (the same results) and ``precision``."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

import nengojax


def _net():
    with nengo.Network(seed=4) as net:
        stim = nengo.Node(lambda t: [np.sin(6 * t), np.cos(4 * t)])
        a = nengo.Ensemble(60, 2)
        b = nengo.Ensemble(40, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a, b, function=lambda x: x[0] * x[1])
        p = nengo.Probe(b, synapse=0.01)
        s = nengo.Probe(a.neurons)
    return net, p, s


@pytest.mark.parametrize("minibatch_size", [None, 3])
def test_unroll_gives_the_same_results(minibatch_size):
    net, p, s = _net()
    out = []
    for unroll in (1, 4):
        with nengojax.Simulator(
            net, unroll=unroll, minibatch_size=minibatch_size, progress_bar=False
        ) as sim:
            sim.run_steps(37)  # not a multiple of the unroll
            sim.run_steps(5)
            out.append((sim.data[p], sim.data[s]))
    # XLA fuses the steps of an unrolled loop differently: the same values up
    # to float32 rounding (the spikes of these 42 steps are the same)
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_precision_near_equal_and_threaded_to_lowerings():
    net, p, _ = _net()
    results = {}
    for precision in ("highest", "default"):
        with nengojax.Simulator(net, precision=precision, progress_bar=False) as sim:
            assert sim.compiled.step_function().ctx.precision_name == precision
            sim.run(0.2)
            results[precision] = sim.data[p]
    # on CPU both are float32-exact; on GPUs "default" uses TF32 (about 1e-3)
    np.testing.assert_allclose(results["default"], results["highest"], atol=2e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"unroll": 0}, "unroll"),
        ({"unroll": 1.5}, "unroll"),
        ({"precision": "fastest"}, "precision"),
    ],
)
def test_bad_options(kwargs, match):
    net, _, _ = _net()
    with pytest.raises(ValidationError, match=match):
        nengojax.Simulator(net, progress_bar=False, **kwargs)
    with pytest.raises(ValidationError, match=match):
        nengojax.compile(net, **kwargs)
