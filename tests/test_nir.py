"""NIR import/export: graphs simulate as their equations say, round trips are exact."""

import warnings

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, ValidationError

import nengojax
from nengojax.nir import (
    Heaviside,
    Integrator,
    LeakyIntegrator,
    ResetIF,
    ResetLIF,
    from_nir,
    to_nir,
)

nir = pytest.importorskip("nir")

DT = 0.001


# --- a NumPy reference: the graph's equations, discretised as documented --------------


def _conv2d(x, w, b, stride, pad):
    c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho = (h + 2 * pad[0] - kh) // stride[0] + 1
    wo = (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((c_out, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride[0] : i * stride[0] + kh, j * stride[1] : j * stride[1] + kw]
            out[:, i, j] = np.tensordot(w, patch, axes=3)
    return out + b[:, None, None]


def _pool(x, k, s, avg):
    c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = x[:, i * s : i * s + k, j * s : j * s + k].sum(axis=(1, 2))
    return out / (k * k) if avg else out


class _Graph:
    def __init__(self, nodes, edges):
        self.nodes, self.edges = nodes, edges


def flatten(graph, prefix=""):
    """Inline nested graphs: edges to (from) a subgraph go to its Input (Output)."""
    nodes, edges, io = {}, [], {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub = flatten(node, prefix + name + ".")
            nodes.update(sub.nodes)
            edges += sub.edges
            ins = [
                prefix + name + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Input)
            ]
            outs = [
                prefix + name + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Output)
            ]
            io[name] = (ins[0], outs[0])
        else:
            nodes[prefix + name] = node
    for a, b in graph.edges:
        a = io[a][1] if a in io else prefix + a
        b = io[b][0] if b in io else prefix + b
        edges.append((a, b))
    if prefix:  # inner Input/Output nodes pass their input through
        for k, v in list(nodes.items()):
            if isinstance(v, (nir.Input, nir.Output)) and k.startswith(prefix):
                nodes[k] = nir.Scale(np.ones(1))  # only the reference's "Scale by 1" matters
    return _Graph(nodes, edges)


class Reference:
    """Step a flat, feedforward NIR graph with NumPy.

    LIF/IF: exact leak over a step, spike if v > v_threshold, v <- v_reset,
    v starts at v_reset; LI and synaptic currents: nengo's Lowpass (output from
    the previous step); I: v <- v + dt r I; spikes are 1 / dt.
    """

    def __init__(self, graph, dt=DT):
        self.g, self.dt = flatten(graph), dt
        self.state = {}
        self.prev = {}
        self.order = []
        names = list(self.g.nodes)
        srcs = {k: [a for a, b in self.g.edges if b == k] for k in names}
        while len(self.order) < len(names):
            ready = [
                k for k in names if k not in self.order and all(s in self.order for s in srcs[k])
            ]
            if not ready:  # a cycle: the first node fed from outside it goes first
                rest = [k for k in names if k not in self.order]
                ready = [k for k in rest if any(s in self.order for s in srcs[k])] or rest
            self.order.append(ready[0])

    def step(self, inputs):
        out = {}
        dt = self.dt
        for k in self.order:
            node = self.g.nodes[k]
            srcs = [a for a, b in self.g.edges if b == k]
            # an edge from a node not computed yet in this step closes a cycle:
            # it carries the previous step's value
            vals = [out[s] if s in out else self.prev.get(s) for s in srcs]
            vals = [v.reshape(-1) for v in vals if v is not None]
            x = sum(vals) if vals else None
            st = self.state.setdefault(k, {})
            if isinstance(node, nir.Input):
                y = np.asarray(inputs[k], dtype=float)
            elif isinstance(node, nir.Output):
                y = x
            elif isinstance(node, nir.Affine):
                y = node.weight @ x + node.bias
            elif isinstance(node, nir.Linear):
                y = node.weight @ x
            elif isinstance(node, nir.Scale):
                y = node.scale.reshape(-1) * x
            elif isinstance(node, nir.Flatten):
                y = x
            elif isinstance(node, nir.Conv2d):
                shape = (node.weight.shape[1], *node.input_shape)
                y = _conv2d(x.reshape(shape), node.weight, node.bias, node.stride, node.padding)
            elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
                shape = st.setdefault("shape", getattr(self, "pool_shape", {}).get(k))
                y = _pool(
                    x.reshape(shape),
                    int(node.kernel_size[0]),
                    int(node.stride[0]),
                    isinstance(node, nir.AvgPool2d),
                )
            elif isinstance(node, nir.Threshold):
                y = (x > node.threshold.reshape(-1)) / dt
            elif isinstance(node, nir.Delay):
                n = np.round(node.delay.reshape(-1) / dt).astype(int)
                buf = st.setdefault("buf", np.zeros((n.max() + 1, x.size)))
                buf = np.roll(buf, 1, axis=0)
                buf[0] = x
                st["buf"] = buf
                y = buf[n, np.arange(x.size)]
            elif isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
                thr, reset = node.v_threshold.reshape(-1), node.v_reset.reshape(-1)
                v = st.setdefault("v", reset.astype(float).copy())
                current = x
                if isinstance(node, nir.CubaLIF):
                    c = st.setdefault("c", np.zeros_like(v))
                    a = np.exp(-dt / node.tau_syn.reshape(-1))
                    drive = node.w_in.reshape(-1) * x
                    current = c
                    st["c"] = drive + (c - drive) * a
                r = node.r.reshape(-1)
                if isinstance(node, nir.IF):
                    v = v + dt * r * current
                else:
                    tau = (node.tau if isinstance(node, nir.LIF) else node.tau_mem).reshape(-1)
                    target = node.v_leak.reshape(-1) + r * current
                    v = target + (v - target) * np.exp(-dt / tau)
                spiked = v > thr
                v = np.where(spiked, reset, v)
                st["v"] = v
                y = spiked / dt
            elif isinstance(node, (nir.LI, nir.CubaLI)):
                v = st.setdefault("v", np.zeros(x.size))
                current = x
                if isinstance(node, nir.CubaLI):
                    c = st.setdefault("c", np.zeros_like(v))
                    a = np.exp(-dt / node.tau_syn.reshape(-1))
                    drive = node.w_in.reshape(-1) * x
                    current = c
                    st["c"] = drive + (c - drive) * a
                tau = (node.tau if isinstance(node, nir.LI) else node.tau_mem).reshape(-1)
                target = node.v_leak.reshape(-1) + node.r.reshape(-1) * current
                y = v
                st["v"] = target + (v - target) * np.exp(-dt / tau)
            elif isinstance(node, nir.I):
                v = st.setdefault("v", np.zeros(x.size)) + dt * node.r.reshape(-1) * x
                st["v"] = v
                y = v
            else:  # pragma: no cover
                raise NotImplementedError(type(node))
            out[k] = np.asarray(y, dtype=float).reshape(-1)
        self.prev = out
        return out

    def run(self, inputs, n_steps, outputs):
        rows = {k: [] for k in outputs}
        for _ in range(n_steps):
            out = self.step(inputs)
            for k in outputs:
                rows[k].append(out[k])
        return {k: np.array(v) for k, v in rows.items()}


def simulate(net, inputs, n_steps, sim_cls=nengojax.Simulator):
    for k, v in inputs.items():
        net.inputs[k].output = np.asarray(v, dtype=float).reshape(-1)
    kwargs = {"progress_bar": False}
    with sim_cls(net, dt=DT, **kwargs) as sim:
        sim.run_steps(n_steps)
    return {k: sim.data[p] for k, p in net.outputs.items()}


def check(graph, inputs, n_steps=200, nengo_too=False, pool_shapes=None, atol=1e-4):
    net = from_nir(graph, dt=DT)
    got = simulate(net, inputs, n_steps)
    ref_sim = Reference(graph)
    ref_sim.pool_shape = pool_shapes or {}
    ref = ref_sim.run(inputs, n_steps, list(net.outputs))
    for k in net.outputs:
        scale = max(1.0, np.abs(ref[k]).max())
        np.testing.assert_allclose(got[k], ref[k], atol=atol * scale, err_msg=k)
    if nengo_too:
        got_nengo = simulate(net, inputs, n_steps, nengo.Simulator)
        for k in net.outputs:
            np.testing.assert_allclose(got_nengo[k], got[k], atol=1e-5 * scale, err_msg=k)
    return got


def lif(n, rng, **kw):
    params = dict(
        tau=rng.uniform(0.005, 0.03, n),
        r=rng.uniform(0.5, 2.0, n),
        v_leak=rng.uniform(-0.2, 0.5, n),
        v_threshold=rng.uniform(0.5, 1.5, n),
        v_reset=rng.uniform(-0.3, 0.2, n),
    )
    params.update(kw)
    return nir.LIF(**params)


def affine(o, i, rng, scale=1.0):
    return nir.Affine(weight=scale * rng.randn(o, i), bias=rng.randn(o))


# --- import ---------------------------------------------------------------------------


def test_lif_graph_matches_equations():
    rng = np.random.RandomState(0)
    g = nir.NIRGraph.from_list(affine(6, 3, rng, 2.0), lif(6, rng), affine(2, 6, rng, 0.01))
    out = check(g, {"input": [0.6, -0.2, 1.0]}, nengo_too=True)
    assert np.any(out["output"] != 0)


def test_if_i_li_threshold_match_equations():
    rng = np.random.RandomState(1)
    n = 5
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2])),
            "w": affine(n, 2, rng, 3.0),
            "if": nir.IF(r=rng.uniform(0.5, 2, n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
            "li": nir.LI(tau=rng.uniform(0.01, 0.05, n), r=np.ones(n), v_leak=0.1 * np.ones(n)),
            "i": nir.I(r=rng.uniform(0.5, 2, n)),
            "thr": nir.Threshold(threshold=rng.uniform(-0.5, 0.5, n)),
            "o_if": nir.Output(output_type=np.array([n])),
            "o_li": nir.Output(output_type=np.array([n])),
            "o_i": nir.Output(output_type=np.array([n])),
            "o_thr": nir.Output(output_type=np.array([n])),
        },
        edges=[
            ("input", "w"),
            ("w", "if"),
            ("w", "li"),
            ("w", "i"),
            ("li", "thr"),
            ("if", "o_if"),
            ("li", "o_li"),
            ("i", "o_i"),
            ("thr", "o_thr"),
        ],
    )
    out = check(g, {"input": [0.8, -0.4]}, nengo_too=True)
    assert out["o_if"].any() and out["o_thr"].any()


