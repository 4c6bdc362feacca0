"""nengojax.Simulator: nengo.Simulator's behaviour, NengoDL's extras, bad input."""

import gc
import pickle

import jax
import nengo
import numpy as np
import pytest
from nengo.exceptions import (
    BuildError,
    ReadonlyError,
    SimulationError,
    SimulatorClosed,
    ValidationError,
)

import nengojax


def _stimulus(t):
    return np.sin(8 * t)


def _net():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(_stimulus, label="stim")
        ens = nengo.Ensemble(40, 1, label="ens")
        out = nengo.Node(size_in=1, label="out")
        nengo.Connection(stim, ens)
        nengo.Connection(ens, out, function=np.square)
        p = nengo.Probe(out, synapse=0.01)
        p_spikes = nengo.Probe(ens.neurons, sample_every=0.005)
    return net, stim, ens, p, p_spikes


def test_matches_nengo_with_sample_every_and_trange():
    net, _, _, p, p_spikes = _net()
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.2)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.2)
        assert sim.n_steps == 200
        assert np.isclose(sim.time, 0.2)
        np.testing.assert_allclose(sim.trange(), ref.trange())
        np.testing.assert_allclose(sim.trange(sample_every=0.005), ref.trange(sample_every=0.005))
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-5)
    assert sim.data[p_spikes].shape == ref.data[p_spikes].shape == (40, 40)
    # float32 may move a rare spike by one step
    assert np.mean(sim.data[p_spikes] == ref.data[p_spikes]) > 0.99


@pytest.mark.parametrize("minibatch_size, unroll", [(None, 1), (2, 1), (None, 3)])
def test_sample_every_kept_on_the_device(minibatch_size, unroll):
    # a period that is not a whole number of steps, runs of odd lengths and one
    # over the longest chunk: the kept steps are nengo's, and the device only
    # holds about a chunk / period rows of the sampled probe
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: [np.sin(9 * t), t])
        p = nengo.Probe(stim, sample_every=0.0035)
        p_all = nengo.Probe(stim)
    lengths = [1, 7, 13, 600, 4500]
    with nengo.Simulator(net, progress_bar=False) as ref:
        for n in lengths:
            ref.run_steps(n)
    with nengojax.Simulator(
        net, minibatch_size=minibatch_size, unroll=unroll, progress_bar=False
    ) as sim:
        rows = []
        run_chunk = sim.compiled.run_chunk

        def spy(*args, **kwargs):
            state, probes = run_chunk(*args, **kwargs)
            rows.append((args[2], probes[sim.compiled.key(p)].shape))
            return state, probes

        sim.compiled.run_chunk = spy
        for n in lengths:
            sim.run_steps(n)
    data = sim.data[p] if minibatch_size is None else sim.data[p][1]
    assert data.shape == ref.data[p].shape == (1463, 2)
    np.testing.assert_allclose(data, ref.data[p], atol=1e-6)
    np.testing.assert_allclose(sim.trange(sample_every=0.0035), ref.trange(sample_every=0.0035))
    assert sim.data[p_all].shape[-2] == 5121
    time_axis = 0 if minibatch_size is None else 1
    for size, shape in rows:
        assert shape[time_axis] == min(size, int(size / 3.5) + 2) + 1


def test_many_run_lengths_and_steps_reuse_compiles():
    net, _, _, p, _ = _net()
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        for n in [1, 1, 7, 13, 50, 3, 100]:
            sim.run_steps(n)
        for _ in range(25):
            sim.step()
        # 6 run lengths share 3 compiled scans (of 1, 8 and 64 steps) ... and 512
        assert sim.compiled._run_packed_jit.top._cache_size() == 4
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-5)


def test_reset_and_seed():
    with nengo.Network(seed=1) as net:
        u = nengo.Node(nengo.processes.WhiteNoise(), size_out=2)
        p = nengo.Probe(u)
    with nengojax.Simulator(net, seed=3, progress_bar=False) as sim:
        sim.run(0.02)
        first = sim.data[p].copy()
        sim.reset()
        assert sim.n_steps == 0 and sim.data[p].shape == (0, 2)
        sim.run(0.02)
        np.testing.assert_array_equal(sim.data[p], first)
        sim.reset(seed=4)
        sim.run(0.02)
        assert not np.allclose(sim.data[p], first)
    with nengo.Simulator(net, seed=4, progress_bar=False) as ref:
        ref.run(0.02)
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-6)


