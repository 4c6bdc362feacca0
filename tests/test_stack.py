"""Operators of one kind and shape stacked into one (compiler/stack.py, ops/stacked.py)."""

import os
import sys

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import pytest
from nengo.builder.operator import Copy

import nengojax
from nengojax.compiler import stack
from nengojax.compiler.stack import StackedOps

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import scale  # noqa: E402


def modules(n, dims=4, seed=0):
    """``n`` chained memories (EnsembleArrays): benchmarks/scale.py's network,
    smaller; probes of the readout and of the last module."""
    net, readout = scale.network(n, seed=seed, dims=dims, n_neurons=20)
    with net:
        last = nengo.Probe(net.networks[-1].output, synapse=0.01)
    return net, [readout, last]


def count(step_order, cls):
    return sum(isinstance(op, cls) for op in step_order)


@pytest.fixture
def unstacked(monkeypatch):
    def disable():
        monkeypatch.setattr(stack, "STACKABLE", {})

    return disable


def test_modules_stack_into_a_step_that_does_not_grow_with_them():
    sizes = {}
    for n in (8, 16):
        net, _ = modules(n)
        with nengojax.Simulator(net, progress_bar=False) as sim:
            sizes[n] = len(sim.compiled.step_order)
            assert count(sim.compiled.step_order, StackedOps) > 0
    assert sizes[16] <= sizes[8]


def test_few_members_are_not_stacked():
    net, _ = modules(stack.MIN_GROUP - 1)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert count(sim.compiled.step_order, StackedOps) == 0


def test_stacked_modules_equal_unstacked_and_nengo(unstacked):
    net, probes = modules(8)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(300)
        stacked = [sim.data[p] for p in probes]
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(300)
    unstacked()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert count(sim.compiled.step_order, StackedOps) == 0
        sim.run_steps(300)
        for p, got in zip(probes, stacked, strict=True):
            np.testing.assert_allclose(got, sim.data[p], atol=1e-5)
            np.testing.assert_allclose(got, ref.data[p], atol=2e-3)


def test_stacked_minibatch_and_gradient_equal_unstacked(unstacked):
    net, probes = modules(8)

    def run(minibatch):
        model = nengojax.compile(net)
        params = model.init_params()
        key = model.key(probes[0])

        def loss(params):
            _, out = model.run(params, model.init_state(minibatch), 50)
            return jnp.sum(out[key] ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        return model, value, grads

    stacked_model, value, grads = run(2)
    assert count(stacked_model.step_order, StackedOps) > 0
    unstacked()
    plain_model, want_value, want_grads = run(2)
    assert count(plain_model.step_order, StackedOps) == 0
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    assert grads.keys() == want_grads.keys()
    for k in grads:
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-4, atol=1e-7)


def test_members_writing_the_same_elements_run_one_by_one(monkeypatch):
    # two copies adding into the same slice of one signal: each lowering reads
    # the whole signal and sets it, so stacked they would lose one increment
    monkeypatch.setattr(stack, "MIN_GROUP", 2)
    with nengo.Network() as net:
        a = nengo.Node([1.0, 2.0])
        b = nengo.Node([10.0, 20.0])
        y = nengo.Node(size_in=3)
        p = nengo.Probe(y)
    model = nengo.builder.Model(dt=0.001)
    model.build(net)
    for src in (a, b):
        model.add_op(Copy(model.sig[src]["out"], model.sig[y]["in"], dst_slice=[0, 2], inc=True))
    with nengojax.Simulator(None, model=model) as sim:
        assert count(sim.compiled.step_order, StackedOps) == 1
        sim.run_steps(2)
    with nengo.Simulator(None, model=model) as ref:
        ref.run_steps(2)
    np.testing.assert_allclose(sim.data[p], ref.data[p])
    np.testing.assert_allclose(sim.data[p][-1], [11.0, 0.0, 22.0])


def test_members_reading_what_another_writes_are_never_grouped(monkeypatch):
    # a chain of copies: each reads what the one before it writes, so each is
    # at another depth of the step and none is stacked with another
    monkeypatch.setattr(stack, "MIN_GROUP", 2)
    with nengo.Network() as net:
        nodes = [nengo.Node([3.0])] + [nengo.Node(size_in=1) for _ in range(4)]
        p = nengo.Probe(nodes[-1])
    model = nengo.builder.Model(dt=0.001)
    model.build(net)
    for pre, post in zip(nodes[:-1], nodes[1:], strict=True):
        model.add_op(Copy(model.sig[pre]["out"], model.sig[post]["in"], inc=True))
    with nengojax.Simulator(None, model=model) as sim:
        assert count(sim.compiled.step_order, Copy) == 4
        assert count(sim.compiled.step_order, StackedOps) == 0
        sim.run_steps(2)
    np.testing.assert_allclose(sim.data[p][-1], [3.0])
