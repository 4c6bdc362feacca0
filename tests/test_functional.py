"""The pure functional API: compile, init_params/init_state, step/run, jit/vmap/grad."""

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, ValidationError

import nengojax


def _net(neuron_type=None):
    neuron_type = nengo.LIFRate() if neuron_type is None else neuron_type
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(lambda t: np.sin(10 * t), label="inp")
        a = nengo.Ensemble(30, 1, neuron_type=neuron_type, label="a")
        b = nengo.Ensemble(30, 1, neuron_type=neuron_type, label="b")
        nengo.Connection(inp, a)
        conn = nengo.Connection(a, b, function=np.square)
        p = nengo.Probe(b, synapse=0.01)
    return net, inp, a, conn, p


def test_run_matches_simulator_and_nengo():
    net, _, _, _, p = _net()
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    state, probes = model.run(params, state, 200)
    out = np.asarray(probes[model.key(p)])
    assert out.shape == (200, 1)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    np.testing.assert_allclose(out, ref.data[p], atol=2e-5)
    # continuing from the returned state equals one long run
    state2, probes2 = model.run(params, state, 100)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(300)
    np.testing.assert_allclose(np.asarray(probes2[model.key(p)]), ref.data[p][200:], atol=2e-5)


def test_step_equals_run():
    net, _, _, _, p = _net()
    model = nengojax.compile(net)
    params = model.init_params()
    state = model.init_state()
    outs = []
    for _ in range(5):
        state, probes = model.step(params, state)
        outs.append(np.asarray(probes[model.key(p)]))
    _, probes = model.run(params, model.init_state(), 5)
    np.testing.assert_allclose(np.stack(outs), probes[model.key(p)], atol=1e-7)


def test_params_and_keys():
    net, inp, a, conn, p = _net()
    model = nengojax.compile(net)
    params = model.init_params()
    assert model.key(a, "encoders") in params
    assert model.key(a.neurons, "bias") in params
    assert model.key(conn, "weights") in params
    with nengo.Simulator(net, progress_bar=False) as ref:
        np.testing.assert_allclose(
            params[model.key(a.neurons, "bias")], ref.data[a].bias, rtol=1e-6
        )
        np.testing.assert_allclose(
            params[model.key(a, "encoders")], ref.data[a].scaled_encoders, rtol=1e-6
        )
    # keys are the same for a second compile of the same network
    model2 = nengojax.compile(net)
    assert sorted(model2.init_params()) == sorted(params)
    assert model2.key(p) == model.key(p)
    with pytest.raises(ValidationError, match="not part of the compiled network"):
        model.key(nengo.Ensemble(5, 1, add_to_container=False))


def test_params_change_the_output():
    net, _, a, _, p = _net()
    model = nengojax.compile(net)
    params = model.init_params()
    key = model.key(a.neurons, "bias")
    _, base = model.run(params, model.init_state(), 50)
    params = dict(params, **{key: params[key] + 1.0})
    _, shifted = model.run(params, model.init_state(), 50)
    assert not np.allclose(base[model.key(p)], shifted[model.key(p)])


def test_jit_of_run():
    net, _, _, _, p = _net()
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    run = jax.jit(lambda prm, st: model.run(prm, st, 100))
    _, jitted = run(params, state)
    _, plain = model.run(params, state, 100)
    # inside a user's jit the run compiles with the user's XLA options, not
    # nengojax's (`runtime.xla_options`): equal up to float32 round-off
    np.testing.assert_allclose(jitted[model.key(p)], plain[model.key(p)], rtol=2e-6, atol=1e-7)


def test_vmap_over_bias_equals_separate_runs():
    net, _, a, _, p = _net(nengo.LIF())
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    key = model.key(a.neurons, "bias")
    offsets = jnp.linspace(-1, 1, 16)
    biases = params[key][None, :] + offsets[:, None]

    def run_with_bias(bias):
        return model.run(dict(params, **{key: bias}), state, 100)[1][model.key(p)]

    swept = jax.jit(jax.vmap(run_with_bias))(biases)
    assert swept.shape == (16, 100, 1)
    for i in range(16):
        single = model.run(dict(params, **{key: biases[i]}), state, 100)[1][model.key(p)]
        np.testing.assert_allclose(swept[i], single, atol=1e-6)
    assert not np.allclose(swept[0], swept[-1])


def test_grad_matches_finite_differences():
    jax.config.update("jax_enable_x64", True)
    try:
        net, _, a, conn, p = _net(nengo.LIFRate())
        model = nengojax.compile(net, dtype="float64")
        params, state = model.init_params(), model.init_state()
        target = jnp.linspace(0, 0.5, 60)[:, None]

        def loss(prm):
            _, probes = model.run(prm, state, 60)
            return jnp.mean((probes[model.key(p)] - target) ** 2)

        grads = jax.grad(loss)(params)
        rng = np.random.RandomState(0)
        for name in [model.key(a.neurons, "bias"), model.key(conn, "weights")]:
            g = np.asarray(grads[name])
            assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
            direction = rng.normal(size=g.shape)
            eps = 1e-8  # small: LIFRate is steep just above threshold
            plus = dict(params, **{name: params[name] + eps * direction})
            minus = dict(params, **{name: params[name] - eps * direction})
            fd = (loss(plus) - loss(minus)) / (2 * eps)
            np.testing.assert_allclose(np.sum(g * direction), fd, rtol=1e-4)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_batched_state_and_inputs():
    net, inp, _, _, p = _net()
    model = nengojax.compile(net)
    params = model.init_params()
    state = model.init_state(minibatch_size=2)
    x = np.stack([np.full((40, 1), 0.5), np.full((40, 1), -0.5)])
    _, probes = model.run(params, state, 40, inputs={model.key(inp): x})
    out = probes[model.key(p)]
    assert out.shape == (2, 40, 1)
    for i in range(2):
        _, single = model.run(params, model.init_state(), 40, inputs={inp: x[i]})
        np.testing.assert_allclose(out[i], single[model.key(p)], atol=1e-6)