def test_cuba_nodes_match_equations():
    rng = np.random.RandomState(2)
    n = 4
    cuba = nir.CubaLIF(
        tau_syn=np.array([0.005, 0.005, 0.01, 0.01]),
        tau_mem=np.array([0.02, 0.01, 0.02, 0.02]),
        r=rng.uniform(1, 2, n),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n) * 0.5,
        v_reset=np.zeros(n),
        w_in=rng.uniform(1, 3, n),
    )
    li = nir.CubaLI(
        tau_syn=np.full(n, 0.005),
        tau_mem=np.full(n, 0.02),
        r=np.ones(n),
        v_leak=np.zeros(n),
        w_in=np.full(n, 2.0),
    )
    g = nir.NIRGraph.from_list(
        affine(n, 2, rng, 2.0), cuba, nir.Linear(weight=0.01 * np.eye(n)), li
    )
    out = check(g, {"input": [1.0, 0.3]}, n_steps=300, nengo_too=True)
    assert np.abs(out["output"]).max() > 0


def test_delay_matches_equations():
    rng = np.random.RandomState(3)
    g = nir.NIRGraph.from_list(
        affine(3, 1, rng), nir.Delay(np.array([0.0, 0.003, 0.010])), nir.Scale(np.ones(3))
    )
    check(g, {"input": [1.0]}, n_steps=30)
    with pytest.raises(BuildError, match="delay.*not multiples of dt"):
        from_nir(nir.NIRGraph.from_list(nir.Delay(np.array([0.0015]))), dt=DT)
    with pytest.warns(UserWarning, match="approximated"):
        from_nir(nir.NIRGraph.from_list(nir.Delay(np.array([0.0015]))), dt=DT, approximate=True)


