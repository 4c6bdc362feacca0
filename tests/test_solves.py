"""Shared decoder solves give nengo's decoders bit for bit."""

import nengo
import numpy as np
import pytest
from nengo.builder import Model
from nengo.cache import DecoderCache

from nengojax.compiler import decoder_keys, solves
from nengojax.compiler.solves import SharingBuilder, block_rates


class CountingLIF(nengo.LIFRate):
    """A user's neuron type: its rates are user code, called as nengo calls them."""

    calls = 0

    def rates(self, x, gain, bias):
        CountingLIF.calls += 1
        return super().rates(x, gain, bias)


def many_connections(seed=3):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node([0.3, -0.2])
        a = nengo.Ensemble(120, 2)
        b = nengo.Ensemble(80, 2)
        few = nengo.Ensemble(60, 1, n_eval_points=20)  # fewer points than neurons
        user = nengo.Ensemble(50, 1, neuron_type=CountingLIF())
        nengo.Connection(stim, a)
        nengo.Connection(a, b)  # output and ...
        nengo.Connection(a, b, function=lambda x: x**2)  # ... functions of one ensemble
        nengo.Connection(a[0], few, function=np.sin)
        nengo.Connection(a, few, function=lambda x: x[0] * x[1])
        points = np.random.RandomState(0).uniform(-1, 1, (30, 2))
        nengo.Connection(a, few, eval_points=points, function=lambda x: x[1])
        nengo.Connection(a, b, solver=nengo.solvers.LstsqL2(reg=0.01))
        nengo.Connection(a, b, solver=nengo.solvers.LstsqL2(weights=True))
        nengo.Connection(a, b, solver=nengo.solvers.LstsqL2nz())
        nengo.Connection(few, user)
        nengo.Connection(few, user, transform=2)
        nengo.Connection(user, b[0])
        nengo.Connection(user, b[1])
    return net


def built(net, builder=None, cache=None):
    model = Model(dt=0.001, builder=builder, decoder_cache=cache)
    if cache is None:
        model.build(net)
    else:
        with cache:
            model.build(net)
    return model


def test_decoders_equal_nengo_bit_for_bit():
    net = many_connections()
    theirs = built(net)
    ours = built(net, SharingBuilder())
    for conn in net.all_connections:
        assert np.array_equal(ours.params[conn].weights, theirs.params[conn].weights), conn
        if theirs.params[conn].eval_points is not None:
            assert np.array_equal(ours.params[conn].eval_points, theirs.params[conn].eval_points)
    rmses = [c for c in net.all_connections if theirs.params[c].solver_info]
    for conn in rmses:
        np.testing.assert_array_equal(
            ours.params[conn].solver_info["rmses"], theirs.params[conn].solver_info["rmses"]
        )


def test_shares_rates_of_nengo_neurons_only():
    net = many_connections()
    CountingLIF.calls = 0
    built(net)
    nengo_calls = CountingLIF.calls
    CountingLIF.calls = 0
    builder = SharingBuilder()
    built(net, builder)
    assert CountingLIF.calls == nengo_calls == 2  # user rates: once per connection
    assert builder.solves.activities == {}  # nothing kept past the last connection


def count_rates(monkeypatch) -> list:
    """The shapes of the rates matrices nengo's LIF computes from now on (one
    call per matrix)."""
    computed = []
    original = nengo.LIF.rates

    def rates(self, x, gain, bias):
        computed.append(x.shape)
        return original(self, x, gain, bias)

    monkeypatch.setattr(nengo.LIF, "rates", rates)
    monkeypatch.setattr(solves, "_BLOCK_SIZE", 10**9)
    return computed


def test_computes_each_ensembles_activities_once(monkeypatch):
    net = many_connections()
    computed = count_rates(monkeypatch)
    built(net)
    n_nengo = len(computed)
    computed.clear()
    built(net, SharingBuilder())
    # a: 6 LstsqL2 connections with its default eval points share one matrix;
    # few: 2 share one
    assert n_nengo - len(computed) == 5 + 1


