"""Tests of `nengojax.JaxNode` and `nengojax.Layer`."""

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import pytest
from nengo.exceptions import NetworkContextError, ValidationError

import nengojax
from nengojax.jax_node import SimJaxNode

SIMULATORS = [nengo.Simulator, nengojax.Simulator]
SIM_IDS = ["nengo", "nengojax"]


def run(sim_cls, net, steps=20, **kwargs):
    with sim_cls(net, progress_bar=False, **kwargs) as sim:
        sim.run_steps(steps)
    return sim


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)


def mlp_params():
    rng = np.random.RandomState(0)
    return {
        "w1": rng.randn(2, 4).astype(np.float32),
        "b1": rng.randn(4).astype(np.float32),
        "w2": rng.randn(4, 3).astype(np.float32),
    }


def mlp(p, t, x):
    return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]


def mlp_np(p, x):
    return np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]


@pytest.mark.parametrize("sim_cls", SIMULATORS, ids=SIM_IDS)
def test_exp_matches_numpy_node(sim_cls):
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.sin)
        a = nengojax.JaxNode(lambda t, x: jnp.exp(x), shape_in=(1,))
        b = nengo.Node(lambda t, x: np.exp(x), size_in=1)
        nengo.Connection(inp, a, synapse=None)
        nengo.Connection(inp, b, synapse=None)
        pa, pb = nengo.Probe(a), nengo.Probe(b)
    assert (a.size_in, a.size_out, a.shape_out) == (1, 1, (1,))
    sim = run(sim_cls, net)
    np.testing.assert_allclose(sim.data[pa], sim.data[pb], rtol=1e-6)
    np.testing.assert_allclose(sim.data[pa][:, 0], np.exp(np.sin(sim.trange())), rtol=1e-6)


@pytest.mark.parametrize("sim_cls", SIMULATORS, ids=SIM_IDS)
def test_params_mlp(sim_cls):
    p = mlp_params()
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(lambda t: [np.sin(10 * t), np.cos(10 * t)])
        node = nengojax.JaxNode(mlp, shape_in=2, params=p, label="mlp")
        nengo.Connection(inp, node, synapse=None)
        probe = nengo.Probe(node)
    assert node.shape_out == (3,)
    sim = run(sim_cls, net)
    t = sim.trange()[:, None]
    want = mlp_np(p, np.hstack([np.sin(10 * t), np.cos(10 * t)]))
    np.testing.assert_allclose(sim.data[probe], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sim_cls", SIMULATORS, ids=SIM_IDS)
def test_time_only(sim_cls):
    with nengo.Network() as net:
        node = nengojax.JaxNode(lambda t: jnp.stack([jnp.sin(t), t**2]))
        probe = nengo.Probe(node)
    assert (node.size_in, node.size_out) == (0, 2)
    sim = run(sim_cls, net, steps=10)
    t = sim.trange()
    np.testing.assert_allclose(sim.data[probe], np.stack([np.sin(t), t**2], 1), rtol=1e-6)


def test_time_only_data_overrides():
    with nengo.Network() as net:
        node = nengojax.JaxNode(lambda t: jnp.ones(2) * t)
        probe = nengo.Probe(node)
    data = np.arange(10.0).reshape(1, 5, 2)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5, data={node: data})
    np.testing.assert_allclose(sim.data[probe], data[0])


@pytest.mark.parametrize("sim_cls", SIMULATORS, ids=SIM_IDS)
def test_pass_time_false(sim_cls):
    with nengo.Network() as net:
        inp = nengo.Node([0.5, -1.0])
        node = nengojax.JaxNode(lambda x: 2 * x[::-1], shape_in=(2,), pass_time=False)
        const = nengojax.JaxNode(lambda: jnp.full(3, 4.0), pass_time=False)
        nengo.Connection(inp, node, synapse=None)
        probe, pconst = nengo.Probe(node), nengo.Probe(const)
    sim = run(sim_cls, net, steps=3)
    np.testing.assert_allclose(sim.data[probe], [[-2.0, 1.0]] * 3)
    np.testing.assert_allclose(sim.data[pconst], [[4.0] * 3] * 3)


@pytest.mark.parametrize("sim_cls", SIMULATORS, ids=SIM_IDS)
def test_shape_inference_and_reshape(sim_cls):
    with nengo.Network() as net:
        inp = nengo.Node([1.0, 2.0, 3.0, 4.0])
        # x arrives with shape_in; the (2, 3) output is flattened
        node = nengojax.JaxNode(
            lambda x: jnp.concatenate([x.sum(1, keepdims=True)] * 3, 1),
            shape_in=(2, 2),
            pass_time=False,
        )
        scalar = nengojax.JaxNode(lambda t: jnp.sum(t))
        nengo.Connection(inp, node, synapse=None)
        probe, pscalar = nengo.Probe(node), nengo.Probe(scalar)
    assert (node.size_in, node.shape_out, node.size_out) == (4, (2, 3), 6)
    assert (scalar.shape_out, scalar.size_out) == ((), 1)
    sim = run(sim_cls, net, steps=2)
    np.testing.assert_allclose(sim.data[probe][-1], [3, 3, 3, 7, 7, 7])
    np.testing.assert_allclose(sim.data[pscalar][:, 0], sim.trange(), rtol=1e-6)