def test_conv_pool_flatten_match_equations():
    rng = np.random.RandomState(4)
    conv = nir.Conv2d(
        input_shape=(6, 6),
        weight=rng.randn(3, 2, 3, 3),
        stride=1,
        padding=1,
        dilation=1,
        groups=1,
        bias=rng.randn(3),
    )
    nodes = {
        "input": nir.Input(input_type=np.array([2, 6, 6])),
        "conv": conv,
        "lif": lif(3 * 36, rng, v_reset=np.zeros(108), v_threshold=np.ones(108)),
        "pool": nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.zeros(2)
        ),
        "avg": nir.AvgPool2d(
            kernel_size=np.array([3, 3]), stride=np.array([3, 3]), padding=np.zeros(2)
        ),
        "flat": nir.Flatten(input_type={"input": np.array([3, 1, 1])}),
        "out": nir.Output(output_type=np.array([3])),
    }
    nodes["lif"] = nir.LIF(
        tau=np.full((3, 6, 6), 0.01),
        r=np.full((3, 6, 6), 2.0),
        v_leak=np.zeros((3, 6, 6)),
        v_threshold=np.ones((3, 6, 6)),
        v_reset=np.zeros((3, 6, 6)),
    )
    edges = [
        ("input", "conv"),
        ("conv", "lif"),
        ("lif", "pool"),
        ("pool", "avg"),
        ("avg", "flat"),
        ("flat", "out"),
    ]
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    x = rng.rand(2, 6, 6)
    out = check(g, {"input": x}, n_steps=50, pool_shapes={"pool": (3, 6, 6), "avg": (3, 3, 3)})
    assert out["out"].any()


