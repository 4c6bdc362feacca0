"""Unit tests of the compiler and lowering parts: layout, access, host values, registry."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import pytest
from nengo.builder import Model, Operator, Signal
from nengo.builder.operator import Copy, DotInc, Reset
from nengo.exceptions import BuildError

import nengojax
from nengojax.compiler import Program
from nengojax.compiler.host import HostValues, stream_seed
from nengojax.compiler.layout import SignalLayout
from nengojax.ops.access import MergedAccess
from nengojax.ops.env import StepEnv
from nengojax.ops.registry import Registry, get_lowering, get_neuron_step


def _ops():
    """A hand-built model: a constant matrix times a state vector into a scratch sum."""
    A = Signal(np.arange(6.0).reshape(2, 3), name="A", readonly=True)
    x = Signal(np.ones(3), name="x")
    y = Signal(np.zeros(2), name="y")
    big = Signal(np.arange(10.0), name="big")
    ops = [Reset(y), DotInc(A, x, y), Copy(y, x[:2], inc=True), Copy(big[::2], big[1::2])]
    return ops, A, x, y, big


def test_layout_homes_and_views():
    ops, A, x, y, big = _ops()
    layout = SignalLayout(ops, np.float32, np.int32)
    kind = {b.signal.name: b.kind for b in layout.bases}
    # A is never written: a constant; x is read and then incremented: carried state;
    # y is reset before any read: scratch; big is read and written: state
    assert kind == {"A": "const", "x": "state", "y": "scratch", "big": "state"}
    assert all(b.init.dtype == np.float32 for b in layout.bases)
    v = layout.view(x[:2])
    assert (v.start, v.stop, v.index, v.full) == (0, 2, None, False)
    g = layout.view(big[1::2])
    np.testing.assert_array_equal(g.index, [1, 3, 5, 7, 9])
    assert layout.view(A).full


def test_layout_decides_params():
    with nengo.Network(seed=1) as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(10, 1)
        conn = nengo.Connection(a, b)
    program = Program(net)
    params = program.params
    keys = {
        program.key(a, "encoders"),
        program.key(a.neurons, "bias"),
        program.key(conn, "weights"),
    }
    assert keys <= set(params)
    for key in keys:
        assert program.layout.bases[params[key].base].kind == "param"
    model = Model(dt=0.001)
    model.build(net)
    np.testing.assert_allclose(
        params[program.key(a.neurons, "bias")].init, model.params[a].bias, rtol=1e-6
    )


def test_merged_access_reads_and_writes_in_order():
    ops, A, x, y, big = _ops()
    layout = SignalLayout(ops, np.float32, np.int32)
    sigs = [big[7:9], x, big[::3]]
    access = MergedAccess(layout, sigs)
    values = {b.index: jnp.asarray(b.init) for b in layout.bases}
    env = StepEnv(layout, values, {}, {}, None, 0.001)
    expect = np.concatenate([np.arange(10.0)[7:9], np.ones(3), np.arange(10.0)[::3]])
    np.testing.assert_array_equal(access.read(env), expect)
    access.write(env, jnp.arange(access.size, dtype=jnp.float32), inc=True)
    np.testing.assert_array_equal(access.read(env)[:5], expect[:5] + np.arange(5))
    assert access.size == 9


def test_host_values_equal_nengo_and_streams():
    with nengo.Network(seed=2) as net:
        f = nengo.Node(lambda t: [np.sin(10 * t), t])
        w = nengo.Node(nengo.processes.WhiteNoise(seed=None))
        pf, pw = nengo.Probe(f), nengo.Probe(w)
    program = Program(net, seed=7)
    host = HostValues(program.host_sources, program.step_order, program.dt, np.float64)
    vals = host.values(0, 20, 7, 0)
    with nengo.Simulator(net, seed=7, progress_bar=False) as ref:
        ref.run_steps(20)
    np.testing.assert_allclose(vals[program.key(f)], ref.data[pf])
    noise = next(k for k in vals if k != program.key(f))
    np.testing.assert_allclose(vals[noise], ref.data[pw])
    # a minibatch: item 0 is nengo's stream, item 1 another one; a later window
    # gives the same values as the first call
    batch = host.values(0, 20, 7, np.arange(2))
    np.testing.assert_allclose(batch[noise][0], ref.data[pw])
    assert not np.allclose(batch[noise][1], ref.data[pw])
    np.testing.assert_allclose(host.values(5, 10, 7, 0)[noise], ref.data[pw][5:15])
    assert host.values(0, 5, 7, 0, skip={program.key(f)}).keys() == {noise}
    assert stream_seed(7, 0) == 7 and stream_seed(7, 1) != 7


class _Op(Operator):
    def __init__(self):
        super().__init__()
        self.sets, self.incs, self.reads, self.updates = [], [], [], []

    def make_step(self, signals, dt, rng):
        return lambda: None


class _SameOp(_Op):
    """Inherits make_step: served by _Op's entry."""


