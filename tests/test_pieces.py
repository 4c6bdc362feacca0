"""Bases held as pieces while a step is traced: the same values, runs and gradients."""

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import pytest

import nengojax
from nengojax.compiler import layout as layout_module
from nengojax.ops.pieces import Pieces


def test_pieces_read_and_write_like_a_flat_array():
    rng = np.random.RandomState(0)
    size = 23
    ref = rng.randn(size).astype(np.float32)
    pieces = Pieces.whole(jnp.asarray(ref))
    for _ in range(200):
        start = rng.randint(0, size)
        stop = rng.randint(start + 1, size + 1)
        if rng.rand() < 0.3:  # exactly one part (`Pieces.write`'s short path)
            start, stop, _ = pieces.parts[rng.randint(len(pieces.parts))]
        if rng.rand() < 0.5:
            value = rng.randn(stop - start).astype(np.float32)
            ref[start:stop] = value
            pieces = pieces.write(start, stop, jnp.asarray(value))
        else:
            np.testing.assert_array_equal(pieces.read(start, stop), ref[start:stop])
        bounds = [(a, b) for a, b, _ in pieces.parts]
        assert pieces.starts == [a for a, _ in bounds]
        assert bounds[0][0] == 0 and bounds[-1][1] == size
        assert all(b == a2 for (_, b), (a2, _) in zip(bounds, bounds[1:], strict=False))
    np.testing.assert_array_equal(pieces.flat(), ref)


def test_a_read_of_a_written_piece_is_that_array():
    value = jnp.arange(4.0)
    pieces = Pieces.whole(jnp.zeros(10)).write(3, 7, value)
    assert pieces.read(3, 7) is value


def lmu_like(seed=0):
    """Nodes joined by transforms: nengo's merger packs their signals in shared bases."""
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(np.zeros(1))
        u = nengo.Node(size_in=1)
        m = nengo.Node(size_in=6)
        h = nengojax.JaxNode(jnp.tanh, shape_in=(8,), pass_time=False)
        out = nengo.Node(size_in=3)
        rng = np.random.RandomState(seed)
        nengo.Connection(inp, u, synapse=None)
        nengo.Connection(m, m, transform=0.3 * rng.randn(6, 6), synapse=0)
        nengo.Connection(u, m, transform=rng.randn(6, 1), synapse=None)
        nengo.Connection(inp, h, transform=rng.randn(8, 1), synapse=None)
        nengo.Connection(h, h, transform=0.3 * rng.randn(8, 8), synapse=0)
        nengo.Connection(m, h, transform=rng.randn(8, 6), synapse=None)
        nengo.Connection(h, out, transform=rng.randn(3, 8), synapse=None)
        probe = nengo.Probe(out)
    return net, inp, probe


def limit_pieces(monkeypatch, max_pieces):
    """At most ``max_pieces`` parts per piecewise base, aligned or not."""
    monkeypatch.setattr(layout_module, "MAX_PIECES", max_pieces)
    monkeypatch.setattr(layout_module, "MAX_ALIGNED_PIECES", max_pieces)


def run_and_grad(monkeypatch, max_pieces):
    limit_pieces(monkeypatch, max_pieces)
    net, inp, probe = lmu_like()
    x = np.sin(np.linspace(0, 6, 20)).reshape(20, 1)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        piecewise = sim.compiled.program.layout.piecewise
        sim.run_steps(20, data={inp: x[None]})
        out = sim.data[probe]
        compiled = sim.compiled
        key = compiled.key(inp)
        pkey = compiled.key(probe)

        def loss(params):
            probes = compiled.run(params, compiled.init_state(), 20, inputs={key: x})[1]
            return jnp.sum(probes[pkey] ** 2)

        grads = jax.grad(loss)(sim.params)
    return piecewise, out, grads


def test_piecewise_bases_give_the_same_run_and_gradients(monkeypatch):
    piecewise, out, grads = run_and_grad(monkeypatch, 8)
    flat, out_flat, grads_flat = run_and_grad(monkeypatch, 0)
    assert piecewise and not flat  # the merged Node bases are held as pieces
    np.testing.assert_allclose(out, out_flat, rtol=1e-6, atol=1e-6)
    assert np.ptp(out) > 0
    assert grads.keys() == grads_flat.keys()
    # float32 sums in another order: within rounding of the largest gradient
    # (float64 runs agree to 1e-13)
    scale = max(float(np.max(np.abs(g))) for g in grads.values())
    for k in grads:
        np.testing.assert_allclose(grads[k], grads_flat[k], rtol=1e-5, atol=2e-6 * scale)