def test_nested_graphs_like_nir_tests():
    """Two branches (nested graphs with Delay, LIF and Affine) merging into a LIF,
    in the style of the nir package's own architecture tests."""
    rng = np.random.RandomState(5)
    b1 = nir.NIRGraph.from_list(
        affine(3, 2, rng, 2.0),
        nir.Delay(np.array([0.005, 0.001, 0.002])),
        nir.LIF(tau=np.array([0.01, 0.02, 0.03]), r=np.ones(3), v_leak=np.zeros(3),
                v_threshold=np.array([1.0, 2, 3])),
        affine(2, 3, rng, 0.01),
    )  # fmt: skip
    b2 = nir.NIRGraph.from_list(
        affine(2, 2, rng, 2.0),
        nir.LIF(tau=np.array([0.01, 0.02]), r=np.ones(2), v_leak=np.zeros(2),
                v_threshold=np.array([1.0, 2])),
        affine(2, 2, rng, 0.01),
    )  # fmt: skip
    junction = nir.LIF(
        tau=np.array([0.005, 0.002]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)
    )
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2])),
            "b1": b1,
            "b2": b2,
            "junction": junction,
            "output": nir.Output(output_type=np.array([2])),
        },
        edges=[("input", "b1"), ("input", "b2"), ("b1", "junction"), ("b2", "junction"),
               ("junction", "output")],
    )  # fmt: skip
    net = from_nir(g, dt=DT)
    got = simulate(net, {"input": [1.0, 0.5]}, 200)["output"]
    # reference: the same graph written flat by hand
    flat_nodes = {"input": g.nodes["input"], "output": g.nodes["output"], "junction": junction}
    flat_edges = [("junction", "output")]
    for name, sub in (("b1", b1), ("b2", b2)):
        chain = [k for k in sub.nodes if k not in ("input", "output")]
        for k in chain:
            flat_nodes[f"{name}.{k}"] = sub.nodes[k]
        flat_edges += [("input", f"{name}.{chain[0]}"), (f"{name}.{chain[-1]}", "junction")]
        flat_edges += [
            (f"{name}.{a}", f"{name}.{b}") for a, b in zip(chain[:-1], chain[1:], strict=True)
        ]
    flat = nir.NIRGraph(nodes=flat_nodes, edges=flat_edges, type_check=False)
    ref = Reference(flat).run({"input": [1.0, 0.5]}, 200, ["output"])["output"]
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert got.any()


def test_read_write_round_trip(tmp_path):
    rng = np.random.RandomState(6)
    g = nir.NIRGraph.from_list(affine(4, 2, rng, 2.0), lif(4, rng), affine(1, 4, rng, 0.01))
    nir.write(tmp_path / "g.nir", g)
    g2 = nir.read(tmp_path / "g.nir")
    a = simulate(from_nir(g), {"input": [0.5, 0.5]}, 100)["output"]
    b = simulate(from_nir(g2), {"input": [0.5, 0.5]}, 100)["output"]
    np.testing.assert_array_equal(a, b)


# --- export and round trips -------------------------------------------------------------


def _run_net(net, probes, n_steps=300):
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(n_steps)
    return [sim.data[p] for p in probes]