class _OtherOp(_Op):
    def make_step(self, signals, dt, rng):  # computes something else
        return lambda: None


def test_registry_lookup_rule():
    reg = Registry("lowering", "make_step")

    def general(op, ctx):
        return None

    def on_gpu(op, ctx):
        return None

    reg.register(_Op, general)
    reg.register(_Op, on_gpu, platform="gpu")
    assert reg.lookup(_Op) is general
    assert reg.lookup(_SameOp) is general
    assert reg.lookup(_OtherOp) is None
    assert reg.lookup(_SameOp, "gpu") is on_gpu
    assert reg.lookup(_SameOp, "cpu") is general
    with pytest.warns(UserWarning, match="replaced"):
        reg.register(_Op, on_gpu)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.register(_Op, on_gpu)  # the same function again: no warning
    reg.unregister(_Op, "gpu")
    assert reg.lookup(_SameOp, "gpu") is on_gpu  # the general entry is now on_gpu


def test_global_registries():
    with pytest.raises(BuildError, match="no lowering is registered"):
        get_lowering(_OtherOp())
    assert get_neuron_step(nengo.LIF()) is not None
    assert get_neuron_step(nengojax.neurons.SpikingLeakyReLU()) is not None

    class OwnStep(nengo.LIFRate):
        def step(self, dt, J, output):
            output[...] = 0

    assert get_neuron_step(OwnStep()) is None


class _Square(Operator):
    """``y = x ** 2`` (an operator nengojax has no lowering for)."""

    def __init__(self, x, y):
        super().__init__()
        self.sets, self.incs, self.reads, self.updates = [y], [], [x], []

    def make_step(self, signals, dt, rng):
        x, y = signals[self.reads[0]], signals[self.sets[0]]

        def step():
            y[...] = x**2

        return step


class _Squarer(nengo.Node):
    def __init__(self):
        super().__init__(output=None, size_in=1)


@nengo.builder.Builder.register(_Squarer)
def _build_squarer(model, node):
    sig_in = Signal(shape=1, name="sq.in")
    sig_out = Signal(shape=1, name="sq.out")
    model.add_op(Reset(sig_in))
    model.add_op(_Square(sig_in, sig_out))
    model.sig[node]["in"], model.sig[node]["out"] = sig_in, sig_out
    model.params[node] = None


@pytest.mark.parametrize("minibatch_size", [None, 2])
def test_operator_without_lowering_runs_its_numpy_step(minibatch_size):
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(10 * t))
        sq = _Squarer()
        nengo.Connection(stim, sq, synapse=None)
        p = nengo.Probe(sq)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(20)
    with pytest.warns(UserWarning, match="NumPy make_step runs on the host"):
        sim = nengojax.Simulator(net, minibatch_size=minibatch_size, progress_bar=False)
    with sim:
        sim.run_steps(20)
        out = sim.data[p] if minibatch_size is None else sim.data[p][1]
    np.testing.assert_allclose(out, ref.data[p], rtol=1e-6, atol=1e-7)