def test_kept_work_is_bounded_and_dropped_work_is_recomputed_to_the_same_bits(monkeypatch):
    # connections between networks are built after all the networks: each
    # ensemble's activities would be kept from its first connection to its last
    with nengo.Network(seed=5) as net:
        arrays = [nengo.networks.EnsembleArray(30, 3) for _ in range(4)]
        for pre, post in zip(arrays[:-1], arrays[1:], strict=True):
            for a, b in zip(pre.ea_ensembles, post.ea_ensembles, strict=True):
                nengo.Connection(a, b, function=np.square)
    theirs = built(net)
    kept = []
    builder = SharingBuilder()
    original = builder.solves._bound

    def bound(keep):
        original(keep)
        kept.append(builder.solves.kept_bytes)

    builder.solves._bound = bound
    one = 367_200  # one ensemble's rates, inputs and factor
    monkeypatch.setattr(solves, "MAX_KEPT_BYTES", 2 * one)
    ours = built(net, builder)
    # the bound, plus the ensemble being solved (all 12 would be kept otherwise)
    assert 2 * one <= max(kept) <= 3 * one
    assert builder.solves.kept_bytes == 0 and builder.solves.activities == {}
    for conn in net.all_connections:
        assert np.array_equal(ours.params[conn].weights, theirs.params[conn].weights)


def counting_solves():
    """A `SharingBuilder`, and the list of connections it solves (not cache hits)."""
    builder = SharingBuilder()
    solved = []
    original = builder.solves.solve

    def solve(*args, **kwargs):
        solved.append(args[0])
        return original(*args, **kwargs)

    builder.solves.solve = solve
    return builder, solved


def test_decoder_cache_entries_interchange_with_nengo(tmp_path):
    net = many_connections()
    theirs = built(net, cache=DecoderCache(cache_dir=str(tmp_path)))
    builder, solved = counting_solves()
    ours = built(net, builder, cache=DecoderCache(cache_dir=str(tmp_path)))
    assert solved == []  # every solve was a hit on nengo's entries
    for conn in net.all_connections:
        assert np.array_equal(ours.params[conn].weights, theirs.params[conn].weights)


@pytest.mark.parametrize(
    "neuron_type",
    [
        nengo.LIF(),
        nengo.LIFRate(tau_rc=0.05),
        nengo.RectifiedLinear(),
        nengo.SpikingRectifiedLinear(),
        nengo.Sigmoid(),
        nengo.Tanh(),
        nengo.AdaptiveLIF(),
        nengo.RegularSpiking(nengo.Tanh()),
    ],
    ids=lambda n: type(n).__name__,
)
def test_block_rates_equal_nengo_rates(neuron_type):
    rng = np.random.RandomState(4)
    x = rng.uniform(-1.5, 1.5, (3001, 70))
    gain = rng.uniform(0.5, 3, 70)
    bias = rng.uniform(-1, 2, 70)
    assert np.array_equal(
        block_rates(neuron_type, x, gain, bias), neuron_type.rates(x, gain, bias)
    )


def test_all_zero_activities_is_nengos_build_error():
    with nengo.Network(seed=1) as net:
        a = nengo.Ensemble(5, 1, intercepts=nengo.dists.Choice([0.99]), encoders=[[1]] * 5)
        b = nengo.Ensemble(5, 1)
        nengo.Connection(a, b, eval_points=-np.ones((10, 1)))
    with pytest.raises(nengo.exceptions.BuildError, match="all zero"):
        built(net, SharingBuilder())


def test_rates_after_fork_do_not_hang():
    """A child forked after the rates' thread pool exists makes its own."""
    import multiprocessing

    rng = np.random.RandomState(0)
    x, gain, bias = rng.uniform(-1, 1, (5000, 40)), np.ones(40), np.zeros(40)
    want = block_rates(nengo.LIF(), x, gain, bias)  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(block_rates, (nengo.LIF(), x, gain, bias)).get(timeout=60)
    assert np.array_equal(got, want)