def test_round_trip_lif_if_network_is_exact():
    U = nengo.dists.Uniform
    with nengo.Network(seed=1) as net:
        stim = nengo.Node([0.5, -0.3], label="stim")
        a = nengo.Ensemble(20, 2, neuron_type=ResetLIF(tau=0.02), gain=U(1, 3), bias=U(-1, 1))
        b = nengo.Ensemble(10, 1, neuron_type=ResetIF(), gain=U(1, 2), bias=U(0, 1))
        c = nengo.Ensemble(10, 1, neuron_type=ResetLIF(tau=0.01), gain=U(1, 3), bias=U(0.5, 1.5))
        nengo.Connection(stim, a)
        w = np.random.RandomState(0).randn(10, 20) * 0.01
        nengo.Connection(a.neurons, b.neurons, transform=w, synapse=0.005)
        nengo.Connection(a, c, function=lambda x: x[0] * x[1], synapse=0.01)
        out = nengo.Node(size_in=1, label="sum")
        nengo.Connection(b.neurons, out, transform=np.full((1, 10), 0.1), synapse=None)
        nengo.Connection(c, out, synapse=None)
        p = nengo.Probe(out, label="out")
        pa = nengo.Probe(a.neurons, label="spikes", synapse=0.01)
    g = to_nir(net)
    assert isinstance(g, nir.NIRGraph)
    assert {type(n).__name__ for n in g.nodes.values()} >= {"LIF", "IF", "Linear", "LI"}
    net2 = from_nir(g)
    net2.inputs["stim"].output = np.array([0.5, -0.3])
    y1, s1 = _run_net(net, [p, pa])
    y2, s2 = _run_net(net2, [net2.outputs["out"], net2.outputs["spikes"]])
    assert np.abs(y1).max() > 0 and s1.any()
    np.testing.assert_allclose(y2, y1, atol=1e-5)
    np.testing.assert_allclose(s2, s1, atol=1e-3)


def test_round_trip_conv_and_integrators():
    rng = np.random.RandomState(2)
    with nengo.Network(seed=2) as net:
        stim = nengo.Node(rng.rand(2 * 5 * 5), label="image")
        conv = nengo.Convolution(3, (2, 5, 5), kernel_size=(3, 3), padding="same",
                                 channels_last=False, init=rng.randn(3, 3, 2, 3))  # fmt: skip
        layer = nengo.Ensemble(75, 1, neuron_type=ResetLIF(0.01), gain=nengo.dists.Choice([2.0]),
                               bias=nengo.dists.Choice([0.0]))  # fmt: skip
        nengo.Connection(stim, layer.neurons, transform=conv, synapse=None)
        li = nengo.Ensemble(
            3, 1, neuron_type=LeakyIntegrator(0.02), gain=np.ones(3), bias=np.zeros(3)
        )
        integ = nengo.Ensemble(
            3, 1, neuron_type=Integrator(), gain=np.ones(3), bias=np.full(3, 0.1)
        )
        heav = nengo.Ensemble(
            3, 1, neuron_type=Heaviside(), gain=np.ones(3), bias=np.full(3, -0.5)
        )
        pool = rng.rand(3, 75) * 0.01
        for e in (li, integ, heav):
            nengo.Connection(layer.neurons, e.neurons, transform=pool, synapse=None)
        probes = [nengo.Probe(e.neurons, label=e.neuron_type.__class__.__name__)
                  for e in (li, integ, heav)]  # fmt: skip
        delayed = nengo.Node(size_in=3)
        delay = nengo.LinearFilter([1.0], [1.0, 0, 0, 0], analog=False)  # 3 steps
        nengo.Connection(heav.neurons, delayed, synapse=delay)
        probes.append(nengo.Probe(delayed, label="delayed"))
    g = to_nir(net)
    assert any(isinstance(n, nir.Conv2d) for n in g.nodes.values())
    delays = [n for n in g.nodes.values() if isinstance(n, nir.Delay)]
    assert len(delays) == 1 and np.allclose(delays[0].delay, 0.003)
    net2 = from_nir(g)
    net2.inputs["image"].output = stim.output
    ref = _run_net(net, probes, 100)
    got = _run_net(net2, [net2.outputs[p.label] for p in probes], 100)
    for a, b, p in zip(ref, got, probes, strict=True):
        assert np.abs(a).max() > 0, p.label
        np.testing.assert_allclose(b, a, atol=1e-4 * max(1, np.abs(a).max()), err_msg=p.label)