def test_host_call_arguments_round_trip_through_one_byte_array():
    import jax.numpy as jnp

    from nengojax.ops.hostcall import _pack, _unpack

    values = [
        np.int32(7),
        np.array([True, False, True]),
        np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,
        np.array([-1, 2**31 - 1], dtype=np.int32),
        np.array([3, 0], dtype=np.uint32),
    ]
    packed, specs = _pack([jnp.asarray(v) for v in values])
    assert packed.dtype == jnp.uint8 and packed.ndim == 1
    out = _unpack(np.asarray(packed), specs)
    for v, o in zip(values, out, strict=True):
        assert o.dtype == np.asarray(v).dtype and o.shape == np.shape(v)
        np.testing.assert_array_equal(o, v)


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**31, 2**32 - 1])
def test_prng_key_written_on_the_host_equals_jax_prngkey(seed):
    import jax

    from nengojax.runtime.state import prng_key

    np.testing.assert_array_equal(
        np.asarray(prng_key(seed)), np.asarray(jax.random.PRNGKey(np.uint32(seed)))
    )


def test_a_large_param_is_held_once_on_the_host_and_once_on_the_device():
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(60, 1, neuron_type=nengo.RectifiedLinear())
        b = nengo.Ensemble(40, 1, neuron_type=nengo.RectifiedLinear())
        w = np.random.RandomState(0).uniform(-0.1, 0.1, (40, 60))
        conn = nengo.Connection(a.neurons, b.neurons, transform=w)
        p = nengo.Probe(b.neurons)
    model = nengojax.compile(net)
    key = model.key(conn, "weights")
    program = model.program
    param = program.params[key]
    base = program.layout.bases[param.base]
    assert np.shares_memory(param.init, base.init)  # a view, not a copy
    np.testing.assert_array_equal(param.init, w.astype(np.float32))
    params = model.init_params()
    packed = model.packer.pack_on_host(params)
    assert packed[param.base] is params[key]  # the whole base: passed as it is
    assert base.key not in model.packer.consts  # no device copy of its initial value
    # the same run with params traced (packed inside the jit) and concrete
    state = model.init_state()
    _, concrete = model.run(params, state, 5)
    _, traced = jax.jit(lambda prm: model.run(prm, state, 5))(params)
    np.testing.assert_allclose(traced[model.key(p)], concrete[model.key(p)], rtol=1e-6)


def test_a_returned_state_changed_in_place_is_checked_again():
    with nengo.Network(seed=0) as net:
        u = nengo.Node(np.sin)
        e = nengo.Ensemble(10, 1)
        nengo.Connection(u, e)
    model = nengojax.compile(net)
    params = model.init_params()
    state, _ = model.run(params, model.init_state(), 3)
    state, _ = model.run(params, state, 2)  # the returned state: trusted as it is
    key = next(iter(state["signals"]))
    state["signals"][key] = jnp.zeros((7, 7))
    with pytest.raises(nengo.exceptions.ValidationError, match="does not come from this network"):
        model.run(params, state, 1)


def test_cpu_params_share_the_read_only_host_copy():
    """A param's device array on a CPU backend uses the compiled network's host
    array (read-only, so neither can change) instead of a second copy."""

    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(300, 1)
        b = nengo.Ensemble(200, 1)
        conn = nengo.Connection(a.neurons, b.neurons, transform=np.ones((200, 300)) * 1e-3)
    model = nengojax.compile(net)
    key = model.program.key(conn, "weights")
    host = model.program.params[key].init
    assert not host.flags.writeable
    with pytest.raises(ValueError):
        host[0] = 1.0
    device = model.init_params()[key]
    np.testing.assert_array_equal(np.asarray(device), host)
    if jax.default_backend() == "cpu":
        assert device.unsafe_buffer_pointer() == host.ctypes.data