@pytest.mark.parametrize("max_pieces, chosen", [(8, True), (1, False)])
def test_the_layout_holds_apart_bases_of_few_parts(monkeypatch, max_pieces, chosen):
    limit_pieces(monkeypatch, max_pieces)
    net, _, _ = lmu_like()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        layout = sim.compiled.program.layout
        for i in layout.piecewise:
            assert layout.bases[i].kind in ("state", "scratch")
        assert bool(layout.piecewise) == chosen


def slice_updates_in_step(monkeypatch, max_pieces):
    limit_pieces(monkeypatch, max_pieces)
    net, _, _ = lmu_like()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        compiled = sim.compiled

        def loss(params):
            probes = compiled.run(params, compiled.init_state(), 3)[1]
            return sum(jnp.sum(v) for v in probes.values())

        text = jax.jit(jax.grad(loss)).lower(sim.params).as_text()
    return text.count("dynamic_update_slice")


def test_pieces_replace_the_slice_updates_of_merged_bases(monkeypatch):
    assert slice_updates_in_step(monkeypatch, 8) < slice_updates_in_step(monkeypatch, 0)


def many_modules(n=12, seed=0):
    """``n`` alike small integrators side by side: nengo's merger packs their
    signals into shared bases, one part per module."""
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(lambda t: np.sin(6 * t))
        mods = [nengo.Ensemble(20, 2) for _ in range(n)]
        for i, ens in enumerate(mods):
            nengo.Connection(inp, ens[0], transform=0.5 + 0.1 * i)
            nengo.Connection(ens, ens, synapse=0.05, transform=0.9)
        probe = nengo.Probe(mods[-1], synapse=0.01)
        probes = [probe, nengo.Probe(mods[0].neurons)]
    return net, probes


def test_bases_of_many_parts_touched_one_part_at_a_time_are_held_apart(monkeypatch):
    # more parts than MAX_PIECES, every access one part or the whole base (as
    # nengo's merger leaves them: not coalesced)
    monkeypatch.setattr(layout_module, "COALESCE_SIZE", 0)
    net, probes = many_modules()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        layout = sim.compiled.program.layout
        many = [i for i in layout.piecewise if _parts(sim, i) > layout_module.MAX_PIECES]
        assert many
        sim.run(0.2)
        ours = [sim.data[p] for p in probes]
    limit_pieces(monkeypatch, 0)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert not sim.compiled.program.layout.piecewise
        sim.run(0.2)
        flat = [sim.data[p] for p in probes]
    for a, b in zip(ours, flat, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.ptp(ours[0]) > 0.1


def _parts(sim, i):
    """How many parts the accesses of the step cut base ``i`` into."""
    layout = sim.compiled.program.layout
    cuts = {0, layout.bases[i].init.size}
    for op in sim.compiled.program.step_order:
        for sig in op.all_signals:
            if layout.base_index(sig) == i:
                view = layout.view(sig)
                cuts.update((view.start, view.stop))
    return len(cuts) - 1


def test_a_base_read_across_its_parts_keeps_the_few_parts_limit(monkeypatch):
    monkeypatch.setattr(layout_module, "MAX_PIECES", 2)
    net, _ = many_modules(4)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        layout = sim.compiled.program.layout
        for i in layout.piecewise:
            assert _parts(sim, i) <= 2 or _aligned(sim, i)


def _aligned(sim, i):
    layout = sim.compiled.program.layout
    views = set()
    for op in sim.compiled.program.step_order:
        for sig in op.all_signals:
            if layout.base_index(sig) == i:
                view = layout.view(sig)
                views.add((view.start, view.stop))
    cuts = sorted({c for v in views for c in v} | {0, layout.bases[i].init.size})
    parts = set(zip(cuts[:-1], cuts[1:], strict=True))
    return all(v in parts or v == (0, cuts[-1]) for v in views)


def test_writing_one_whole_part_keeps_the_cuts():
    pieces = Pieces([(0, 2, jnp.zeros(2)), (2, 5, jnp.ones(3)), (5, 6, jnp.zeros(1))])
    out = pieces.write(2, 5, jnp.full(3, 7.0))
    assert out.starts is pieces.starts  # no cut moved
    np.testing.assert_array_equal(out.flat(), [0, 0, 7, 7, 7, 0])
    np.testing.assert_array_equal(pieces.flat(), [0, 0, 1, 1, 1, 0])  # unchanged
    across = out.write(1, 3, jnp.full(2, 9.0))
    assert [p[:2] for p in across.parts] == [(0, 1), (1, 3), (3, 5), (5, 6)]
    np.testing.assert_array_equal(across.flat(), [0, 9, 9, 7, 7, 0])
