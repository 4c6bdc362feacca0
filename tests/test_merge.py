"""Operator merging: many synapses become one filter update, with nengo's results."""

import nengo
import numpy as np

import nengojax
from nengojax.compiler.merge import MergedLinearFilter


def test_merged_synapses_match_nengo():
    synapses = [0.005, 0.01, nengo.Alpha(0.008), 0.02, nengo.Alpha(0.008), None, 0.003]
    with nengo.Network(seed=3) as net:
        inp = nengo.Node(lambda t: [np.sin(7 * t), np.cos(5 * t)])
        ens = [nengo.Ensemble(30, 2, neuron_type=nengo.LIFRate()) for _ in range(8)]
        nengo.Connection(inp, ens[0])
        for i, (a, b) in enumerate(zip(ens[:-1], ens[1:], strict=True)):
            nengo.Connection(a, b, synapse=synapses[i % len(synapses)])
            nengo.Connection(a[1], b[0], synapse=0.015, transform=0.3)
        probes = [nengo.Probe(e, synapse=0.01) for e in ens]
        probes.append(nengo.Probe(ens[-1], synapse=nengo.Alpha(0.02)))
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
    merged = [op for op in sim.step_order if isinstance(op, MergedLinearFilter)]
    assert len(merged) == 2  # first-order filters of any tau; Alpha(0.008)
    assert sum(len(op.ops) for op in merged) >= 20
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.3)
    for p in probes:
        np.testing.assert_allclose(sim.data[p], ref.data[p], atol=2e-4)


def test_unmerged_when_not_optimizing():
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(10, 1)
        nengo.Connection(a, b)
        nengo.Probe(b, synapse=0.01)
    with nengojax.Simulator(net, optimize=False, progress_bar=False) as sim:
        assert not any(isinstance(op, MergedLinearFilter) for op in sim.step_order)


def test_merged_pes_matches_nengo():
    from nengojax.compiler.merge import MergedPES

    with nengo.Network(seed=5) as net:
        inp = nengo.Node(lambda t: [np.sin(6 * t), np.cos(4 * t)])
        pre = [nengo.Ensemble(20 + 10 * i, 1, neuron_type=nengo.LIFRate()) for i in range(3)]
        post = nengo.Node(size_in=3)
        err = nengo.Node(size_in=3)
        probes = []
        for i, ens in enumerate(pre):
            nengo.Connection(inp[i % 2], ens)
            conn = nengo.Connection(
                ens, post[i], learning_rule_type=nengo.PES(1e-3 * (i + 1)), function=lambda x: 0
            )
            nengo.Connection(err[i], conn.learning_rule)
            probes.append(nengo.Probe(conn, "weights", sample_every=0.01))
        nengo.Connection(post, err)
        nengo.Connection(inp[0], err, transform=-np.ones((3, 1)))
        probes.append(nengo.Probe(post, synapse=0.01))
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
    assert any(isinstance(op, MergedPES) and len(op.ops) == 3 for op in sim.step_order)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.3)
    for p in probes:
        scale = max(np.abs(ref.data[p]).max(), 1e-6)
        np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-4 * scale + 1e-7)
