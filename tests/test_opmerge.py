"""The bit-set operator merger makes exactly nengo's merges."""

import contextlib
import re

import nengo
import numpy as np
import pytest
from nengo.builder import Model
from nengo.builder import optimizer as nengo_optimizer
from nengo.utils.simulator import operator_dependency_graph

from nengojax.compiler import opmerge
from nengojax.compiler.opmerge import optimize
from nengojax.compiler.schedule import OrderedOps, readonly_signals_apart


@contextlib.contextmanager
def nengo_merging_deterministically():
    """nengo's optimizer, made repeatable: candidates in build order (as nengojax
    keeps them) and no early stop (nengo stops when a pass merges too little
    per second of wall time; passes here take ever less time, so it never does).
    """
    original_init = nengo_optimizer.OpMergePass.__init__
    original_timer = nengo_optimizer.Timer

    def init(self, dg):
        original_init(self, dg)
        self.might_merge = OrderedOps(dg)

    class HalvingTimer:
        calls = 0

        def __enter__(self):
            HalvingTimer.calls += 1
            self.duration = 2.0**-HalvingTimer.calls
            return self

        def __exit__(self, *exc):
            return False

    nengo_optimizer.OpMergePass.__init__ = init
    nengo_optimizer.Timer = HalvingTimer
    try:
        with readonly_signals_apart():
            yield
    finally:
        nengo_optimizer.OpMergePass.__init__ = original_init
        nengo_optimizer.Timer = original_timer


def merged_model(net, ours):
    model = Model(dt=0.001)
    model.build(net)
    dg = operator_dependency_graph(model.operators)
    if ours:
        optimize(model, dg, whole_views_as_bases=False)
    else:
        with nengo_merging_deterministically():
            nengo_optimizer.optimize(model, dg)
    return model


def structure(model):
    """Operators and signals, with signals named by first use (ids vary per build)."""
    bases = {}

    def name(s):
        return re.sub("0x[0-9a-f]+", "", str(s))

    def sig(s):
        base = bases.setdefault(id(s.base), len(bases))
        offset = s.offset if s.is_view else None
        return (name(s.name), s.shape, base, s.base.shape, offset, s.strides)

    ops = [(type(op).__name__, tuple(sig(s) for s in op.all_signals)) for op in model.operators]
    sigs = [
        (name(obj), key, sig(s))
        for obj, d in model.sig.items()
        for key, s in d.items()
        if s is not None
    ]
    return ops, sigs


def chain(n):
    with nengo.Network(seed=1) as net:
        inp = nengo.Node(np.sin)
        ens = [nengo.Ensemble(20, 2) for _ in range(n)]
        nengo.Connection(inp, ens[0][0])
        for a, b in zip(ens[:-1], ens[1:], strict=True):
            nengo.Connection(a, b)
        nengo.Probe(ens[-1], synapse=0.01)
    return net


def cognitive():
    """SPA-like: ensemble arrays, a product, a convolution, action selection, learning."""
    with nengo.Network(seed=2) as net:
        a = nengo.Node(lambda t: [np.sin(t), np.cos(t), 0.5, -0.5])
        arr = nengo.networks.EnsembleArray(20, 4)
        nengo.Connection(a, arr.input)
        prod = nengo.networks.Product(20, 2)
        nengo.Connection(arr.output[:2], prod.input_a)
        nengo.Connection(arr.output[2:], prod.input_b)
        conv = nengo.networks.CircularConvolution(20, 4)
        nengo.Connection(arr.output, conv.input_a)
        nengo.Connection(arr.output, conv.input_b, transform=-1)
        bg = nengo.networks.BasalGanglia(3, 20)
        th = nengo.networks.Thalamus(3, 20)
        nengo.Connection(prod.output, bg.input[:2])
        nengo.Connection(bg.output, th.input)
        learner = nengo.Ensemble(30, 1)
        post = nengo.Ensemble(30, 1)
        nengo.Connection(a[0], learner)
        c = nengo.Connection(learner, post, learning_rule_type=nengo.PES())
        nengo.Connection(post, c.learning_rule)
        nengo.Probe(conv.output, synapse=0.01)
        nengo.Probe(th.output, synapse=0.01)
    return net


@pytest.mark.parametrize("make", [lambda: chain(30), cognitive], ids=["chain", "cognitive"])
def test_same_merges_as_nengo(make):
    theirs = structure(merged_model(make(), ours=False))
    ours = structure(merged_model(make(), ours=True))
    assert ours == theirs


def test_graphs_whose_bit_sets_are_too_large_use_nengos_sets_with_the_same_merges(monkeypatch):
    theirs = structure(merged_model(chain(10), ours=False))
    monkeypatch.setattr(opmerge, "MAX_BITSET_BYTES", 16)
    monkeypatch.setattr(opmerge.BitsetMergePass, "__call__", None)  # must not run
    assert structure(merged_model(chain(10), ours=True)) == theirs


def test_bit_sets_over_the_budget_raise_before_they_are_all_made():
    model = Model(dt=0.001)
    model.build(chain(10))
    forward = {op: set(s) for op, s in operator_dependency_graph(model.operators).items()}
    closure = opmerge._Closure(forward)
    total = sum(b.bit_length() for b in closure.relative.values())
    assert total > 64
    with pytest.raises(MemoryError):
        opmerge._Closure(forward, max_bytes=total / 8 / 2)
    assert opmerge._Closure(forward, max_bytes=total / 8).relative == closure.relative


