"""Python's cycle collector pauses while a network builds
(`nengojax.compiler.collector`), and is as it was after."""

from __future__ import annotations

import gc

import nengo
import numpy as np
import pytest

import nengojax


def _network(function, seen):
    """An ensemble decoding ``function``: nengo calls it on each evaluation point
    while it builds the connection. ``seen`` is emptied of the calls nengo makes
    when the connection is made."""
    with nengo.Network(seed=3) as net:
        a = nengo.Ensemble(30, 1, n_eval_points=20)
        b = nengo.Node(size_in=1)
        nengo.Connection(a, b, function=function)
    seen.clear()
    return net


def test_collector_paused_during_build_only():
    seen = []

    def square(x):
        seen.append(gc.isenabled())
        return x**2

    assert gc.isenabled()
    with nengojax.Simulator(_network(square, seen), progress_bar=False) as sim:
        sim.run_steps(3)
    assert seen and not any(seen)  # off during the build
    assert gc.isenabled()  # on again


def test_collector_back_on_when_build_raises():
    made = []

    def broken(x):
        if made:  # not when the connection is made
            raise RuntimeError("user function failed")
        made.append(x)
        return x

    net = _network(broken, [])
    with pytest.raises(Exception, match="user function failed"):
        nengojax.Simulator(net, progress_bar=False)
    assert gc.isenabled()


def test_collector_off_stays_off():
    seen = []

    def square(x):
        seen.append(gc.isenabled())
        return x**2

    gc.disable()
    try:
        with nengojax.Simulator(_network(square, seen), progress_bar=False):
            pass
        assert seen and not any(seen)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_same_results_with_the_collector_on_and_off():
    """The pause changes no number: the probes of a build with the collector
    on match those of one with it off all along."""

    def run():
        with nengo.Network(seed=1) as net:
            stim = nengo.Node(np.sin)
            ens = nengo.Ensemble(40, 1)
            nengo.Connection(stim, ens)
            p = nengo.Probe(ens, synapse=0.01)
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(50)
        return sim.data[p]

    paused = run()
    gc.disable()
    try:
        plain = run()
    finally:
        gc.enable()
    np.testing.assert_array_equal(paused, plain)
