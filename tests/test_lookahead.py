"""Steps run ahead of ``sim.step()`` calls (simulator/lookahead.py): what a user
sees is what stepping one by one shows, and nengo's answer where user code runs
between the steps."""

import io
import logging

import jax
import nengo
import numpy as np
import pytest
from nengo.exceptions import SimulationError

import nengojax
from nengojax.simulator import lookahead
from nengojax.simulator.lookahead import AFTER, can_look_ahead


def model(fn=lambda t: [np.sin(8 * t)], seed=0):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(fn)
        ens = nengo.Ensemble(50, 1)
        nengo.Connection(stim, ens)
        probes = [nengo.Probe(ens, synapse=0.01), nengo.Probe(ens.neurons)]
    return net, probes


def warm(sim):
    """Step until the lookahead's loop is compiled (it compiles in the background)."""
    for _ in range(AFTER):
        sim.step()
    thread = sim._lookahead._compiled
    if thread not in (None, True):
        thread.join()


def stepped(sim, n):
    for _ in range(n):
        sim.step()


def one_by_one(net, n, **kwargs):
    with nengojax.Simulator(net, progress_bar=False, **kwargs) as sim:
        sim._lookahead._eligible = False
        stepped(sim, n)
        return sim.n_steps, sim.trange(), {p: sim.data[p] for p in sim.model.probes}, sim.state


def states_equal(a, b):
    same = jax.tree_util.tree_map(lambda x, y: np.array_equal(np.asarray(x), np.asarray(y)), a, b)
    return all(jax.tree_util.tree_leaves(same))


@pytest.mark.parametrize("minibatch_size", [None, 2])
def test_steps_shown_one_per_call_equal_steps_run_one_by_one(minibatch_size):
    net, probes = model()
    n_ref, t_ref, data_ref, state_ref = one_by_one(net, 150, minibatch_size=minibatch_size)
    with nengojax.Simulator(net, progress_bar=False, minibatch_size=minibatch_size) as sim:
        warm(sim)
        for i in range(AFTER, 150):
            sim.step()
            assert sim.n_steps == i + 1
            assert sim.data[probes[0]].shape[-2] == i + 1  # one more row per call
        assert sim._lookahead.chunk is not None or sim._lookahead._length > 8  # it ran ahead
        assert sim.n_steps == n_ref
        assert np.array_equal(sim.trange(), t_ref)
        for p in probes:
            assert np.allclose(sim.data[p], data_ref[p], atol=1e-5)
        # the state read mid-chunk is that of the steps shown
        assert jax.tree_util.tree_all(
            jax.tree_util.tree_map(
                lambda x, y: np.allclose(x, y, atol=1e-5), dict(sim.state), dict(state_ref)
            )
        )


def test_state_read_mid_chunk_is_the_state_the_chunk_passed_through():
    net, probes = model()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        warm(sim)
        stepped(sim, 30)  # chunks of 8 and 16 shown; the third (32) part shown
        chunk = sim._lookahead.chunk
        assert chunk is not None and 0 < chunk.shown < chunk.n
        start, shown = chunk.state, chunk.shown
        settled = sim.state  # recomputed from the chunk's start
        assert sim._lookahead.chunk is None
        # the same steps from the same state by the same compiled loop, to the bit
        again, _ = sim.compiled.run_chunk(sim.params, start, lookahead.SIZE, shown, {}, chunk.host)
        assert states_equal(settled, again)
        # and runs go on from there: the same as never having run ahead
        sim.run_steps(20)
        ref = one_by_one(net, AFTER + 30)[2]
        with nengojax.Simulator(net, progress_bar=False) as plain:
            plain._lookahead._eligible = False
            stepped(plain, AFTER + 30)
            plain.run_steps(20)
            for p in probes:
                assert np.allclose(sim.data[p], plain.data[p], atol=1e-5)
                assert np.allclose(sim.data[p][: AFTER + 30], ref[p], atol=1e-5)


