"""The build sets the process's earlier objects apart from Python's cycle collector
(`nengojax.compiler.collector`), and hands them back afterwards."""

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


def test_earlier_objects_frozen_during_build_only():
    seen = []

    def square(x):
        seen.append(gc.get_freeze_count())
        return x**2

    assert gc.get_freeze_count() == 0
    with nengojax.Simulator(_network(square, seen), progress_bar=False) as sim:
        sim.run_steps(3)
    assert seen and all(count > 0 for count in seen)  # during the build
    assert gc.get_freeze_count() == 0  # handed back


def test_objects_handed_back_when_build_raises():
    made = []

    def broken(x):
        if made:  # not when the connection is made
            raise RuntimeError("user function failed")
        made.append(x)
        return x

    net = _network(broken, [])
    with pytest.raises(Exception, match="user function failed"):
        nengojax.Simulator(net, progress_bar=False)
    assert gc.get_freeze_count() == 0


def test_process_own_freeze_kept():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        seen = []

        def square(x):
            seen.append(gc.get_freeze_count())
            return x**2

        with nengojax.Simulator(_network(square, seen), progress_bar=False):
            pass
        # nothing more frozen during the build, nothing unfrozen after it (the
        # count can only fall, as frozen objects are freed)
        assert seen and all(0 < count <= frozen for count in seen)
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_collector_off_stays_off():
    seen = []

    def square(x):
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return x**2

    gc.disable()
    try:
        with nengojax.Simulator(_network(square, seen), progress_bar=False):
            pass
        assert seen and all(state == (False, 0) for state in seen)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_same_results_as_without():
    """Setting objects apart changes no number: the probes match a build with
    the collector off (which sets nothing apart)."""

    def run():
        with nengo.Network(seed=1) as net:
            stim = nengo.Node(np.sin)
            ens = nengo.Ensemble(40, 1)
            nengo.Connection(stim, ens)
            p = nengo.Probe(ens, synapse=0.01)
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(50)
        return sim.data[p]

    frozen = run()
    gc.disable()
    try:
        plain = run()
    finally:
        gc.enable()
    np.testing.assert_array_equal(frozen, plain)
