"""Pure-arithmetic user functions are traced into the step; others stay on the host."""

from __future__ import annotations

import math
import warnings

import nengo
import numpy as np
import pytest
from nengo.exceptions import SimulationError

import nengojax
from nengojax.ops.purity import is_pure, pure

GAIN = 2.0
STATE = np.zeros(2)


def _closure(k):
    return lambda t, x: k * x


@pytest.mark.parametrize(
    "fn, expected",
    [
        (lambda x: x[0] * x[1], True),
        (lambda t, x: np.sin(x[0]) + 2 * np.pi * x.sum(), True),
        (lambda t, x: math.exp(-t) * np.abs(x), True),
        (_closure(3.0), True),
        (lambda t, x, k=(1, 2): x * k[0], True),
        (lambda t, x: GAIN * x, False),  # a global the user may rebind between runs
        (lambda t, x: STATE, False),
        (_closure(np.ones(2)), False),  # a mutable array in the closure
        (lambda t, x: np.random.rand() * x, False),
        (lambda t, x: print(x), False),
        (lambda t, x: STATE.fill(0), False),
        (lambda t, x: [y for y in x], False),  # makes a function (a comprehension)
        (np.sin, True),  # a NumPy ufunc
        (np.frompyfunc(print, 1, 1), False),  # a ufunc of arbitrary Python
    ],
)
def test_is_pure(fn, expected):
    assert is_pure(fn) is expected


def _product_net(fn):
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: [np.sin(5 * t), np.cos(3 * t)])
        out = nengo.Node(size_in=1)
        nengo.Connection(stim, out, function=fn, synapse=None)
        ens = nengo.Ensemble(40, 1)
        nengo.Connection(out, ens)
        p = nengo.Probe(out)
        q = nengo.Probe(ens, synapse=0.01)
    return net, p, q


def test_pure_connection_function_is_traced_and_matches_nengo():
    net, p, q = _product_net(lambda x: x[0] * x[1])
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no host-callback warning: traced
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sim.run(0.2)
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-6)
    np.testing.assert_allclose(sim.data[q], ref.data[q], atol=2e-3)


def test_impure_function_stays_on_the_host_and_is_called_every_step():
    calls = []

    def logged(x):
        calls.append(1)
        return x[0] * x[1]

    net, p, _ = _product_net(logged)
    with pytest.warns(UserWarning, match="runs on the host"):
        sim = nengojax.Simulator(net, progress_bar=False)
    with sim:
        n = len(calls)
        sim.run_steps(25)
        assert len(calls) - n == 25


def test_marked_pure_and_untraceable_functions():
    net, p, _ = _product_net(pure(lambda x: GAIN * x[0] * x[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(10)
    # pure but branching on its input: JAX cannot trace it, so the host runs it
    net, p, _ = _product_net(lambda x: x[0] if x[0] > 0 else x[1])
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(30)
    with pytest.warns(UserWarning, match="runs on the host"):
        sim = nengojax.Simulator(net, progress_bar=False)
    with sim:
        sim.run_steps(30)
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-6)


def test_traced_function_returning_nan_is_a_simulation_error():
    net, p, _ = _product_net(lambda x: np.log(x[:1] + 0.5))  # NaN once sin(5 t) < -0.5
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(SimulationError, match="non-finite"):
            sim.run(1.0)
        assert 700 < sim.n_steps < 750
        assert np.all(np.isfinite(sim.data[p]))
