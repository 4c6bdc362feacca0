"""Dense transforms built on the user's array: nengo's operators and values, one copy fewer."""

import nengo
import numpy as np
import pytest
from nengo.builder import Model

import nengojax
from nengojax.compiler.solves import SharingBuilder


def weighted_net(transform):
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: [np.sin(5 * t), np.cos(3 * t)])
        a = nengo.Ensemble(40, 2)
        b = nengo.Ensemble(30, 1)
        nengo.Connection(stim, a)
        conn = nengo.Connection(a.neurons, b.neurons, transform=transform)
        probe = nengo.Probe(b.neurons, synapse=0.01)
    return net, conn, probe


def ops_of(model):
    return [(type(op).__name__, [s.shape for s in op.all_signals]) for op in model.operators]


def built(net, builder=None):
    model = Model(dt=0.001, builder=builder)
    model.build(net)
    return model


def test_built_weights_share_the_users_array_and_equal_nengos():
    weights = np.random.RandomState(0).uniform(-1e-3, 1e-3, (30, 40))
    net, conn, probe = weighted_net(weights)
    theirs, ours = built(net), built(net, SharingBuilder())
    assert ops_of(ours) == ops_of(theirs)
    np.testing.assert_array_equal(ours.params[conn].weights, theirs.params[conn].weights)
    assert np.shares_memory(ours.params[conn].weights, weights)
    assert not np.shares_memory(theirs.params[conn].weights, weights)
    assert not ours.params[conn].weights.flags.writeable

    with nengo.Simulator(net, progress_bar=False) as ref:
        with nengojax.Simulator(net, progress_bar=False) as sim:
            ref.run_steps(200)
            sim.run_steps(200)
            weights[:] = 0  # each simulation reads its own copy
            ref.run_steps(100)
            sim.run_steps(100)
    np.testing.assert_allclose(sim.data[probe], ref.data[probe], atol=2e-4)
    assert np.ptp(ref.data[probe]) > 0


@pytest.mark.parametrize(
    "transform",
    [
        np.ones((30, 40), dtype=np.int64),  # another dtype: nengo's cast
        nengo.dists.Uniform(-1e-3, 1e-3),  # sampled: a new array anyway
        nengo.transforms.Dense((30, 40), init=nengo.dists.Gaussian(0, 1e-3)),
    ],
    ids=["int", "distribution", "dense-distribution"],
)
def test_other_dense_transforms_are_built_by_nengo(transform):
    net, conn, _ = weighted_net(transform)
    theirs, ours = built(net), built(net, SharingBuilder())
    assert ops_of(ours) == ops_of(theirs)
    np.testing.assert_array_equal(ours.params[conn].weights, theirs.params[conn].weights)
    if isinstance(transform, np.ndarray):
        assert not np.shares_memory(ours.params[conn].weights, transform)


def test_decoded_connections_keep_nengos_build():
    weights = np.random.RandomState(0).uniform(-1, 1, (1, 2))
    with nengo.Network(seed=2) as net:
        a = nengo.Ensemble(40, 2)
        b = nengo.Ensemble(30, 1)
        conn = nengo.Connection(a, b, transform=weights)  # decoders folded in
        scalar = nengo.Connection(a[0], b, transform=2.0)
    theirs, ours = built(net), built(net, SharingBuilder())
    assert ops_of(ours) == ops_of(theirs)
    for c in (conn, scalar):
        np.testing.assert_array_equal(ours.params[c].weights, theirs.params[c].weights)
    assert not np.shares_memory(ours.params[conn].weights, weights)
