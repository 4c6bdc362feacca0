"""`from_nir`: a NIR graph -> a nengo network."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import nengo
import numpy as np
from nengo.exceptions import BuildError, ValidationError

from .neurons import Heaviside, Integrator, ResetIF, ResetLIF

if TYPE_CHECKING:  # pragma: no cover
    import nir

__all__ = ["from_nir"]


def _arr(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


class _Entry:
    """Where an edge into a NIR node lands: ``post``, through ``transform``
    (None: identity) and ``synapse``."""

    def __init__(self, post, transform=None, synapse=None):
        self.post, self.transform, self.synapse = post, transform, synapse


class _Flat:
    """A NIR graph with nested graphs inlined: node ``"sub.x"`` is node ``x``
    of subgraph ``sub``; edges to (from) a subgraph go to its Input (from its
    Output) node, which become passthroughs (``inner``)."""

    def __init__(self, graph):
        import nir

        self.nodes: dict = {}
        self.edges: list = []
        self.inner: set = set()
        self._add(graph, "", nir)

    def _add(self, graph, prefix, nir):
        io = {}
        for name, node in graph.nodes.items():
            full = prefix + name
            if isinstance(node, nir.NIRGraph):
                ins, outs = self._add(node, full + ".", nir)
                io[name] = (ins, outs)
            else:
                self.nodes[full] = node
        for a, b in graph.edges:
            if a in io:
                outs = io[a][1]
                if len(outs) != 1:
                    raise BuildError(
                        f"from_nir: edge ({a!r}, {b!r}) leaves subgraph {prefix + a!r}, which "
                        f"has {len(outs)} Output nodes (expected 1)"
                    )
                a = outs[0]
            else:
                a = prefix + a
            if b in io:
                ins = io[b][0]
                if len(ins) != 1:
                    raise BuildError(
                        f"from_nir: edge ({a!r}, {b!r}) enters subgraph {prefix + b!r}, which "
                        f"has {len(ins)} Input nodes (expected 1)"
                    )
                b = ins[0]
            else:
                b = prefix + b
            self.edges.append((a, b))
        ins = [prefix + k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
        outs = [prefix + k for k, v in graph.nodes.items() if isinstance(v, nir.Output)]
        if prefix:
            self.inner.update(ins + outs)
        return ins, outs


class _Importer:
    def __init__(self, graph, dt, approximate):
        self.graph = _Flat(graph)
        self.dt = float(dt)
        self.approximate = approximate
        self.entries: dict[str, list[_Entry]] = {}
        self.exits: dict = {}
        self.shapes: dict[str, tuple] = {}
        self.bias_node = None
        self.inputs: dict = {}
        self.outputs: dict = {}

    # --- helpers --------------------------------------------------------------------

    def fail(self, name, node, msg):
        raise BuildError(f"from_nir: node {name!r} ({type(node).__name__}): {msg}")

    def approx(self, name, node, msg):
        if not self.approximate:
            self.fail(name, node, msg + " (pass approximate=True to approximate it)")
        warnings.warn(f"from_nir: node {name!r} ({type(node).__name__}): {msg}; approximated")

    def bias(self):
        if self.bias_node is None:
            self.bias_node = nengo.Node([1.0], label="bias")
        return self.bias_node

    def add_bias(self, post, b):
        b = _arr(b).reshape(-1)
        if np.any(b != 0):
            nengo.Connection(self.bias(), post, transform=b[:, None], synapse=None)

    def in_shape(self, name, node):
        """Input shape of ``node``: its input_type, else the shape of its source."""
        t = getattr(node, "input_type", {}).get("input")
        if t is not None and np.size(t) > 0:
            return tuple(int(s) for s in np.atleast_1d(t))
        srcs = [a for a, b in self.graph.edges if b == name]
        for s in srcs:
            if s in self.shapes:
                return self.shapes[s]
        self.fail(name, node, "its input shape is unknown (set input_type or input_shape)")

    # --- node types -------------------------------------------------------------------

    def passthrough(self, name, size, transform=None, synapse=None):
        node = nengo.Node(size_in=size, label=name)
        self.entries[name] = [_Entry(node, transform, synapse)]
        self.exits[name] = node
        return node

    def build_node(self, name, node):
        import nir

        if name in self.graph.inner:  # Input/Output of a nested graph
            key = "input" if isinstance(node, nir.Input) else "output"
            t = (node.input_type if key == "input" else node.output_type).get(key)
            if t is None or np.size(t) == 0:
                shape = self.in_shape(name, node)
            else:
                shape = tuple(int(v) for v in np.atleast_1d(t))
            self.passthrough(name, math.prod(shape))
            self.shapes[name] = shape
        elif isinstance(node, nir.Input):
            shape = tuple(int(s) for s in np.atleast_1d(node.input_type["input"]))
            inp = nengo.Node(np.zeros(math.prod(shape)), label=name)
            self.exits[name] = inp
            self.entries[name] = []
            self.inputs[name] = inp
            self.shapes[name] = shape
        elif isinstance(node, nir.Output):
            shape = self.in_shape(name, node)
            out = self.passthrough(name, math.prod(shape))
            self.outputs[name] = nengo.Probe(out, label=name)
            self.shapes[name] = shape
        elif isinstance(node, (nir.Affine, nir.Linear)):
            w = _arr(node.weight)
            if w.ndim != 2:
                self.fail(name, node, f"weights must be 2-D (got shape {w.shape})")
            out = self.passthrough(name, w.shape[0], transform=w)
            if isinstance(node, nir.Affine):
                self.add_bias(out, node.bias)
            self.shapes[name] = (w.shape[0],)
        elif isinstance(node, nir.Scale):
            s = _arr(node.scale).reshape(-1)
            self.passthrough(name, s.size, transform=s)
            self.shapes[name] = tuple(np.shape(node.scale))
        elif isinstance(node, nir.Flatten):
            shape = self.in_shape(name, node)
            self.passthrough(name, math.prod(shape))
            self.shapes[name] = (math.prod(shape),)
        elif isinstance(node, (nir.Conv1d, nir.Conv2d)):
            self.build_conv(name, node)
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            self.build_pool(name, node)
        elif isinstance(node, nir.Delay):
            self.build_delay(name, node)
        elif isinstance(node, nir.Threshold):
            thr = _arr(node.threshold).reshape(-1)
            ens = nengo.Ensemble(
                thr.size, 1, neuron_type=Heaviside(), gain=np.ones(thr.size), bias=-thr, label=name
            )
            self.entries[name] = [_Entry(ens.neurons)]
            self.exits[name] = ens.neurons
            self.shapes[name] = tuple(np.shape(node.threshold))
        elif isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I, nir.CubaLIF, nir.CubaLI)):
            self.build_neurons(name, node)
        else:
            self.fail(name, node, "this NIR primitive has no nengo equivalent")

    def build_conv(self, name, node):
        w = _arr(node.weight)
        nd = w.ndim - 2
        shape = self.in_shape(name, node)
        if len(shape) != nd + 1:
            self.fail(name, node, f"input shape {shape} is not (channels, *{nd} spatial dims)")
        stride = tuple(np.broadcast_to(np.asarray(node.stride), (nd,)).astype(int))
        dil = tuple(np.broadcast_to(np.asarray(node.dilation), (nd,)).astype(int))
        if node.groups != 1 or any(d != 1 for d in dil):
            self.fail(name, node, "nengo.Convolution needs groups=1 and dilation=1")
        kernel = w.shape[2:]
        padding = node.padding
        if isinstance(padding, str):
            pad = padding
            if pad == "same" and (any(s != 1 for s in stride) or any(k % 2 == 0 for k in kernel)):
                self.fail(name, node, "'same' padding needs stride 1 and odd kernel sizes")
        else:
            p = tuple(np.broadcast_to(np.asarray(padding), (nd,)).astype(int))
            if all(v == 0 for v in p):
                pad = "valid"
            elif (
                all(s == 1 for s in stride)
                and p == tuple((k - 1) // 2 for k in kernel)
                and all(k % 2 == 1 for k in kernel)
            ):
                pad = "same"
            else:
                self.fail(
                    name,
                    node,
                    f"padding {p} is neither 0 ('valid') nor 'same'; nengo.Convolution "
                    "supports only these",
                )
        conv = nengo.Convolution(
            n_filters=w.shape[0],
            input_shape=shape,
            kernel_size=kernel,
            strides=stride,
            padding=pad,
            channels_last=False,
            init=np.transpose(w, tuple(range(2, 2 + nd)) + (1, 0)),
        )
        out_shape = tuple(conv.output_shape.shape)
        out = self.passthrough(name, math.prod(out_shape), transform=conv)
        b = np.zeros(w.shape[0]) if node.bias is None else _arr(node.bias).reshape(-1)
        self.add_bias(out, np.repeat(b, math.prod(out_shape[1:])))
        self.shapes[name] = out_shape

    def build_pool(self, name, node):
        import nir

        shape = self.in_shape(name, node)
        if len(shape) != 3:
            self.fail(name, node, f"input shape {shape} is not (channels, height, width)")
        c, h, w = shape
        k = np.broadcast_to(np.asarray(node.kernel_size), (2,)).astype(int)
        s = np.broadcast_to(np.asarray(node.stride), (2,)).astype(int)
        p = np.broadcast_to(np.asarray(node.padding), (2,)).astype(int)
        ho = (h + 2 * p[0] - k[0]) // s[0] + 1
        wo = (w + 2 * p[1] - k[1]) // s[1] + 1
        value = 1.0 / (k[0] * k[1]) if isinstance(node, nir.AvgPool2d) else 1.0
        rows, cols = [], []
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    for di in range(k[0]):
                        for dj in range(k[1]):
                            y, x = i * s[0] + di - p[0], j * s[1] + dj - p[1]
                            if 0 <= y < h and 0 <= x < w:
                                rows.append((ch * ho + i) * wo + j)
                                cols.append((ch * h + y) * w + x)
        n_out = c * ho * wo
        transform = nengo.Sparse(
            (n_out, c * h * w),
            indices=np.stack([rows, cols], axis=1),
            init=np.full(len(rows), value),
        )
        self.passthrough(name, n_out, transform=transform)
        self.shapes[name] = (c, ho, wo)

    def build_delay(self, name, node):
        d = _arr(node.delay).reshape(-1)
        steps = np.round(d / self.dt).astype(int)
        if np.any(np.abs(steps * self.dt - d) > 1e-6 * max(self.dt, 1.0)):
            self.approx(name, node, f"delays {d} are not multiples of dt={self.dt}")
        if np.any(steps < 0):
            self.fail(name, node, "delays must be non-negative")
        out = nengo.Node(size_in=d.size, label=name)
        entries = []
        for k in np.unique(steps):
            idx = np.flatnonzero(steps == k)
            sel = np.zeros((idx.size, d.size))
            sel[np.arange(idx.size), idx] = 1.0
            syn = None
            if k > 0:
                syn = nengo.LinearFilter([1.0], [1.0] + [0.0] * int(k), analog=False)
            entries.append(_Entry(out[idx] if idx.size < d.size else out, sel, syn))
        self.entries[name] = entries
        self.exits[name] = out
        self.shapes[name] = tuple(np.shape(node.delay))

    def build_neurons(self, name, node):
        import nir

        n_shape = None
        cuba = isinstance(node, (nir.CubaLIF, nir.CubaLI))
        if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
            thr = _arr(node.v_threshold)
            n_shape = thr.shape
            reset = _arr(node.v_reset) if node.v_reset is not None else np.zeros_like(thr)
            span = thr - reset
            if np.any(span <= 0):
                self.fail(name, node, "v_threshold must be above v_reset")
        else:
            n_shape = _arr(node.r).shape
        n = int(np.prod(n_shape))

        def flat(v, default=0.0):
            return np.broadcast_to(_arr(default if v is None else v), n_shape).reshape(-1)

        r = flat(node.r)
        if cuba:
            r = r * flat(node.w_in, 1.0)
            tau_syn = flat(node.tau_syn)
        if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
            span, reset = span.reshape(-1), reset.reshape(-1)
            gain = r / span
            leak = flat(node.v_leak) if not isinstance(node, nir.IF) else reset
            bias = (leak - reset) / span
        elif isinstance(node, (nir.LI, nir.CubaLI)):
            gain, bias = r, flat(node.v_leak)
        else:  # I
            gain, bias = r, np.zeros(n)
        if isinstance(node, nir.LIF):
            taus = flat(node.tau)
        elif isinstance(node, nir.LI):
            taus = flat(node.tau)
        elif cuba:
            taus = flat(node.tau_mem)
        else:
            taus = np.zeros(n)
        keys = np.stack([taus, tau_syn if cuba else np.zeros(n)], axis=1)
        groups = np.unique(keys, axis=0)
        entries = []
        if len(groups) == 1:
            exit_obj = None
        else:
            exit_obj = nengo.Node(size_in=n, label=f"{name}.out")
        leaky = isinstance(node, (nir.LI, nir.CubaLI))
        if leaky and exit_obj is None:
            exit_obj = nengo.Node(size_in=n, label=f"{name}.out")
        for tau, tsyn in groups:
            idx = np.flatnonzero(np.all(keys == (tau, tsyn), axis=1))
            sel = np.zeros((idx.size, n))
            sel[np.arange(idx.size), idx] = 1.0
            syn = nengo.Lowpass(tsyn) if cuba else None
            if leaky:
                # v = Lowpass(tau) applied to r * I + v_leak: nengo's own discretisation
                current = nengo.Node(size_in=idx.size, label=f"{name}.current")
                entries.append(_Entry(current, gain[idx, None] * sel, syn))
                self.add_bias(current, bias[idx])
                post = exit_obj if len(groups) == 1 else exit_obj[idx]
                nengo.Connection(current, post, synapse=nengo.Lowpass(tau))
                continue
            if isinstance(node, (nir.LIF, nir.CubaLIF)):
                nt = ResetLIF(tau=tau)
            elif isinstance(node, nir.IF):
                nt = ResetIF()
            else:
                nt = Integrator()
            ens = nengo.Ensemble(
                idx.size,
                1,
                neuron_type=nt,
                gain=gain[idx],
                bias=bias[idx],
                label=name if len(groups) == 1 else f"{name}[tau={tau:g}]",
            )
            if len(groups) == 1:
                entries.append(_Entry(ens.neurons, None, syn))
                exit_obj = ens.neurons
            else:
                entries.append(_Entry(ens.neurons, sel, syn))
                nengo.Connection(ens.neurons, exit_obj[idx], synapse=None)
        self.entries[name] = entries
        self.exits[name] = exit_obj
        self.shapes[name] = tuple(n_shape)

    # --- the graph ------------------------------------------------------------------------

    def order(self):
        """Node names, each after the sources of its edges; in a cycle, the first
        node (in graph order) with a placed source goes first, so the edge that
        closes the cycle points backwards."""
        names = list(self.graph.nodes)
        srcs = {k: [a for a, b in self.graph.edges if b == k] for k in names}
        done, out = set(), []
        while len(out) < len(names):
            ready = [k for k in names if k not in done and all(s in done for s in srcs[k])]
            if not ready:  # a cycle: break it
                rest = [k for k in names if k not in done]
                fed = [k for k in rest if any(s in done for s in srcs[k])]
                ready = [(fed or rest)[0]]
            for k in ready[:1]:
                out.append(k)
                done.add(k)
        return out

    def build(self):
        for a, b in self.graph.edges:
            for k in (a, b):
                if k not in self.graph.nodes:
                    raise BuildError(
                        f"from_nir: edge ({a!r}, {b!r}) names {k!r}, which is not a node of "
                        "the graph"
                    )
        with nengo.Network(label="from_nir") as net:
            order = self.order()
            position = {k: i for i, k in enumerate(order)}
            for name in order:
                self.build_node(name, self.graph.nodes[name])
            for a, b in self.graph.edges:
                back = position[a] >= position[b]  # closes a cycle: one step late
                pre = self.exits[a]
                if pre is None:
                    self.fail(a, self.graph.nodes[a], "it has no output")
                if not self.entries[b]:
                    self.fail(b, self.graph.nodes[b], "it takes no input")
                for e in self.entries[b]:
                    transform = 1.0 if e.transform is None else e.transform
                    synapse = e.synapse
                    if back and synapse is None:
                        synapse = nengo.LinearFilter([1.0], [1.0, 0.0], analog=False)
                    nengo.Connection(pre, e.post, transform=transform, synapse=synapse)
        net.inputs = self.inputs
        net.outputs = self.outputs
        return net


def from_nir(graph: nir.NIRGraph, dt: float = 0.001, approximate: bool = False) -> nengo.Network:
    """Build a nengo network from a NIR graph.

    Parameters
    ----------
    graph : nir.NIRGraph
        The graph. Nested graphs are inlined (node ``x`` of subgraph ``sub``
        becomes ``"sub.x"``).
    dt : float
        Time step the network will be simulated with (used for `nir.Delay`).
    approximate : bool
        If True, approximate what cannot be expressed exactly (delays that are
        not multiples of ``dt``, rounded) with a warning; otherwise raise.

    Returns
    -------
    nengo.Network
        With ``.inputs`` (NIR input name -> `nengo.Node`; feed data to it) and
        ``.outputs`` (NIR output name -> `nengo.Probe`).

    Notes
    -----
    See :doc:`nir` for the mapping and the discretisation: neuron nodes become
    ensembles of the types in `nengojax.nir.neurons`, with ``gain`` and
    ``bias`` carrying the resistance, leak voltage, threshold and reset;
    ``CubaLIF``/``CubaLI`` synaptic currents become `nengo.Lowpass` synapses on
    the incoming connections. Spikes are unit-area events (``1 / dt`` for one
    step).
    """
    try:
        import nir
    except ImportError as e:  # pragma: no cover - nir is an optional dependency
        raise ImportError("from_nir needs the nir package: pip install nengojax[nir]") from e
    if not isinstance(graph, nir.NIRGraph):
        raise ValidationError(
            f"from_nir: graph must be a nir.NIRGraph (got {type(graph).__name__})", attr="graph"
        )
    if not dt > 0:
        raise ValidationError(f"from_nir: dt must be positive (got {dt!r})", attr="dt")
    return _Importer(graph, dt, approximate).build()