def test_leaky_integrator_equals_lowpass():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(20 * t) + 1)
        ens = nengo.Ensemble(1, 1, neuron_type=LeakyIntegrator(0.01), gain=[1.0], bias=[0.0])
        nengo.Connection(stim, ens.neurons, synapse=None)
        p1 = nengo.Probe(ens.neurons)
        p2 = nengo.Probe(stim, synapse=nengo.Lowpass(0.01))
    for cls in (nengo.Simulator, nengojax.Simulator):
        with cls(net, progress_bar=False) as sim:
            sim.run_steps(100)
        np.testing.assert_allclose(sim.data[p1], sim.data[p2], atol=1e-6)


def test_export_approximate_nengo_types_warns():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5])
        a = nengo.Ensemble(10, 1, neuron_type=nengo.LIF())
        b = nengo.Ensemble(10, 1, neuron_type=nengo.SpikingRectifiedLinear())
        nengo.Connection(stim, a)
        nengo.Connection(a, b)
        nengo.Probe(b.neurons)
    with pytest.raises(BuildError, match="LIF.*refractory period"):
        to_nir(net)
    with pytest.warns(UserWarning, match="approximated"):
        g = to_nir(net, approximate=True)
    types = {type(n).__name__ for n in g.nodes.values()}
    assert {"LIF", "IF"} <= types


# --- errors ------------------------------------------------------------------------------


def _net_with(build):
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5], label="stim")
        ens = nengo.Ensemble(5, 1, neuron_type=ResetLIF(), gain=np.ones(5) * 2, bias=np.ones(5))
        nengo.Connection(stim, ens.neurons, transform=np.ones((5, 1)))
        build(stim, ens)
    return net


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda s, e: nengo.Connection(s, nengo.Node(lambda t, x: x**2, size_in=1)),
         "Python functions"),
        (lambda s, e: nengo.Connection(
            s, nengojax.JaxNode(lambda t, x: x, shape_in=(1,))), "JaxNodes"),
        (lambda s, e: setattr(nengo.Connection(
            e.neurons, e.neurons, transform=np.eye(5)), "learning_rule_type", nengo.BCM()),
         "learning rules"),
        (lambda s, e: nengo.Connection(s, nengo.Ensemble(3, 1, neuron_type=nengo.Direct())),
         "Direct mode"),
        (lambda s, e: nengo.Connection(s, nengo.Ensemble(3, 1, neuron_type=nengo.Sigmoid())),
         "Sigmoid has no NIR equivalent"),
        (lambda s, e: nengo.Connection(e.neurons, e.neurons, synapse=nengo.Alpha(0.01),
                                       transform=np.eye(5)), "Alpha"),
    ],
)  # fmt: skip
def test_export_errors_name_the_object(build, match):
    net = _net_with(build)
    with pytest.raises(BuildError, match=match):
        to_nir(net)
    with pytest.raises(ValidationError, match="nengo.Network"):
        to_nir("not a network")


def test_import_errors_name_the_node():
    with pytest.raises(ValidationError, match="nir.NIRGraph"):
        from_nir({"nodes": {}})
    conv = nir.Conv2d(input_shape=(5, 5), weight=np.ones((1, 1, 3, 3)), stride=1, padding=0,
                      dilation=2, groups=1, bias=np.zeros(1))  # fmt: skip
    with pytest.raises(BuildError, match="'conv2d'.*dilation"):
        from_nir(nir.NIRGraph.from_list(conv))
    conv = nir.Conv2d(input_shape=(5, 5), weight=np.ones((1, 1, 3, 3)), stride=2, padding=2,
                      dilation=1, groups=1, bias=np.zeros(1))  # fmt: skip
    with pytest.raises(BuildError, match="padding"):
        from_nir(nir.NIRGraph.from_list(conv))
    bad = nir.LIF(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.zeros(1),
                  v_reset=np.ones(1))  # fmt: skip
    with pytest.raises(BuildError, match="'lif'.*v_threshold must be above v_reset"):
        from_nir(nir.NIRGraph.from_list(bad))
    with pytest.raises(ValidationError, match="dt"):
        from_nir(nir.NIRGraph.from_list(nir.Scale(np.ones(2))), dt=0)


