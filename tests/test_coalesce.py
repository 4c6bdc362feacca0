"""Small bases coalesced into one array per home (compiler/layout.py): nengo's
answers, sim.signals per nengo base, and a step that does not grow with the
number of modules."""

import os
import sys

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import pytest
from nengo.builder.operator import Copy, Reset
from nengo.builder.signal import Signal

import nengojax
from nengojax.compiler import layout as layout_module
from nengojax.compiler.layout import SignalLayout
from nengojax.compiler.stack import StackedOps

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import scale  # noqa: E402


def modules(n, dims=4, links=2, seed=0):
    """``n`` chained memories with links to the modules before them: the
    network of benchmarks/scale.py, smaller (each module leaves bases of its
    own after nengo's merger); probes of the readout and of the last module."""
    net, readout = scale.network(n, seed=seed, links=links, dims=dims, n_neurons=20)
    with net:
        last = nengo.Probe(net.networks[-1].output, synapse=0.01)
    return net, [readout, last]


@pytest.fixture
def uncoalesced(monkeypatch):
    def disable():
        monkeypatch.setattr(layout_module, "COALESCE_SIZE", 0)

    return disable


def test_the_layout_joins_the_bases_a_many_member_operator_spans():
    n = layout_module.COALESCE_SPAN + 1
    xs = [Signal(np.zeros(3), name=f"x{i}") for i in range(n)]
    ys = [Signal(np.zeros(3), name=f"y{i}") for i in range(n)]
    few = [Signal(np.zeros(2), name=f"f{i}") for i in range(layout_module.COALESCE_SPAN)]
    big = Signal(np.zeros(layout_module.COALESCE_SIZE + 1), name="big")
    # ys: reset first (scratch); xs: read, then incremented (state); the few
    # and big: state, but spanned by too few members, or too big
    ops = [
        StackedOps([Reset(y) for y in ys]),
        StackedOps([Copy(x, y, inc=True) for x, y in zip(xs, ys, strict=True)]),
        StackedOps([Copy(y, x, inc=True) for x, y in zip(xs, ys, strict=True)]),
        StackedOps([Copy(f, f, inc=True) for f in few]),
        StackedOps([Copy(big[i : i + 3], xs[i], inc=True) for i in range(n)]),
        Copy(xs[0], big[:3], inc=True),
    ]
    layout = SignalLayout(ops, np.float32, np.int32, coalesce=True)
    joined = {b.kind: b for b in layout.bases if b.parts}
    assert joined.keys() == {"state", "scratch"}
    assert [s.name for s, _ in joined["state"].parts] == [x.name for x in xs]
    assert [s.name for s, _ in joined["scratch"].parts] == [y.name for y in ys]
    assert [o for _, o in joined["state"].parts] == list(range(0, 3 * n, 3))
    v0, v1 = layout.view(xs[0]), layout.view(xs[1])
    assert v0.base == v1.base == joined["state"].index
    assert (v0.start, v0.stop, v1.start, v1.stop) == (0, 3, 3, 6)
    assert not v0.full
    assert all(layout.view(f).full for f in few) and layout.view(big).full
    assert len({layout.view(f).base for f in few}) == len(few)
    # without coalescing, each base its own array
    plain = SignalLayout(ops, np.float32, np.int32)
    assert not any(b.parts for b in plain.bases)
    assert all(plain.view(x).full for x in xs)


def test_coalesced_modules_equal_uncoalesced_and_nengo(uncoalesced):
    net, probes = modules(10)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        kinds = {b.kind for b in sim.compiled.program.layout.bases if b.parts}
        assert kinds == {"state", "scratch", "param"}
        sim.run_steps(300)
        coalesced = [sim.data[p] for p in probes]
        signals = {s.name: np.array(v) for s, v in sim.signals.items()}
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(300)
    uncoalesced()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert not any(b.parts for b in sim.compiled.program.layout.bases)
        sim.run_steps(300)
        for p, got in zip(probes, coalesced, strict=True):
            np.testing.assert_allclose(got, sim.data[p], atol=1e-5)
            np.testing.assert_allclose(got, ref.data[p], atol=2e-3)
        plain = {s.name: np.array(v) for s, v in sim.signals.items()}
    # every nengo base read out of its coalesced array, in its shape
    assert signals.keys() == plain.keys()
    for name, value in plain.items():
        assert signals[name].shape == value.shape, name
        np.testing.assert_allclose(signals[name], value, atol=1e-4, err_msg=name)


def test_coalesced_minibatch_and_gradient_equal_uncoalesced(uncoalesced):
    net, probes = modules(9)

    def run():
        model = nengojax.compile(net)
        key = model.key(probes[0])

        def loss(params):
            _, out = model.run(params, model.init_state(2), 40)
            return jnp.sum(out[key] ** 2)

        value, grads = jax.value_and_grad(loss)(model.init_params())
        return model, value, grads

    model, value, grads = run()
    assert any(b.parts for b in model.program.layout.bases)
    uncoalesced()
    plain, want_value, want_grads = run()
    assert not any(b.parts for b in plain.program.layout.bases)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    assert grads.keys() == want_grads.keys()
    for k in grads:
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-4, atol=1e-7)


def _step_equations(n):
    net, _ = modules(n)
    model = nengojax.compile(net)
    step = model.step_function("simulate")
    packed = model.packer.pack_on_host(model.init_params())
    state = model.init_state()
    host = jax.tree_util.tree_map(lambda v: v[0], model.host_inputs(state, 1))
    jaxpr = jax.make_jaxpr(lambda p, s, h: step(step.prepare(p), model.packer.consts, s, h, {}))
    return len(jaxpr(packed, state, host).jaxpr.eqns), len(state["signals"])


def test_the_step_does_not_grow_with_the_modules():
    # twice the modules: the same equations in the step, the same state arrays
    assert _step_equations(48) == _step_equations(24)


def test_resets_stack_and_their_bases_stay_scratch():
    net, probes = modules(12)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        program = sim.compiled.program
        resets = [
            op
            for op in program.step_order
            if isinstance(op, StackedOps) and isinstance(op.ops[0], Reset)
        ]
        assert resets
        layout = program.layout
        # reset first in each step: recreated, not carried (the members' pure sets)
        for op in resets:
            assert {layout.bases[layout.view(m.dst).base].kind for m in op.ops} == {"scratch"}
        sim.run_steps(200)
        got = sim.data[probes[0]]
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    np.testing.assert_allclose(got, ref.data[probes[0]], atol=2e-3)