def test_closed_loop_through_user_code_between_steps_gives_nengos_answer():
    """A Node reading a value the script changes between step() calls (a GUI
    slider, a robot's sensor) must see every change: no running ahead."""
    value = [0.0]
    net, probes = model(lambda t: value[0])

    def loop(sim_cls):
        value[0] = 0.0
        with sim_cls(net, progress_bar=False) as sim:
            for _ in range(200):
                sim.step()
                value[0] = 1.0 - float(sim.data[probes[0]][-1, 0])  # drive toward 0.5
            return sim.data[probes[0]]

    ref = loop(nengo.Simulator)
    got = loop(nengojax.Simulator)
    assert np.allclose(got, ref, atol=2e-3)


def test_closure_rebound_between_steps_is_seen():
    """A pure function whose closure cell the script rebinds between steps."""

    def make():
        gain = 0.0

        def fn(t):
            return gain

        def set_gain(g):
            nonlocal gain
            gain = g

        return fn, set_gain

    fn, set_gain = make()
    net, probes = model(fn)

    def loop(sim_cls):
        set_gain(0.0)
        with sim_cls(net, progress_bar=False) as sim:
            for i in range(120):
                sim.step()
                set_gain(float(i >= 60))
            return sim.data[probes[0]]

    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert not can_look_ahead(sim)
    assert np.allclose(loop(nengojax.Simulator), loop(nengo.Simulator), atol=2e-3)


def test_new_params_reset_and_data_mid_chunk():
    net, probes = model()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        warm(sim)
        stepped(sim, 30)
        assert sim._lookahead.chunk is not None
        # new params: later steps use them (the chunk's are dropped)
        params = dict(sim.params)
        key = next(k for k in params if k.endswith("bias"))
        params[key] = params[key] + 1.0
        sim.params = params
        stepped(sim, 20)
        with nengojax.Simulator(net, progress_bar=False) as ref:
            ref._lookahead._eligible = False
            stepped(ref, AFTER + 30)
            ref.params = {k: v + 1.0 if k == key else v for k, v in ref.params.items()}
            stepped(ref, 20)
            for p in probes:
                assert np.allclose(sim.data[p], ref.data[p], atol=1e-5)
        # reset mid-chunk (the built params back too): as new
        stepped(sim, 5)
        sim.reset(include_trainable=True)
        assert sim.n_steps == 0 and sim._lookahead.chunk is None
        stepped(sim, 40)
        first = one_by_one(net, 40)[2]
        for p in probes:
            assert np.allclose(sim.data[p], first[p], atol=1e-5)


def test_fault_ahead_is_raised_at_its_own_step():
    # NaN from t > 0.05 on: nengo raises at step 51 with 50 steps kept
    net, probes = model(lambda t: [np.log(0.0505 - t)])
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert can_look_ahead(sim)
        with np.errstate(invalid="ignore"):
            warm(sim)
            with pytest.raises(SimulationError, match="non-finite"):
                stepped(sim, 100)
        assert sim.n_steps == 50
        assert sim.data[probes[0]].shape == (50, 1)


def test_not_ahead_where_it_could_be_seen():
    with nengo.Network() as net:
        nengo.Node(lambda t: print(end=""))  # not pure
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert not can_look_ahead(sim)
    with nengo.Network() as net:
        a = nengo.Node(lambda t, x: print(end="") or x, size_in=1)  # a callback
        nengo.Connection(nengo.Node(np.sin), a)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert not can_look_ahead(sim)
    with nengo.Network() as net:
        stim = nengo.Node(nengo.processes.WhiteSignal(1, high=5))
        nengo.Probe(stim, sample_every=0.005)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert not can_look_ahead(sim)  # sampled probes step one by one
    with nengo.Network() as net:
        stim = nengo.Node(nengo.processes.WhiteSignal(1, high=5))
        nengo.Probe(stim)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        assert can_look_ahead(sim)  # nengo's own process


def test_steps_ahead_compile_nothing_once_the_background_compile_is_done():
    """The background compile makes the very program the chunks call (one
    place builds its arguments, `runtime.network._scan_args`), and showing
    steps compiles nothing either."""
    net, _ = model()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        warm(sim)
        log = io.StringIO()
        handler = logging.StreamHandler(log)
        logging.getLogger("jax").addHandler(handler)
        try:
            with jax.log_compiles(True):
                stepped(sim, 30)
        finally:
            logging.getLogger("jax").removeHandler(handler)
        assert sim._lookahead.chunk is not None  # it ran ahead
    compiles = [line for line in log.getvalue().splitlines() if line.startswith("Compiling")]
    assert compiles == []