def test_optional_packages_are_imported_lazily():
    """``import nengojax`` (and ``nengojax.nir``) imports neither nir, Equinox nor Flax."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import sys, nengojax, nengojax.nir; "
        "print(sorted(m for m in ('nir', 'equinox', 'flax') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    assert nengojax.nir.from_nir is from_nir


def test_docs_page_runs(tmp_path, monkeypatch):
    from test_converter import run_doc_blocks

    ns = run_doc_blocks("nir.rst", tmp_path, monkeypatch)
    assert (tmp_path / "exported.nir").exists()
    assert set(ns["again"].outputs) == {"out"}


def test_more_export_errors():
    with nengo.Network(seed=0) as net:
        img = nengo.Node(np.zeros(2 * 4 * 4))
        post = nengo.Node(size_in=3 * 4 * 4)
        conv = nengo.Convolution(3, (4, 4, 2), kernel_size=(3, 3), padding="same")
        nengo.Connection(img, post, transform=conv, synapse=None)
    with pytest.raises(BuildError, match="channels-first"):
        to_nir(net)
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5])
        ens = nengo.Ensemble(5, 1, neuron_type=ResetLIF(), gain=np.ones(5) * 2, bias=np.ones(5))
        nengo.Connection(stim, ens)
        nengo.Probe(ens)
    with pytest.raises(BuildError, match="probe decoded Ensemble output"):
        to_nir(net)
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(2, 1, neuron_type=Heaviside(), gain=[2.0, 1.0], bias=[0.0, 0.0])
        nengo.Probe(ens.neurons)
    with pytest.raises(BuildError, match="Heaviside neurons need gain 1"):
        to_nir(net)
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(2, 1, neuron_type=ResetLIF(amplitude=2.0), gain=[1, 1], bias=[0, 0])
        nengo.Probe(ens.neurons)
    with pytest.raises(BuildError, match="amplitude 2.0"):
        to_nir(net)


def test_unknown_nir_node_and_nested_graph_errors():
    from dataclasses import dataclass

    @dataclass(eq=False)
    class Custom(nir.NIRNode):
        value: np.ndarray

        def __post_init__(self):
            self.input_type = {"input": np.array([2])}
            self.output_type = {"output": np.array([2])}

    g = nir.NIRGraph.from_list(Custom(np.ones(2)), type_check=False)
    with pytest.raises(BuildError, match="'custom'.*Custom.*no nengo equivalent"):
        from_nir(g)
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2])),
            "a": nir.Output(output_type=np.array([2])),
            "b": nir.Output(output_type=np.array([2])),
        },
        edges=[("input", "a"), ("input", "b")],
    )
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "sub": sub,
               "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "sub"), ("sub", "output")],
        type_check=False,
    )  # fmt: skip
    with pytest.raises(BuildError, match="subgraph 'sub', which has 2 Output nodes"):
        from_nir(g)


def test_graph_exported_by_spyx_matches_equations():
    """A graph written by another library's NIR exporter (spyx, a JAX SNN library):
    LIF and CubaLIF with per-neuron time constants, a reset-free LI + Threshold
    pair and a recurrent LIF subgraph (a cycle, one step late)."""
    spyx_nir = pytest.importorskip("spyx.nir")
    snn = pytest.importorskip("spyx.nn")
    nnx = pytest.importorskip("flax.nnx")
    r = nnx.Rngs(0)
    n = 5  # one size for every layer: fewer distinct shapes to compile
    model = nnx.Sequential(
        nnx.Linear(n, n, rngs=r),
        snn.LIF((n,), rngs=r),
        nnx.Linear(n, n, rngs=r),
        snn.CuBaLIF((n,), rngs=r),
        nnx.Linear(n, n, rngs=r),
        snn.PSU_LIF((n,), rngs=r),
        nnx.Linear(n, n, rngs=r),
        snn.RLIF((n,), rngs=r),
        nnx.Linear(n, n, rngs=r),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = spyx_nir.to_nir(model, {"input": np.array([n])}, {"output": np.array([n])}, dt=DT)
    types = {type(n).__name__ for n in g.nodes.values()}
    assert {"LIF", "CubaLIF", "LI", "Threshold", "NIRGraph"} <= types
    # positive weights, so that every layer spikes
    for node in g.nodes.values():
        if isinstance(node, nir.Affine):
            node.weight = 2.0 * np.abs(node.weight)
    out = check(g, {"input": [1.0, 0.5, 0.8, 0.3, 0.6]}, n_steps=200, nengo_too=True)
    assert np.abs(out["output"]).max() > 0
