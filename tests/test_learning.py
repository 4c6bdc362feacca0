"""Learning rules (PES, BCM, Oja, Voja, RLS) against nengo's reference simulator."""

import nengo
import numpy as np
import pytest

import nengojax

T = 0.5


def _assert_close(ref, got, rtol=1e-4, what=""):
    """``got`` matches ``ref`` within ``rtol`` of ``ref``'s magnitude."""
    ref = np.asarray(ref)
    got = np.asarray(got)
    assert got.shape == ref.shape, what
    scale = max(np.abs(ref).max(), 1e-12)
    err = np.abs(got - ref).max()
    assert err <= rtol * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})"


def _compare(net, probes, t=T, rtol=1e-4, minibatch_size=None):
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(t)
    with nengojax.Simulator(net, progress_bar=False, minibatch_size=minibatch_size) as sim:
        sim.run(t)
    for p in probes:
        got = sim.data[p]
        items = got if minibatch_size else [got]
        for item in items:
            _assert_close(ref.data[p], item, rtol=rtol, what=f"{p.target}.{p.attr}")
    return ref, sim


def _stim(dims=1):
    return nengo.Node(lambda t: [np.sin(2 * np.pi * 2 * t + i) for i in range(dims)])


PRE_SYNAPSE = nengo.Lowpass(0.005)


def _pes_decoded(neuron_type, pre_synapse=PRE_SYNAPSE, dims=1):
    with nengo.Network(seed=1) as net:
        stim = _stim(dims)
        pre = nengo.Ensemble(30, dims, neuron_type=neuron_type)
        post = nengo.Ensemble(30, dims, neuron_type=neuron_type)
        nengo.Connection(stim, pre)
        conn = nengo.Connection(
            pre,
            post,
            function=lambda x: np.zeros(dims),
            learning_rule_type=nengo.PES(learning_rate=1e-3, pre_synapse=pre_synapse),
        )
        err = nengo.Node(size_in=dims)
        nengo.Connection(post, err)
        nengo.Connection(stim, err, transform=-1)
        nengo.Connection(err, conn.learning_rule)
        probes = [
            nengo.Probe(post, synapse=0.01),
            nengo.Probe(conn, "weights", sample_every=0.01),
            nengo.Probe(conn.learning_rule, "error"),
        ]
    return net, probes


@pytest.mark.parametrize("neuron_type", [nengo.LIFRate(), nengo.RectifiedLinear()])
def test_pes_decoded(neuron_type):
    net, probes = _pes_decoded(neuron_type, dims=2)
    ref, _ = _compare(net, probes)
    # learning happened
    assert np.abs(ref.data[probes[1]][-1] - ref.data[probes[1]][0]).max() > 1e-5


def test_pes_pre_synapse_none():
    net, probes = _pes_decoded(nengo.LIFRate(), pre_synapse=None)
    _compare(net, probes)


def test_pes_spiking():
    """Spiking float32 may flip a rare spike: a looser check than for rates."""
    net, probes = _pes_decoded(nengo.LIF())
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(T)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(T)
    out_ref, out = ref.data[probes[0]], sim.data[probes[0]]
    assert np.abs(out - out_ref).max() < 0.05
    w_ref, w = ref.data[probes[1]], sim.data[probes[1]]
    assert np.abs(w - w_ref).max() < 0.05 * np.abs(w_ref).max()


@pytest.mark.parametrize("sliced", [False, True])
def test_pes_neurons_to_neurons(sliced):
    rng = np.random.RandomState(3)
    with nengo.Network(seed=2) as net:
        stim = _stim(2)
        pre = nengo.Ensemble(20, 2, neuron_type=nengo.LIFRate())
        post = nengo.Ensemble(24, 2, neuron_type=nengo.LIFRate())
        nengo.Connection(stim, pre)
        if sliced:
            n_pre, n_post = 12, 16
            pre_obj, post_obj = pre.neurons[2:14], post.neurons[4:20]
        else:
            n_pre, n_post = 20, 24
            pre_obj, post_obj = pre.neurons, post.neurons
        conn = nengo.Connection(
            pre_obj,
            post_obj,
            transform=rng.uniform(-1e-3, 1e-3, (n_post, n_pre)),
            learning_rule_type=nengo.PES(learning_rate=1e-4),
        )
        nengo.Connection(stim, conn.learning_rule, transform=-1)
        nengo.Connection(post, conn.learning_rule)
        probes = [
            nengo.Probe(post, synapse=0.01),
            nengo.Probe(conn, "weights", sample_every=0.01),
            nengo.Probe(conn.learning_rule, "activities"),
        ]
    _compare(net, probes)