def test_shape_out_given():
    node_fn = lambda t, x: x * 2  # noqa: E731
    with nengo.Network():
        node = nengojax.JaxNode(node_fn, shape_in=3, shape_out=3)
        one = nengojax.JaxNode(lambda t: t, shape_out=1)  # a scalar fits (1,)
    assert (node.size_out, one.size_out) == (3, 1)


def test_params_function_and_seed():
    def init(key):
        return {"w": jax.random.normal(key, (2,))}

    with nengo.Network() as net:
        a = nengojax.JaxNode(lambda p, t: p["w"] * t, params=init, seed=3)
        b = nengojax.JaxNode(lambda p, t: p["w"] * t, params=init, seed=3)
        c = nengojax.JaxNode(lambda p, t: p["w"] * t, params=init)
    np.testing.assert_array_equal(a.param_tree["w"], b.param_tree["w"])
    np.testing.assert_allclose(c.param_tree["w"], init(jax.random.PRNGKey(0))["w"], rtol=1e-6)
    assert not np.allclose(a.param_tree["w"], c.param_tree["w"])
    params = nengojax.compile(net).init_params()
    key = nengojax.compile(net).key(a, "params/w")
    np.testing.assert_allclose(params[key], a.param_tree["w"], rtol=1e-6)


def test_minibatch_data():
    with nengo.Network() as net:
        inp = nengo.Node(np.zeros(2))
        node = nengojax.JaxNode(lambda t, x: jnp.exp(x) + t, shape_in=(2,))
        nengo.Connection(inp, node, synapse=None)
        probe = nengo.Probe(node)
    data = np.random.RandomState(1).uniform(-1, 1, size=(3, 6, 2))
    with nengojax.Simulator(net, minibatch_size=3, progress_bar=False) as sim:
        sim.run_steps(6, data={inp: data})
    assert sim.data[probe].shape == (3, 6, 2)
    want = np.exp(data) + sim.trange()[None, :, None]
    np.testing.assert_allclose(sim.data[probe], want, rtol=1e-6)


def test_param_keys_and_op():
    p = mlp_params()
    with nengo.Network() as net:
        inp = nengo.Node([0.1, 0.2])
        node = nengojax.JaxNode(mlp, shape_in=2, params=p, label="mlp")
        nengo.Connection(inp, node, synapse=None)
    model = nengojax.compile(net)
    params = model.init_params()
    for name in ("w1", "b1", "w2"):
        key = model.key(node, f"params/{name}")
        assert key in params
        np.testing.assert_allclose(params[key], p[name])
    assert any(isinstance(op, SimJaxNode) for op in model.step_order)
    # a bare array as params is one leaf named "params"
    with nengo.Network() as net2:
        bare = nengojax.JaxNode(lambda w, t: w * t, params=np.ones(2))
    assert nengojax.compile(net2).key(bare, "params") in nengojax.compile(net2).init_params()