def test_data_of_built_objects():
    net, _, ens, _, _ = _net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with nengo.Simulator(net, progress_bar=False) as ref:
            np.testing.assert_allclose(sim.data[ens].encoders, ref.data[ens].encoders)
            np.testing.assert_allclose(sim.data[ens].bias, ref.data[ens].bias)


def test_pickle_round_trip():
    net, _, _, p, _ = _net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.05)
        loaded = pickle.loads(pickle.dumps({"sim": sim, "p": p}))
        sim.run(0.05)
    with loaded["sim"] as sim2:
        sim2.run(0.05)
        np.testing.assert_allclose(sim2.data[loaded["p"]], sim.data[p], atol=1e-6)


def test_progress_bar_on_long_runs(capsys):
    net, *_ = _net()

    class Recorder(nengo.utils.progress.ProgressBar):
        def __init__(self):
            super().__init__()
            self.updates = []

        def update(self, progress):
            self.updates.append(progress.n_steps)

        def close(self):
            pass

    bar = Recorder()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5000, progress_bar=bar)
    assert bar.updates and bar.updates[-1] == 5000


def test_warns_when_deleted_open():
    net, *_ = _net()
    sim = nengojax.Simulator(net, progress_bar=False)
    with pytest.warns(ResourceWarning, match="deallocated while open"):
        sim.__del__()
    sim.close()
    del sim
    gc.collect()


def test_closed_simulator_raises():
    net, *_ = _net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(0.01)
    assert sim.closed
    for call in (lambda: sim.run(0.01), sim.step, sim.reset, lambda: sim.run_steps(2)):
        with pytest.raises(SimulatorClosed):
            call()
    with pytest.raises(SimulatorClosed):
        with sim:
            pass


def test_bad_run_times():
    net, *_ = _net()
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(ValidationError, match="Must be positive"):
            sim.run(-0.1)
        with pytest.raises(ValidationError, match="Must be positive"):
            sim.run(float("nan"))
        with pytest.raises(ValidationError, match="non-negative integer"):
            sim.run_steps(2.5)
        with pytest.warns(UserWarning, match="0 timesteps"):
            sim.run(0.0001)
        with pytest.raises(ReadonlyError):
            sim.dt = 0.01


def test_bad_data():
    net, stim, ens, _, _ = _net()
    with nengojax.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        good = np.zeros((2, 10, 1))
        with pytest.raises(ValidationError, match=r"expected shape \(2, 10, 1\)"):
            sim.run_steps(10, data={stim: np.zeros((1, 10, 1))})
        with pytest.raises(ValidationError, match="not an input Node"):
            sim.run_steps(10, data={ens: good})
        with pytest.raises(ValidationError, match="not an input Node"):
            sim.run_steps(10, data={nengo.Node(0, add_to_container=False): good})
        bad = good.copy()
        bad[1, 3, 0] = np.nan
        with pytest.raises(ValidationError, match="NaN"):
            sim.run_steps(10, data={stim: bad})
        with pytest.raises(ValidationError, match="dict"):
            sim.run_steps(10, data=[good])
        assert sim.n_steps == 0  # nothing ran
    with pytest.raises(ValidationError, match="minibatch_size"):
        nengojax.Simulator(net, minibatch_size=0)


def test_node_errors_are_simulation_errors():
    with nengo.Network() as net:
        nengo.Node(lambda t: np.nan if t > 0.002 else 0.0)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(SimulationError, match="non-finite"):
            sim.run(0.01)

    def fail(t, x):
        if t > 0.003:  # nengo calls it once at t=0 to find size_out
            raise RuntimeError("boom in node")

    with nengo.Network() as net:
        a = nengo.Node(1)
        b = nengo.Node(fail, size_in=1)
        nengo.Connection(a, b)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(RuntimeError, match="boom in node"):
            sim.run(0.01)