def test_probes_of_decoded_outputs_share_their_ensembles_work(monkeypatch):
    # nengo builds a probe of an ensemble's decoded output as a connection,
    # after the network's connections: the ensemble's activities are kept for it
    with nengo.Network(seed=4) as net:
        ens = nengo.Ensemble(200, 3, radius=2)
        nengo.Connection(ens, ens, function=lambda x: x * 0.5, synapse=0.1)
        probes = [nengo.Probe(ens, synapse=0.1), nengo.Probe(ens[1:], synapse=0.01)]
    computed = count_rates(monkeypatch)
    theirs = built(net)
    assert len(computed) == 3
    computed.clear()
    builder = SharingBuilder()
    ours = built(net, builder)
    assert len(computed) == 1
    assert builder.solves.activities == {}

    def probe_decoders(model, probe):
        (conn,) = [c for c in model.params if isinstance(c, nengo.Connection) and c.post is probe]
        return model.params[conn].weights

    for probe in probes:
        assert np.array_equal(probe_decoders(ours, probe), probe_decoders(theirs, probe))


def test_nengo_finds_our_decoder_cache_entries(tmp_path, monkeypatch):
    # our keys hash what connections share once (`decoder_keys.PrefixKeys`):
    # the digests must still be nengo's
    net = many_connections()
    ours = built(net, SharingBuilder(), cache=DecoderCache(cache_dir=str(tmp_path)))
    solved = []
    original = nengo.solvers.LstsqL2.__call__

    def call(self, A, *args, **kwargs):
        solved.append(A.shape[1])
        return original(self, A, *args, **kwargs)

    monkeypatch.setattr(nengo.solvers.LstsqL2, "__call__", call)
    theirs = built(net, cache=DecoderCache(cache_dir=str(tmp_path)))
    # every solve hit, but the two from the user's neuron type (50 neurons),
    # which nengo cannot fingerprint and never caches
    assert solved == [50, 50]
    for conn in net.all_connections:
        assert np.array_equal(ours.params[conn].weights, theirs.params[conn].weights)


def test_a_rebuild_finds_decoders_by_alias_without_hashing_inputs(tmp_path, monkeypatch):
    net = many_connections()
    first = built(net, SharingBuilder(), cache=DecoderCache(cache_dir=str(tmp_path)))
    hashed = []
    original = decoder_keys.SharedPrefixes.nengo_key

    def nengo_key(self, *args):
        hashed.append(args)
        return original(self, *args)

    monkeypatch.setattr(decoder_keys.SharedPrefixes, "nengo_key", nengo_key)
    builder, solved = counting_solves()
    again = built(net, builder, cache=DecoderCache(cache_dir=str(tmp_path)))
    assert hashed == [] and solved == []
    for conn in net.all_connections:
        assert np.array_equal(again.params[conn].weights, first.params[conn].weights)


@pytest.mark.parametrize("change", ["eval_points", "encoders", "radius", "targets"])
def test_alias_keys_name_what_the_inputs_are_made_of(change):
    rng = np.random.RandomState(0)
    parts = {
        "eval_points": rng.uniform(-1, 1, (40, 2)),
        "encoders": rng.uniform(-1, 1, (10, 2)),
        "radius": 1.0,
        "targets": rng.uniform(-1, 1, (40, 1)),
    }
    gain, bias = np.ones(10), np.zeros(10)

    def alias(parts):
        inputs = solves._Activities(
            parts["eval_points"], parts["encoders"], parts["radius"], gain, bias
        )
        keys = decoder_keys._SolveKeys({}, inputs)
        args = (nengo.solvers.LstsqL2(), nengo.LIF(), gain, bias, inputs.x, parts["targets"])
        key = keys(*args, np.random.RandomState(1))
        # not in the (empty) index: nengo's key is used, and is nengo's
        assert (
            key == keys.key == DecoderCache._get_cache_key(None, *args, np.random.RandomState(1))
        )
        return keys.alias

    before = alias(parts)
    assert before == alias(dict(parts))
    changed = dict(parts)
    changed[change] = parts[change] * 2
    assert alias(changed) != before