def test_pes_neurons_to_ensemble():
    with nengo.Network(seed=4) as net:
        stim = _stim(1)
        pre = nengo.Ensemble(20, 1, neuron_type=nengo.RectifiedLinear())
        post = nengo.Ensemble(20, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(stim, pre)
        conn = nengo.Connection(
            pre.neurons,
            post,
            transform=np.zeros((1, 20)),
            learning_rule_type=nengo.PES(learning_rate=1e-4),
        )
        nengo.Connection(post, conn.learning_rule)
        nengo.Connection(stim, conn.learning_rule, transform=-1)
        probes = [
            nengo.Probe(post, synapse=0.01),
            nengo.Probe(conn, "weights", sample_every=0.01),
        ]
    _compare(net, probes)


def _neuron_rule_net(rule, seed=5):
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        stim = _stim(1)
        pre = nengo.Ensemble(20, 1, neuron_type=nengo.LIFRate())
        post = nengo.Ensemble(15, 1, neuron_type=nengo.LIFRate())
        nengo.Connection(stim, pre)
        conn = nengo.Connection(
            pre.neurons,
            post.neurons,
            transform=rng.uniform(-1e-3, 1e-3, (15, 20)),
            learning_rule_type=rule,
        )
        probes = [
            nengo.Probe(post.neurons, synapse=0.01),
            nengo.Probe(conn, "weights", sample_every=0.01),
        ]
        rules = conn.learning_rule
        for r in rules if isinstance(rules, list) else [rules]:
            probes += [nengo.Probe(r, "delta", sample_every=0.05)]
    return net, probes


def test_bcm():
    net, probes = _neuron_rule_net(nengo.BCM(learning_rate=1e-8))
    with net:
        probes.append(nengo.Probe(net.connections[-1].learning_rule, "theta"))
    ref, _ = _compare(net, probes)
    w = ref.data[probes[1]]
    assert np.abs(w[-1] - w[0]).max() > 1e-6


def test_bcm_no_synapses():
    net, probes = _neuron_rule_net(
        nengo.BCM(learning_rate=1e-9, pre_synapse=None, post_synapse=None, theta_synapse=None)
    )
    _compare(net, probes)


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_oja(beta):
    net, probes = _neuron_rule_net(nengo.Oja(learning_rate=1e-6, beta=beta))
    ref, _ = _compare(net, probes)
    w = ref.data[probes[1]]
    assert np.abs(w[-1] - w[0]).max() > 1e-6


def test_multiple_rules():
    net, probes = _neuron_rule_net([nengo.Oja(learning_rate=1e-6), nengo.BCM(learning_rate=1e-8)])
    _compare(net, probes)


@pytest.mark.parametrize("gate", [False, True])
def test_voja(gate):
    with nengo.Network(seed=6) as net:
        stim = _stim(2)
        ens = nengo.Ensemble(25, 2, neuron_type=nengo.LIFRate(), radius=1.5)
        conn = nengo.Connection(stim, ens, learning_rule_type=nengo.Voja(learning_rate=1e-2))
        if gate:
            # learning on for the first half, off for the second
            on = nengo.Node(lambda t: float(t < T / 2))
            nengo.Connection(on, conn.learning_rule, synapse=None)
        probes = [
            nengo.Probe(ens, synapse=0.01),
            nengo.Probe(conn.learning_rule, "scaled_encoders", sample_every=0.01),
            nengo.Probe(conn.learning_rule, "delta", sample_every=0.05),
        ]
    ref, _ = _compare(net, probes)
    enc = ref.data[probes[1]]
    assert np.abs(enc[-1] - enc[0]).max() > 1e-3


@pytest.mark.parametrize("pre_synapse", [nengo.Lowpass(0.005), None])
def test_rls(pre_synapse):
    with nengo.Network(seed=7) as net:
        stim = _stim(1)
        pre = nengo.Ensemble(20, 1, neuron_type=nengo.LIFRate())
        post = nengo.Node(size_in=1)
        nengo.Connection(stim, pre)
        conn = nengo.Connection(
            pre,
            post,
            function=lambda x: 0,
            learning_rule_type=nengo.RLS(learning_rate=1e-3, pre_synapse=pre_synapse),
        )
        nengo.Connection(post, conn.learning_rule)
        nengo.Connection(stim, conn.learning_rule, transform=-1)
        probes = [
            nengo.Probe(post, synapse=0.01),
            nengo.Probe(conn, "weights", sample_every=0.01),
            nengo.Probe(conn.learning_rule, "inv_gamma", sample_every=0.05),
        ]
    # RLS divides by running sums, so float32 drift is a little larger
    ref, _ = _compare(net, probes, rtol=5e-4)
    out = ref.data[probes[0]]
    assert np.abs(out[-100:]).max() > 0.1  # it learned something


def test_pes_minibatch():
    net, probes = _pes_decoded(nengo.LIFRate())
    _compare(net, probes, minibatch_size=2)


def test_pes_run_twice_and_reset():
    """Learned weights persist across runs and are restored by reset."""
    net, probes = _pes_decoded(nengo.RectifiedLinear())
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.2)
        ref.run(0.1)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.1)
        sim.reset()
        sim.run(0.2)
        sim.run(0.1)
    for p in probes:
        _assert_close(ref.data[p], sim.data[p], what=p.attr)