def test_host_call_error_reaches_the_functional_api():
    # outside the Simulator, a failing host call fails XLA's run: its message
    # names the exception, which the network holds for the caller
    def fail(t, x):
        if t > 0.003:
            raise RuntimeError("boom in node")

    with nengo.Network() as net:
        a = nengo.Node(1)
        b = nengo.Node(fail, size_in=1)
        nengo.Connection(a, b)
    with pytest.warns(UserWarning, match="runs on the host"):
        compiled = nengojax.compile(net)
    with pytest.raises(Exception, match="RuntimeError: boom in node"):
        compiled.run(compiled.init_params(), compiled.init_state(), 10)
    error = compiled.pop_callback_error()
    assert isinstance(error, RuntimeError) and str(error) == "boom in node"


def test_algebraic_loop_is_a_build_error():
    with nengo.Network() as net:
        a = nengo.Node(size_in=1)
        b = nengo.Node(size_in=1)
        nengo.Connection(a, b, synapse=None)
        nengo.Connection(b, a, synapse=None)
    with pytest.raises(BuildError, match="cycles"):
        nengojax.Simulator(net)


def test_float64():
    jax.config.update("jax_enable_x64", True)
    try:
        net, _, _, p, p_spikes = _net()
        with nengojax.Simulator(net, dtype="float64", progress_bar=False) as sim:
            sim.run(0.2)
        with nengo.Simulator(net, progress_bar=False) as ref:
            ref.run(0.2)
        assert sim.data[p].dtype == np.float64
        np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-12)
        np.testing.assert_array_equal(sim.data[p_spikes], ref.data[p_spikes])
    finally:
        jax.config.update("jax_enable_x64", False)
    with pytest.raises(ValidationError, match="x64"):
        nengojax.Simulator(net, dtype="float64")


def test_registered_as_nengo_backend():
    from importlib.metadata import entry_points

    eps = entry_points(group="nengo.backends")
    assert any(ep.load() is nengojax.Simulator for ep in eps)


def test_device_memory_stays_flat_as_a_run_grows():
    """Probe data leaves the device chunk by chunk: device-resident bytes after a
    run of 4 chunks equal those after 1 (the data themselves live on the host)."""
    import jax

    from nengojax.simulator.simulator import MAX_CHUNK

    with nengo.Network(seed=0) as net:
        u = nengo.Node(np.sin)
        e = nengo.Ensemble(50, 1)
        nengo.Connection(u, e)
        p = nengo.Probe(e.neurons)  # 50 values a step

    def device_bytes():
        return sum(x.nbytes for x in jax.live_arrays())

    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(MAX_CHUNK)
        one_chunk = device_bytes()
        sim.run_steps(3 * MAX_CHUNK)
        assert device_bytes() <= one_chunk
        assert sim.data[p].shape == (4 * MAX_CHUNK, 50)
        assert sim.data[p].nbytes > 10 * one_chunk


def test_last_chunk_of_a_long_run_reuses_the_longest_scan(monkeypatch):
    """A run of one chunk and a few steps compiles one scan, not two, and gives
    the same data as the same steps run in pieces."""
    from nengojax.simulator import simulator as simulator_module

    monkeypatch.setattr(simulator_module, "MAX_CHUNK", 64)
    with nengo.Network(seed=0) as net:
        u = nengo.Node(np.sin)
        e = nengo.Ensemble(20, 1)
        nengo.Connection(u, e)
        p = nengo.Probe(e, synapse=0.01)
    with nengojax.Simulator(net, progress_bar=False) as whole:
        scan_lengths = set()
        run_chunk = whole.compiled.run_chunk

        def recording_run_chunk(params, state, n_steps, *args, **kwargs):
            scan_lengths.add(n_steps)
            return run_chunk(params, state, n_steps, *args, **kwargs)

        monkeypatch.setattr(whole.compiled, "run_chunk", recording_run_chunk)
        whole.run_steps(64 + 3)
    with nengojax.Simulator(net, progress_bar=False) as pieces:
        pieces.run_steps(30)
        pieces.run_steps(37)
    assert scan_lengths == {64}
    assert whole.n_steps == 67 and whole.data[p].shape == (67, 1)
    np.testing.assert_array_equal(whole.data[p], pieces.data[p])
