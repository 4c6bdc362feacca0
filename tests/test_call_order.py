"""User Python is called as nengo calls it: once per step, in step order.

Three models whose answers depend on that order (issue: silently wrong answers
when user code has side effects), each against nengo.Simulator.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

import nengojax


def _run(sim_cls, make, steps, **kwargs):
    net, probes, extra = make()
    with sim_cls(net, progress_bar=False, **kwargs) as sim:
        for n in steps:
            sim.run_steps(n)
        return {k: np.array(sim.data[p]) for k, p in probes.items()}, extra


def shared_rng():
    rng = np.random.RandomState(3)
    with nengo.Network(seed=1) as net:
        a = nengo.Node(lambda t: rng.uniform(-1, 1, size=2))
        b = nengo.Node(lambda t: rng.uniform(-1, 1))
        ens = nengo.Ensemble(20, 3)
        nengo.Connection(a, ens[:2])
        nengo.Connection(b, ens[2])
        probes = {"a": nengo.Probe(a), "b": nengo.Probe(b), "ens": nengo.Probe(ens, synapse=0.01)}
    return net, probes, None


def growing_vocabulary():
    """Two inputs that create their vectors the first time a name is seen, from
    one generator (as nengo_spa vocabularies do)."""
    rng = np.random.RandomState(5)
    vocab = {}
    order = []

    def vector(name):
        if name not in vocab:
            vocab[name] = rng.standard_normal(4)
            order.append(name)
        return vocab[name]

    with nengo.Network(seed=2) as net:
        colour = nengo.Node(lambda t: vector("RED" if t < 0.02 else "BLUE"))
        shape = nengo.Node(lambda t: vector("CIRCLE" if t < 0.02 else "SQUARE"))
        ens = nengo.Ensemble(50, 4)
        nengo.Connection(colour, ens)
        nengo.Connection(shape, ens, transform=-1)
        probes = {
            "colour": nengo.Probe(colour),
            "shape": nengo.Probe(shape),
            "ens": nengo.Probe(ens, synapse=0.01),
        }
    return net, probes, order


class PointRobot:
    """A point on a line that a motor command moves (an environment in Python)."""

    def __init__(self):
        self.x = 1.5

    def sense(self, t):
        return self.x

    def act(self, t, u):
        self.x += 0.001 * float(u[0]) * 20


def closed_loop():
    robot = PointRobot()
    with nengo.Network(seed=3) as net:
        sensor = nengo.Node(robot.sense)
        motor = nengo.Node(robot.act, size_in=1, size_out=0)
        ens = nengo.Ensemble(100, 1, radius=2)
        nengo.Connection(sensor, ens)
        nengo.Connection(ens, motor, function=lambda x: 0.5 - x, synapse=0.01)
        probes = {"sensor": nengo.Probe(sensor), "ens": nengo.Probe(ens, synapse=0.02)}
    return net, probes, robot


def test_shared_rng_is_drawn_in_step_order():
    ref, _ = _run(nengo.Simulator, shared_rng, [30, 20])
    out, _ = _run(nengojax.Simulator, shared_rng, [30, 20])
    np.testing.assert_allclose(out["a"], ref["a"], rtol=1e-6)
    np.testing.assert_allclose(out["b"], ref["b"], rtol=1e-6)
    np.testing.assert_allclose(out["ens"], ref["ens"], atol=2e-3)


def test_vocabulary_grows_in_nengos_order():
    ref, ref_order = _run(nengo.Simulator, growing_vocabulary, [40])
    out, order = _run(nengojax.Simulator, growing_vocabulary, [40])
    assert order == ref_order == ["RED", "CIRCLE", "BLUE", "SQUARE"]
    np.testing.assert_allclose(out["colour"], ref["colour"], rtol=1e-6)
    np.testing.assert_allclose(out["shape"], ref["shape"], rtol=1e-6)
    np.testing.assert_allclose(out["ens"], ref["ens"], atol=5e-3)


@pytest.mark.parametrize("steps", [[1000], [1] * 50 + [950]], ids=["run", "step_then_run"])
def test_closed_loop_through_python(steps):
    ref, ref_robot = _run(nengo.Simulator, closed_loop, steps)
    with pytest.warns(UserWarning, match="runs on the host every time step"):
        out, robot = _run(nengojax.Simulator, closed_loop, steps)
    # the controller sees its own effect: the robot ends near the target 0.5
    assert abs(ref_robot.x - 0.5) < 0.1
    assert abs(robot.x - ref_robot.x) < 5e-3
    np.testing.assert_allclose(out["sensor"], ref["sensor"], atol=5e-3)
    np.testing.assert_allclose(out["ens"], ref["ens"], atol=5e-3)


def test_two_closed_loops_in_one_process_each_call_their_own_functions():
    # both networks' programs are the same program (their host table is an
    # argument): each must still call its own robot, step for step
    ref, ref_robot = _run(nengo.Simulator, closed_loop, [300])
    loops = [closed_loop() for _ in range(2)]
    with pytest.warns(UserWarning, match="runs on the host every time step"):
        sims = [nengojax.Simulator(net, progress_bar=False) for net, _, _ in loops]
    for _ in range(3):  # interleaved
        for sim in sims:
            sim.run_steps(100)
    for sim, (_, probes, robot) in zip(sims, loops, strict=True):
        assert abs(robot.x - ref_robot.x) < 5e-3
        np.testing.assert_allclose(sim.data[probes["sensor"]], ref["sensor"], atol=5e-3)
        sim.close()


def test_host_table_goes_with_its_network():
    import gc

    from nengojax.ops import host_target

    net, _, _ = closed_loop()
    with pytest.warns(UserWarning, match="runs on the host"):
        sim = nengojax.Simulator(net, progress_bar=False)
    with sim:
        sim.run_steps(5)
    handle = sim.compiled.host_table.handle
    assert handle in host_target._tables
    del sim
    gc.collect()
    assert handle not in host_target._tables


def test_pure_functions_of_time_stay_ahead_of_the_run_in_a_closed_loop():
    # nobody can tell when a pure function is called: with Python in the step,
    # only the sensor (a method reading the robot) is called there
    def make():
        net, probes, robot = closed_loop()
        with net:
            wave = nengo.Node(np.sin)
            ramp = nengo.Node(lambda t: 2 * t)
            ens = nengo.Ensemble(30, 2)
            nengo.Connection(wave, ens[0])
            nengo.Connection(ramp, ens[1])
            probes.update(wave=nengo.Probe(wave), pair=nengo.Probe(ens, synapse=0.01))
        return net, probes, (robot, wave, ramp, net.nodes[0])

    ref, _ = _run(nengo.Simulator, make, [300])
    net, probes, (robot, wave, ramp, sensor) = make()
    with pytest.warns(UserWarning, match="runs on the host every time step"):
        sim = nengojax.Simulator(net, progress_bar=False)
    with sim:
        sim.run_steps(300)
        live = sim.compiled.live_keys
        assert sim.compiled.key(sensor) in live
        assert sim.compiled.key(wave) not in live and sim.compiled.key(ramp) not in live
        for name in ("sensor", "wave", "pair"):
            np.testing.assert_allclose(sim.data[probes[name]], ref[name], atol=5e-3)


def test_data_replaces_a_node_function_without_calling_it():
    calls = []
    with nengo.Network(seed=4) as net:
        inp = nengo.Node(lambda t: calls.append(t) or np.sin(t))
        p = nengo.Probe(inp)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        n_before = len(calls)
        sim.run_steps(10, data={inp: np.ones((1, 10, 1))})
        assert len(calls) == n_before  # data given: the function is not called
        np.testing.assert_array_equal(sim.data[p], np.ones((10, 1)))
        sim.run_steps(5)
        assert len(calls) == n_before + 5  # the next steps call it, once each


@pytest.fixture
def io_callback_path(monkeypatch):
    """``force()`` lowers host calls from then on as on a GPU or TPU, through
    ``io_callback``, on this CPU; returns the list of call sites so lowered.

    The project's tests run on CPU, where host calls go through nengojax's FFI
    target; this runs the other path with the same models.
    """
    from nengojax.ops import context, hostcall

    sites = []

    def force():
        init = context.LoweringContext.__init__

        def on_other_backend(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.platform = "io_callback"  # no lowering registered for it: the general ones

        def counted(fn, *args, **kwargs):
            sites.append(fn)
            return jax_io_callback(fn, *args, **kwargs)

        jax_io_callback = hostcall.io_callback
        monkeypatch.setattr(context.LoweringContext, "__init__", on_other_backend)
        monkeypatch.setattr(hostcall, "io_callback", counted)
        return sites

    return force


def vocabulary_in_a_loop():
    """`growing_vocabulary` with a Node taking input: its inputs then run in the
    step (host calls), not ahead of the run."""
    net, probes, order = growing_vocabulary()
    seen = []
    with net:
        sink = nengo.Node(lambda t, x: seen.append(x.copy()), size_in=4, size_out=0)
        nengo.Connection(net.ensembles[0], sink)
    return net, probes, (order, seen)


@pytest.mark.parametrize("make", [vocabulary_in_a_loop, closed_loop])
def test_io_callback_path_calls_user_code_as_the_ffi_path_does(make, io_callback_path):
    ffi, ffi_extra = _run(nengojax.Simulator, make, [1] * 5 + [45])
    sites = io_callback_path()
    out, extra = _run(nengojax.Simulator, make, [1] * 5 + [45])
    assert sites  # the user's functions ran through io_callback
    for key, ref in ffi.items():
        np.testing.assert_array_equal(out[key], ref, err_msg=key)
    if make is vocabulary_in_a_loop:
        (order, seen), (ffi_order, ffi_seen) = extra, ffi_extra
        assert order == ffi_order == ["RED", "CIRCLE", "BLUE", "SQUARE"]
        assert len(seen) == len(ffi_seen) == 50
        np.testing.assert_array_equal(seen, ffi_seen)
    if make is closed_loop:
        assert extra.x == ffi_extra.x


def test_io_callback_path_reraises_the_users_exception_and_keeps_the_steps_before(
    io_callback_path,
):
    class Broken(Exception):
        pass

    def fail_at_step_8(t, x):
        if t > 0.0075:
            raise Broken("motor failed")

    with nengo.Network(seed=5) as net:
        sensor = nengo.Node(np.sin)
        motor = nengo.Node(fail_at_step_8, size_in=1, size_out=0)
        nengo.Connection(sensor, motor, synapse=None)
        p = nengo.Probe(sensor)
    sites = io_callback_path()
    with pytest.warns(UserWarning, match="runs on the host"):
        sim = nengojax.Simulator(net, progress_bar=False)
    with sim:
        with pytest.raises(Broken, match="motor failed"):
            sim.run_steps(20)
        assert sites
        assert sim.n_steps == 7
        np.testing.assert_allclose(sim.data[p][:, 0], np.sin(0.001 * np.arange(1, 8)), rtol=1e-6)