def shared_readout(n):
    """A chain of ensembles that all feed one readout (fan-in) from one input (fan-out)."""
    with nengo.Network(seed=3) as net:
        inp = nengo.Node(np.sin)
        readout = nengo.Node(size_in=1)
        ens = [nengo.Ensemble(10, 1) for _ in range(n)]
        for a, b in zip(ens[:-1], ens[1:], strict=True):
            nengo.Connection(a, b)
        for e in ens:
            nengo.Connection(inp, e)
            nengo.Connection(e, readout)
        nengo.Probe(readout, synapse=0.01)
    return net


def dependents(forward, op):
    seen, todo = set(), list(forward[op])
    while todo:
        succ = todo.pop()
        if succ not in seen:
            seen.add(succ)
            todo.extend(forward[succ])
    return seen


@pytest.mark.parametrize("make", [lambda: chain(20), lambda: shared_readout(20), cognitive])
def test_bit_sets_hold_exactly_the_dependents(make):
    model = Model(dt=0.001)
    model.build(make())
    forward = {op: set(s) for op, s in operator_dependency_graph(model.operators).items()}
    closure = opmerge._Closure(forward)
    ops = {i: op for op, i in closure.index.items()}
    for op in forward:
        bits = closure[op]
        held = {ops[i] for i in range(bits.bit_length()) if bits >> i & 1}
        assert held == dependents(forward, op)


def test_bit_sets_stay_short_on_a_chain():
    """A connection's synapse depends on both ensembles: it comes after both,
    so no bit set spans the model (quadratic memory: 4.9 GB of a build of
    10,240 small memories, 2 GB with this order)."""
    model = Model(dt=0.001)
    model.build(chain(200))
    forward = {op: set(s) for op, s in operator_dependency_graph(model.operators).items()}
    bits = sum(b.bit_length() for b in opmerge._Closure(forward).relative.values())
    assert bits < 64 * len(forward)
    assert bits < opmerge._span_bits(opmerge._depth_first_order(forward), forward) / 10


def test_merging_reduces_operators():
    model = Model(dt=0.001)
    model.build(chain(30))
    n_before = len(model.operators)
    optimize(model, operator_dependency_graph(model.operators))
    assert len(model.operators) < n_before / 4


def test_cycle_is_a_build_error():
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(10, 1)
        nengo.Connection(a, b, synapse=None)
        nengo.Connection(b, a, synapse=None)
    model = Model(dt=0.001)
    model.build(net)
    with pytest.raises(nengo.exceptions.BuildError, match="cycles"):
        optimize(model, operator_dependency_graph(model.operators))


def layers(big, small):
    """Three chained ensembles of ``big`` neurons and three of ``small``."""
    with nengo.Network(seed=3) as net:
        inp = nengo.Node(np.sin)
        for n in (big, small):
            ens = [nengo.Ensemble(n, 1) for _ in range(3)]
            nengo.Connection(inp, ens[0])
            for a, b in zip(ens[:-1], ens[1:], strict=True):
                nengo.Connection(a, b)
            nengo.Probe(ens[-1], synapse=0.01)
    return net


@pytest.mark.parametrize("bitset", [True, False], ids=["bitset", "nengo_sets"])
def test_operators_with_large_signals_stay_apart(monkeypatch, bitset):
    if not bitset:
        monkeypatch.setattr(opmerge, "MAX_BITSET_BYTES", 0)
    net = layers(big=50, small=10)
    default = merged_model(net, ours=True)
    monkeypatch.setattr(opmerge, "LARGE_SIGNAL", 40)
    split = merged_model(net, ours=True)

    def input_base_sizes(model, n):
        return sorted(
            model.sig[e.neurons]["in"].base.size for e in net.all_ensembles if e.n_neurons == n
        )

    # by default all six ensembles share one merged input array ...
    assert input_base_sizes(default, 50) == [180] * 3
    # ... with the threshold below their size each has its own, and the small
    # ones still merge
    assert input_base_sizes(split, 50) == [50] * 3
    assert input_base_sizes(split, 10) == [30] * 3
    assert len(split.operators) > len(default.operators)


def test_unmerged_large_signals_give_the_same_results(monkeypatch):
    import nengojax

    net = layers(big=50, small=10)
    probes = net.all_probes
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(200)
        merged = [sim.data[p] for p in probes]
    monkeypatch.setattr(opmerge, "LARGE_SIGNAL", 40)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(200)
        for p, want in zip(probes, merged, strict=True):
            np.testing.assert_allclose(sim.data[p], want, atol=1e-6)


def test_large_constant_signals_still_merge(monkeypatch):
    # decoders of 2 x 30 = 60 elements are constants: the threshold of 40 does
    # not keep their products apart (nengo_spa's many 16-D ensembles)
    with nengo.Network(seed=4) as net:
        inp = nengo.Node([0.5, -0.5])
        out = nengo.Node(size_in=2)
        ens = [nengo.Ensemble(30, 2) for _ in range(4)]
        conns = []
        for e in ens:
            nengo.Connection(inp, e)
            conns.append(nengo.Connection(e, out))
    default = merged_model(net, ours=True)
    monkeypatch.setattr(opmerge, "LARGE_SIGNAL", 40)
    split = merged_model(net, ours=True)
    assert len(split.operators) == len(default.operators)
    for c in conns:
        assert split.sig[c]["weights"].size == 60
        assert split.sig[c]["weights"].base.size > 60  # merged with the others