def test_bad_inputs():
    net, inp, a, _, _ = _net()
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    with pytest.raises(ValidationError, match="expected shape"):
        model.run(params, state, 10, inputs={inp: np.zeros((5, 1))})
    with pytest.raises(ValidationError, match="not an input Node"):
        model.run(params, state, 10, inputs={"nope": np.zeros((10, 1))})
    with pytest.raises(ValidationError, match="minibatch_size"):
        model.init_state(minibatch_size=0)


def test_unknown_operator_raises_build_error():
    # no JAX lowering and no NumPy make_step either (one with make_step runs on
    # the host: tests/test_compiler.py)
    class MyOp(nengo.builder.Operator):
        def __init__(self, sig):
            super().__init__(tag="my special op")
            self.sets, self.incs, self.reads, self.updates = [sig], [], [], []

    with nengo.Network() as net:
        nengo.Ensemble(5, 1)
    model = nengo.builder.Model(dt=0.001)
    model.build(net)
    model.add_op(MyOp(nengo.builder.Signal(np.zeros(2), name="mysig")))
    with pytest.raises(BuildError, match="MyOp.*my special op"):
        nengojax.compile(None, model=model)


def test_register_lowering_for_a_new_operator():
    class Double(nengo.builder.Operator):
        def __init__(self, x, y):
            super().__init__(tag="double")
            self.sets, self.incs, self.reads, self.updates = [], [y], [x], []

        def make_step(self, signals, dt, rng):
            x, y = signals[self.reads[0]], signals[self.incs[0]]

            def step():
                y[...] += 2 * x

            return step

    @nengojax.register_lowering(Double)
    def lower_double(op, ctx):
        def apply(env):
            env.inc(op.incs[0], 2 * env.read(op.reads[0]))

        return apply

    with nengo.Network() as net:
        u = nengo.Node([0.25, 0.5])
        v = nengo.Node(size_in=2)
        p = nengo.Probe(v)
    model = nengo.builder.Model(dt=0.001)
    model.build(net)
    model.add_op(Double(model.sig[u]["out"], model.sig[v]["in"]))
    with nengojax.Simulator(None, model=model) as sim:
        sim.run_steps(3)
    with nengo.Simulator(None, model=model) as ref:
        ref.run_steps(3)
    np.testing.assert_allclose(sim.data[p], ref.data[p])
    np.testing.assert_allclose(sim.data[p][-1], [0.5, 1.0])


def _host_net():
    """A network whose step calls the host (a Python Node with input)."""
    with nengo.Network(seed=2) as net:
        u = nengo.Node(np.sin)
        ens = nengo.Ensemble(30, 1)
        nengo.Connection(u, ens)
        shift = nengo.Node(lambda t, x: x + 1, size_in=1)
        nengo.Connection(ens, shift)
        nengo.Probe(shift, synapse=0.01)
        nengo.Probe(ens.neurons)
    return net


@pytest.mark.parametrize("batch", [None, 3])
@pytest.mark.parametrize("make", [_net, _host_net], ids=["traced", "host"])
def test_run_chunk_equals_run_with_n_active(make, batch):
    """The Simulator's loop over the active steps gives what a scan with idle
    steps gives: the same state, the same probe rows, zeros past them."""
    net = make()
    model = nengojax.compile(net[0] if isinstance(net, tuple) else net)
    params, state = model.init_params(), model.init_state(batch)
    final, probes = model.run(params, state, 64, n_active=40)
    model.clear_host_cache()
    host = model.host_inputs(state, 40, pad_to=64)
    final2, probes2 = model.run_chunk(params, state, 64, 40, None, host)
    for key in probes:
        np.testing.assert_allclose(probes2[key], probes[key], rtol=1e-6, atol=1e-7)
        rows = probes2[key][:, 40:] if batch else probes2[key][40:]
        assert not np.any(np.asarray(rows))
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), final2, final
    )


def test_run_with_n_active_stays_differentiable():
    model = nengojax.compile(_net()[0])
    params, state = model.init_params(), model.init_state()
    key = next(k for k in params if k.endswith("bias"))

    def loss(bias):
        _, probes = model.run({**params, key: bias}, state, 16, n_active=10)
        return sum(jnp.sum(v) for v in probes.values())

    grad = jax.grad(loss)(params[key])
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0)


@pytest.mark.parametrize("batch", [None, 4])
def test_one_step_runs_without_a_loop(batch):
    """A one-step run (NengoDL-style one-step training examples) calls the step
    directly: XLA's CPU backend gives convolutions inside a loop slow kernels.
    Its results and gradients are those of the first step of a longer run."""
    net, _, a, _, _ = _net()
    with net:
        p = nengo.Probe(a.neurons, synapse=None)
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state(batch)
    key = model.key(a.neurons, "bias")

    def first_row(bias, n_steps):
        final, probes = model.run({**params, key: bias}, state, n_steps)
        out = probes[model.key(p)]
        return out[:, 0] if batch else out[0]

    one = jax.jit(lambda b: first_row(b, 1))
    assert "while" not in one.lower(params[key]).as_text()
    np.testing.assert_array_equal(one(params[key]), first_row(params[key], 3))

    def loss(bias, n_steps):
        return jnp.sum(first_row(bias, n_steps) ** 2)

    g1 = jax.grad(loss)(params[key], 1)
    np.testing.assert_allclose(g1, jax.grad(loss)(params[key], 3), rtol=1e-6, atol=1e-9)
    assert np.any(np.asarray(g1) != 0)