def test_grad_matches_finite_differences(x64):
    with nengo.Network() as net:
        inp = nengo.Node(lambda t: [np.sin(20 * t), np.cos(20 * t)])
        node = nengojax.JaxNode(mlp, shape_in=2, params=mlp_params())
        nengo.Connection(inp, node, synapse=None)
        probe = nengo.Probe(node, synapse=0.005)
    model = nengojax.compile(net, dtype="float64")
    params, state = model.init_params(), model.init_state()
    key, pkey = model.key(node, "params/w1"), model.key(probe)
    assert params[key].dtype == jnp.float64

    def loss(w):
        _, probes = model.run({**params, key: w}, state, 15)
        return jnp.sum(probes[pkey] ** 2)

    w = params[key]
    grad = jax.grad(loss)(w)
    assert np.all(np.isfinite(grad))
    eps = 1e-6
    fd = np.zeros(w.shape)
    for idx in np.ndindex(*w.shape):
        step = np.zeros(w.shape)
        step[idx] = eps
        fd[idx] = (loss(w + step) - loss(w - step)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_vmap_over_params():
    with nengo.Network() as net:
        inp = nengo.Node(lambda t: [np.sin(20 * t), np.cos(20 * t)])
        node = nengojax.JaxNode(mlp, shape_in=2, params=mlp_params())
        nengo.Connection(inp, node, synapse=None)
        probe = nengo.Probe(node)
    model = nengojax.compile(net)
    params, state = model.init_params(), model.init_state()
    key, pkey = model.key(node, "params/w2"), model.key(probe)
    stacked = jnp.stack([params[key] * s for s in (0.5, 1.0, 2.0)])

    def run_with(w):
        return model.run({**params, key: w}, state, 8)[1][pkey]

    batched = jax.vmap(run_with)(stacked)
    for i in range(3):
        np.testing.assert_allclose(batched[i], run_with(stacked[i]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(batched[2], 4 * batched[0], rtol=1e-5, atol=1e-6)


def test_network_copy():
    with nengo.Network() as net:
        inp = nengo.Node([1.0])
        node = nengojax.JaxNode(lambda p, t, x: p * x, shape_in=1, params=np.array([3.0]))
        nengo.Connection(inp, node, synapse=None)
        nengo.Probe(node)
    net2 = net.copy()
    sim = run(nengojax.Simulator, net2, steps=2)
    np.testing.assert_allclose(sim.data[net2.probes[0]], [[3.0], [3.0]])


# --- Layer ---------------------------------------------------------------------------


@pytest.mark.parametrize("sim_cls", SIMULATORS, ids=SIM_IDS)
def test_layer_function(sim_cls):
    transform = np.array([[1.0, 2.0], [0.0, -1.0], [0.5, 0.5]])
    with nengo.Network() as net:
        inp = nengo.Node([0.3, -0.2])
        out = nengojax.Layer(jnp.tanh)(inp, transform=transform)
        out2 = nengojax.Layer(lambda p, x: p * x)(out, shape_in=(3,), params=np.float32(2.0))
        probe, probe2 = nengo.Probe(out), nengo.Probe(out2)
    assert isinstance(out, nengojax.JaxNode)
    assert (out.size_in, out.size_out, out.pass_time) == (3, 3, False)
    sim = run(sim_cls, net, steps=2)
    want = np.tanh(transform @ [0.3, -0.2])
    np.testing.assert_allclose(sim.data[probe][-1], want, rtol=1e-6)
    np.testing.assert_allclose(sim.data[probe2][-1], 2 * want, rtol=1e-6)


def _layer_vs_hand_built(neuron_type, transform, n_in, steps=200):
    layer_type = neuron_type
    if isinstance(neuron_type, type):
        neuron_type = neuron_type()
    with nengo.Network(seed=1) as layer_net:
        inp = nengo.Node(np.linspace(0.5, 1.5, n_in) * 20)
        neurons = nengojax.Layer(layer_type)(inp, transform=transform)
        p_layer = nengo.Probe(neurons)
    with nengo.Network(seed=1) as hand_net:
        inp = nengo.Node(np.linspace(0.5, 1.5, n_in) * 20)
        ens = nengo.Ensemble(neurons.size_in, 1, neuron_type=neuron_type)
        nengo.Connection(inp, ens.neurons, transform=transform, synapse=None)
        p_hand = nengo.Probe(ens.neurons)
    assert isinstance(neurons, nengo.ensemble.Neurons)
    return run(nengojax.Simulator, layer_net, steps).data[p_layer], run(
        nengo.Simulator, hand_net, steps
    ).data[p_hand]


def test_layer_relu_matches_hand_built():
    transform = np.random.RandomState(2).uniform(-1, 1, size=(5, 3))
    got, want = _layer_vs_hand_built(nengo.RectifiedLinear(), transform, 3, steps=5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # nengo's max_rates
def test_layer_lif_matches_hand_built():
    got, want = _layer_vs_hand_built(nengo.LIF, 1, 4)
    # float32 vs float64 may move a spike by one step; counts must agree
    counts_got, counts_want = got.sum(0) * 0.001, want.sum(0) * 0.001
    assert counts_want.min() > 5
    np.testing.assert_allclose(counts_got, counts_want, atol=1)


def test_layer_follows_nengo_dl_semantics():
    """Gains and biases from the config; the input connection frozen; JaxNode
    params trained unless the node itself says otherwise."""
    with nengo.Network(seed=0) as net:
        net.config[nengo.Ensemble].max_rates = nengo.dists.Choice([100])
        net.config[nengo.Ensemble].intercepts = nengo.dists.Choice([0])
        nengojax.configure_settings(trainable=False)
        net.config[nengo.Ensemble].trainable = True
        inp = nengo.Node(np.ones(3))
        hidden, conn = nengojax.Layer(lambda p, x: p * x)(
            inp, params=np.float32(2.0), return_conn=True
        )
        frozen = nengojax.Layer(lambda p, x: p * x)(hidden, params=np.float32(3.0))
        net.config[frozen].trainable = False
        neurons, conn2 = nengojax.Layer(nengo.LIF())(
            frozen, transform=np.ones((4, 3)), return_conn=True
        )
        trained_conn = nengo.Connection(neurons, nengo.Node(size_in=4), transform=np.eye(4) / 2)
        net.config[trained_conn].trainable = True
    with nengojax.Simulator(net, progress_bar=False) as sim:
        ens = neurons.ensemble
        # max_rates 100 at intercept 0 for every neuron, from the config
        want_gain, want_bias = nengo.LIF().gain_bias(np.full(4, 100.0), np.zeros(4))
        np.testing.assert_allclose(sim.data[ens].gain, want_gain, rtol=1e-6)
        np.testing.assert_allclose(sim.data[ens].bias, want_bias, rtol=1e-6)
        keys = nengojax.training.trainable_keys(sim.compiled, net)
    assert net.config[conn].trainable is False and net.config[conn2].trainable is False
    assert sim.compiled.program.key(hidden, "params") in keys  # not frozen by the setting
    assert sim.compiled.program.key(frozen, "params") not in keys
    assert sim.compiled.program.key(conn2, "weights") not in keys
    assert sim.compiled.program.key(trained_conn, "weights") in keys
    assert sim.compiled.program.key(ens.neurons, "bias") in keys


def test_layer_input_connection_can_be_trained():
    with nengo.Network() as net:
        inp = nengo.Node(np.ones(2))
        _, conn = nengojax.Layer(nengo.RectifiedLinear())(
            inp, transform=np.ones((3, 2)), return_conn=True
        )
        net.config[conn].trainable = True
    sim = nengojax.Simulator(net, progress_bar=False)
    assert sim.compiled.program.key(conn, "weights") in nengojax.training.trainable_keys(
        sim.compiled, net
    )
    sim.close()


def test_layer_convolution_transform():
    conv = nengo.Convolution(2, (4, 4, 1), kernel_size=(3, 3), init=np.full((3, 3, 1, 2), 0.1))
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.ones(16))
        neurons = nengojax.Layer(nengo.RectifiedLinear())(
            inp, transform=conv, gain=nengo.dists.Choice([1]), bias=nengo.dists.Choice([0])
        )
        node = nengojax.Layer(lambda x: x.max(axis=(0, 1)))(
            inp, transform=conv, shape_in=conv.output_shape.shape
        )
        probe, pnode = nengo.Probe(neurons), nengo.Probe(node)
    assert neurons.size_in == conv.size_out == 8
    assert node.shape_in == (2, 2, 2) and node.shape_out == (2,)
    sim = run(nengojax.Simulator, net, steps=2)
    np.testing.assert_allclose(sim.data[probe][-1], 0.9, rtol=1e-5)
    np.testing.assert_allclose(sim.data[pnode][-1], [0.9, 0.9], rtol=1e-5)


def test_layer_outside_network():
    with nengo.Network():
        inp = nengo.Node([1.0])
    with pytest.raises(NetworkContextError):
        nengojax.Layer(jnp.tanh)(inp)
    with pytest.raises(ValidationError):
        nengojax.Layer("not a function")


# --- validation ----------------------------------------------------------------------


def _raises(t, x):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(fn=_raises, shape_in=2), "boom"),
        (dict(fn=lambda t, x: x if x[0] > 0 else -x, shape_in=2), "traced"),
        (dict(fn=lambda t, x: x, shape_in=2, shape_out=3), "shape"),
        (dict(fn=lambda t, x: jnp.ones(3, jnp.int32), shape_in=2), "float"),
        (dict(fn=lambda t, x: (x, x), shape_in=2), "one array"),
        (dict(fn=lambda p, t: p * t, params=np.ones(2, dtype=int)), "float arrays"),
        (dict(fn=lambda p, t: p["a"] * t, params={"a": "text"}), "float arrays"),
        (dict(fn=lambda p, t: p * t, params=lambda key: 1 / 0), "params function"),
        (dict(fn=lambda t: t, pass_time=True, params={"a": np.ones(2)}), "traced"),
        (dict(fn=3), "callable"),
    ],
)
def test_validation_errors(kwargs, match):
    with nengo.Network():
        with pytest.raises(ValidationError, match=match) as info:
            nengojax.JaxNode(label="badnode", **kwargs)
    assert "badnode" in str(info.value)


def test_build_time_validation():
    with nengo.Network() as net:
        node = nengojax.JaxNode(lambda p, t: p["w"] * t, params={"w": np.ones(2)}, label="late")
    node.param_tree = {"w": np.ones(2, dtype=int)}
    with pytest.raises(ValidationError, match="late"):
        nengojax.compile(net)
