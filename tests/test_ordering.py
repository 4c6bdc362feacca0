"""Loop-carried signals are updated in place: the write-after-read orders of a
step are data dependencies (`nengojax.ops.ordering`), and multi-dimensional
state signals are carried in their own shapes."""

import os
import re
import sys

import jax
import nengo
import numpy as np
import pytest
from nengo.builder.learning_rules import SimPES
from nengo.builder.operator import Copy

import nengojax
from nengojax.ops.ordering import write_after_read

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.hlo import parse_hlo  # noqa: E402

N, D = 256, 8


def _pes_net():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(lambda t: np.sin(2 * np.pi * t * np.arange(1, D + 1)))
        ens = nengo.Ensemble(N, D)
        post = nengo.Node(size_in=D)
        nengo.Connection(inp, ens)
        conn = nengo.Connection(
            ens, post, learning_rule_type=nengo.PES(1e-3), function=lambda x: np.zeros(D)
        )
        nengo.Connection(post, conn.learning_rule)
        nengo.Connection(inp, conn.learning_rule, transform=-1)
        p = nengo.Probe(post, synapse=0.01)
        net.weights_probe = nengo.Probe(conn, "weights")
    return net, conn, p


def test_the_next_delta_is_ordered_after_the_weights_read_it():
    net, conn, _ = _pes_net()
    model = nengojax.compile(net, optimize=False)
    program = model.program
    ties = write_after_read(program)
    layout = program.layout
    delta = layout.view(model.program.model.sig[conn.learning_rule]["delta"]).base
    (pes,) = [k for k, op in enumerate(program.step_order) if isinstance(op, SimPES)]
    (add,) = [
        k
        for k, op in enumerate(program.step_order)
        if isinstance(op, Copy) and layout.view(op.src).base == delta
    ]
    assert add < pes
    assert ties[pes][delta] == frozenset({add})


def _loop_body_copies(text: str) -> list[str]:
    comps, _ = parse_hlo(text)
    bodies = set()
    for instrs in comps.values():
        for ins in instrs:
            bodies.update(re.findall(r"body=%?([\w.\-]+)", ins["rest"]))
    return [
        ins["rest"].split(" copy(")[0]
        for name in bodies
        for ins in comps.get(name, [])
        if " copy(" in ins["rest"]
    ]


@pytest.mark.parametrize("minibatch_size", [None, 3])
def test_learned_weights_and_delta_are_updated_in_place(minibatch_size):
    if jax.default_backend() != "cpu":
        pytest.skip("checks XLA:CPU's loop body")
    net, _, p = _pes_net()
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state(minibatch_size=minibatch_size)
    text = jax.jit(lambda p, s: model.run(p, s, 100)).lower(params, state).compile().as_text()
    big = [c for c in _loop_body_copies(text) if f"{D},{N}]" in c]
    assert not big, big
    # and the order changes no value: the same run without it is bit for bit equal
    _, probes = model.run(params, state, 100)
    plain = nengojax.compile(net)
    step = plain.step_function("simulate")
    step.ties.clear()
    _, unordered = plain.run(params, state, 100)
    np.testing.assert_array_equal(probes[model.key(p)], unordered[model.key(p)])


def test_state_keeps_its_flat_shape_and_nengos_answer():
    net, conn, p = _pes_net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(300)
        weights = sim.model.sig[conn]["weights"].base
        assert sim.signals[weights].shape == weights.shape
        layout = sim.compiled.program.layout
        key = layout.bases[layout.view(weights).base].key
        assert sim.state["signals"][key].shape == (weights.size,)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(300)
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=2e-4)
    pw = net.weights_probe
    np.testing.assert_allclose(sim.data[pw], ref.data[pw], atol=1e-6)
    assert np.abs(sim.data[pw][-1] - sim.data[pw][0]).max() > 5e-5  # it learned