def _factored(sim) -> dict:
    """Key -> (rows, cols) of the state bases carried as two factors."""
    layout = sim.compiled.program.layout
    return {b.key: b.factors for b in layout.bases if b.factors is not None}


@pytest.mark.parametrize("rule", ["pes", "rls"])
def test_deltas_carried_as_factors(rule):
    """Rank-one deltas are carried as their factors (rows + cols numbers, not
    rows x cols), with nengo's probes, deltas and learned weights; several PES
    rules (merged into one operator) each keep their own factors."""
    with nengo.Network(seed=8) as net:
        stim = _stim(3)
        conns, probes = [], []
        for i in range(3 if rule == "pes" else 1):
            pre = nengo.Ensemble(30 + 5 * i, 3, neuron_type=nengo.LIFRate())
            post = nengo.Node(size_in=3)
            nengo.Connection(stim, pre)
            learning = (
                nengo.PES(1e-3 * (i + 1)) if rule == "pes" else nengo.RLS(learning_rate=1e-3)
            )
            conn = nengo.Connection(
                pre, post, function=lambda x: [0, 0, 0], learning_rule_type=learning
            )
            nengo.Connection(post, conn.learning_rule)
            nengo.Connection(stim, conn.learning_rule, transform=-1)
            conns.append(conn)
            probes += [
                nengo.Probe(post, synapse=0.01),
                nengo.Probe(conn, "weights", sample_every=0.01),
                nengo.Probe(conn.learning_rule, "delta", sample_every=0.01),
            ]
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.3)
        theirs = {s.name: v for s, v in ref.signals.items()}
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
        factored = _factored(sim)
        carried = {k: sim.state["signals"][k].shape for k in factored}
        ours = {s.name: v for s, v in sim.signals.items()}
        bases = [b for b in sim.compiled.program.layout.bases if b.factors is not None]
    for p in probes:
        _assert_close(ref.data[p], sim.data[p], rtol=5e-4, what=f"{p.target}.{p.attr}")
    assert sorted(factored.values()) == sorted((3, 30 + 5 * i) for i in range(len(conns)))
    assert carried == {k: (rows + cols,) for k, (rows, cols) in factored.items()}
    for b in bases:  # sim.signals: the whole matrix again
        _assert_close(theirs[b.signal.name], ours[b.signal.name], rtol=5e-4, what="delta")


def test_factored_deltas_per_minibatch_item():
    net, probes = _pes_decoded(nengo.LIFRate(), dims=2)
    with nengojax.Simulator(net, progress_bar=False, minibatch_size=3) as sim:
        assert _factored(sim)
        sim.run(T)
        batched = sim.data[probes[0]]
    with nengojax.Simulator(net, progress_bar=False) as single:
        single.run(T)
    for item in batched:  # each item's own factors (float32 round-off apart)
        _assert_close(single.data[probes[0]], item, rtol=1e-5, what="item")


def test_a_replaced_pes_lowering_keeps_whole_deltas():
    """A lowering a user registers for SimPES in place of nengojax's may write
    the delta whole: it is then carried whole, with nengo's answer."""
    import jax
    import jax.numpy as jnp
    from nengo.builder.learning_rules import SimPES

    from nengojax.ops.registry import OPERATORS

    platform = jax.default_backend()

    def plain_pes(op, ctx):
        alpha = -op.learning_rate * ctx.dt / op.pre_filtered.shape[0]

        def apply(env):
            error, pre = env.read(op.error), env.read(op.pre_filtered)
            env.set(op.delta, jnp.outer(alpha * error, pre))

        return apply

    net, probes = _pes_decoded(nengo.LIFRate(), dims=2)
    nengojax.register_lowering(SimPES, platform=platform)(plain_pes)
    try:
        ref, sim = _compare(net, probes)
        assert not _factored(sim)
    finally:
        OPERATORS.unregister(SimPES, platform=platform)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert _factored(sim)  # nengojax's own again
