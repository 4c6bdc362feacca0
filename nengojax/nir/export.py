"""`to_nir`: a nengo network -> a NIR graph."""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import nengo
import numpy as np
from nengo.exceptions import BuildError, ValidationError

from ..jax_node import JaxNode
from .neurons import Heaviside, Integrator, LeakyIntegrator, ResetIF, ResetLIF

if TYPE_CHECKING:  # pragma: no cover
    import nir

__all__ = ["to_nir"]


def _clean(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", label)


class _Exporter:
    def __init__(self, net, dt, approximate):
        self.net = net
        self.dt = dt
        self.approximate = approximate
        self.nodes: dict = {}
        self.edges: list = []
        self.names: dict = {}  # nengo object -> name of its NIR output node
        self.targets: dict = {}  # nengo object -> name of the NIR node its inputs go to
        self.model = None

    def fail(self, obj, msg):
        raise BuildError(f"to_nir: {obj}: {msg}")

    def approx(self, obj, msg):
        if not self.approximate:
            self.fail(obj, msg + " (pass approximate=True to approximate it)")
        warnings.warn(f"to_nir: {obj}: {msg}; approximated", stacklevel=4)

    def unique(self, base: str) -> str:
        base = _clean(base) or "node"
        name, k = base, 1
        while name in self.nodes:
            name = f"{base}_{k}"
            k += 1
        return name

    def add(self, base, node) -> str:
        name = self.unique(base)
        self.nodes[name] = node
        return name

    # --- objects ------------------------------------------------------------------------

    def export_node(self, node):
        import nir

        if isinstance(node, JaxNode) and node.size_in > 0:
            self.fail(node, "JaxNodes compute arbitrary JAX functions, which NIR cannot express")
        if node.size_in == 0:
            name = self.add(node.label or "input", nir.Input(input_type=np.array([node.size_out])))
            self.names[node] = name
        elif node.output is None:
            name = self.add(node.label or "node", nir.Scale(scale=np.ones(node.size_in)))
            self.names[node] = self.targets[node] = name
        else:
            self.fail(
                node,
                "Nodes computing Python functions of their input cannot be expressed in NIR",
            )

    def export_ensemble(self, ens):
        import nir

        built = self.model.params[ens]
        gain = np.asarray(built.gain, dtype=np.float64)
        bias = np.asarray(built.bias, dtype=np.float64)
        nt = ens.neuron_type
        n = ens.n_neurons
        label = ens.label or "ensemble"
        one, zero = np.ones(n), np.zeros(n)
        needs_bias = False
        if getattr(nt, "amplitude", 1.0) != 1.0:
            self.fail(ens, f"{type(nt).__name__} amplitude {nt.amplitude} != 1 has no NIR form")
        if isinstance(nt, ResetLIF):
            node = nir.LIF(
                tau=nt.tau * one, r=gain, v_leak=bias, v_threshold=one, v_reset=zero.copy()
            )
        elif isinstance(nt, LeakyIntegrator):
            node = nir.LI(tau=nt.tau * one, r=gain, v_leak=bias)
        elif isinstance(nt, ResetIF):
            node, needs_bias = nir.IF(r=gain, v_threshold=one, v_reset=zero.copy()), True
        elif isinstance(nt, Integrator):
            node, needs_bias = nir.I(r=gain), True
        elif isinstance(nt, Heaviside):
            if np.any(gain <= 0):
                self.fail(ens, "Heaviside neurons need positive gains to export")
            node = nir.Threshold(threshold=-bias / gain)
            if np.any(gain != 1):
                self.fail(ens, "Heaviside neurons need gain 1 to export (NIR Threshold)")
        elif isinstance(nt, (nengo.LIF, nengo.LIFRate)):
            self.approx(
                ens,
                f"{type(nt).__name__} (refractory period {nt.tau_ref}, voltage floor "
                f"{getattr(nt, 'min_voltage', 0)}, sub-step spike times) is exported as a NIR "
                "LIF without refractory period",
            )
            node = nir.LIF(
                tau=nt.tau_rc * one, r=gain, v_leak=bias, v_threshold=one, v_reset=zero.copy()
            )
        elif isinstance(nt, (nengo.SpikingRectifiedLinear, nengo.RectifiedLinear)):
            self.approx(
                ens,
                f"{type(nt).__name__} is exported as a NIR IF neuron (reset to 0, at most one "
                "spike per step)",
            )
            node, needs_bias = nir.IF(r=gain, v_threshold=one, v_reset=zero.copy()), True
        else:
            self.fail(ens, f"neuron type {type(nt).__name__} has no NIR equivalent")
        name = self.add(label, node)
        self.names[ens] = self.names[ens.neurons] = name
        target = name
        if needs_bias and np.any(bias != 0):
            # NIR IF and I have no bias term: add the bias before the neurons
            # (current = gain * (x + bias / gain))
            if np.any(gain == 0):
                self.fail(ens, "a neuron with zero gain and non-zero bias cannot be exported")
            target = self.add(f"{label}_bias", nir.Affine(weight=np.eye(n), bias=bias / gain))
            self.edges.append((target, name))
        self.targets[ens] = self.targets[ens.neurons] = target

    # --- connections -------------------------------------------------------------------------

    def weight_node(self, conn, label):
        """The NIR node of ``conn``'s weights (decoders, transform, slices, encoders)."""
        import nir

        transform = conn.transform
        pre, post = conn.pre_obj, conn.post_obj
        if isinstance(transform, nengo.Convolution):
            if isinstance(pre, nengo.Ensemble) or isinstance(post, nengo.Ensemble):
                self.fail(conn, "convolutions must connect Nodes or Neurons to export")
            if conn.pre_slice != slice(None) or conn.post_slice != slice(None):
                self.fail(conn, "sliced convolutions cannot be exported")
            if transform.channels_last:
                self.fail(conn, "NIR convolutions are channels-first; use channels_last=False")
            kernel = np.asarray(self.model.sig[conn]["weights"].initial_value, dtype=np.float64)
            nd = kernel.ndim - 2
            w = np.transpose(kernel, (nd + 1, nd) + tuple(range(nd)))  # (C_out, C_in, *k)
            k = transform.kernel_size
            if transform.padding == "valid":
                pad = 0 if nd == 1 else (0, 0)
            elif all(s == 1 for s in transform.strides) and all(v % 2 == 1 for v in k):
                pad = (k[0] - 1) // 2 if nd == 1 else tuple((v - 1) // 2 for v in k)
            else:
                self.fail(conn, "'same' padding with strides or even kernels has no NIR form")
            spatial = tuple(transform.input_shape.shape[1:])
            cls = nir.Conv1d if nd == 1 else nir.Conv2d
            node = cls(
                input_shape=spatial[0] if nd == 1 else spatial,
                weight=w,
                stride=transform.strides[0] if nd == 1 else tuple(transform.strides),
                padding=pad,
                dilation=1 if nd == 1 else (1, 1),
                groups=1,
                bias=np.zeros(w.shape[0]),
            )
            return self.add(label, node)
        if not isinstance(transform, (nengo.Dense, nengo.Sparse, nengo.transforms.NoTransform)):
            self.fail(conn, f"{type(transform).__name__} transforms cannot be exported")
        n_pre = pre.n_neurons if isinstance(pre, nengo.Ensemble) else pre.size_out
        weights = self.model.sig[conn].get("weights")
        mat_full = None
        if isinstance(pre, nengo.Ensemble):
            # decoders (and the transform) are multiplied into the weights signal
            mat = np.atleast_2d(np.asarray(weights.initial_value, dtype=np.float64))
            if conn.solver.weights:
                # full weights (encoders and post gains included)
                gain = np.asarray(self.model.params[post].gain, dtype=np.float64)
                mat_full = mat / gain[:, None]
        else:
            size_mid = conn.size_mid
            t = weights.initial_value if weights is not None else np.eye(size_mid)
            if hasattr(t, "toarray"):
                t = t.toarray()
            t = np.asarray(t, dtype=np.float64)
            if t.ndim == 0:
                t = t * np.eye(size_mid)
            elif t.ndim == 1:
                t = np.diag(t)
            sel = np.zeros((size_mid, n_pre))
            sel[np.arange(size_mid), np.arange(n_pre)[conn.pre_slice]] = 1.0
            mat = t @ sel
        if mat_full is None:
            size_post = post.size_in
            full = np.zeros((size_post, mat.shape[1]))
            full[np.arange(size_post)[conn.post_slice]] = mat
            if isinstance(post, nengo.Ensemble):
                ens_b = self.model.params[post]
                enc = np.asarray(ens_b.scaled_encoders, dtype=np.float64)
                full = (enc / np.asarray(ens_b.gain)[:, None]) @ full
            mat_full = full
        return self.add(label, nir.Linear(weight=mat_full))

    def export_connection(self, conn, k):
        if conn.learning_rule_type is not None:
            self.fail(conn, "learning rules cannot be expressed in NIR")
        if conn.function is not None and not isinstance(conn.pre_obj, nengo.Ensemble):
            self.fail(conn, "functions on connections from Nodes cannot be expressed in NIR")
        pre = conn.pre_obj
        post = conn.post_obj
        if isinstance(post, nengo.connection.LearningRule) or isinstance(
            pre, nengo.connection.LearningRule
        ):
            self.fail(conn, "learning rules cannot be expressed in NIR")
        src = self.names.get(pre)
        dst = self.targets.get(post)
        if src is None:
            self.fail(conn, f"its pre object {pre} was not exported")
        if dst is None:
            self.fail(conn, f"its post object {post} takes no input in NIR")
        label = conn.label or f"conn{k}"
        name = self.weight_node(conn, label)
        self.edges.append((src, name))
        last = name
        syn = conn.synapse
        if syn is not None:
            size = post.size_in
            if isinstance(post, nengo.Ensemble):
                size = post.n_neurons
            last = self.synapse_node(conn, syn, size, label, name)
        self.edges.append((last, dst))

    def synapse_node(self, obj, syn, size, label, src):
        import nir

        steps = _delay_steps(syn)
        if steps is not None:
            node = nir.Delay(delay=steps * self.dt * np.ones(size))
        elif isinstance(syn, nengo.Lowpass):
            node = nir.LI(tau=syn.tau * np.ones(size), r=np.ones(size), v_leak=np.zeros(size))
        else:
            self.fail(
                obj,
                f"synapse {syn} cannot be exported (Lowpass maps to NIR's LI, a discrete "
                "LinearFilter([1], [1, 0, ..., 0]) to Delay; nothing else does)",
            )
        name = self.add(f"{label}_synapse", node)
        self.edges.append((src, name))
        return name

    def export_probe(self, probe):
        import nir

        target = probe.target
        if isinstance(target, nengo.Ensemble):
            self.fail(probe, "probe decoded Ensemble output through a Node or probe .neurons")
        if probe.attr not in ("output", "decoded_output") or target not in self.names:
            self.fail(probe, f"probes of {probe.attr!r} on {target} cannot be exported")
        if probe.slice is not None and probe.slice != slice(None):
            self.fail(probe, "sliced probes cannot be exported")
        size = target.size_out
        src = self.names[target]
        if probe.synapse is not None:
            src = self.synapse_node(probe, probe.synapse, size, probe.label or "output", src)
        name = self.add(probe.label or "output", nir.Output(output_type=np.array([size])))
        self.edges.append((src, name))
        return name

    def export(self):
        import nir

        self.model = nengo.builder.Model(dt=self.dt)
        self.model.build(self.net)
        net = self.net
        for node in net.all_nodes:
            self.export_node(node)
        for ens in net.all_ensembles:
            if isinstance(ens.neuron_type, nengo.Direct):
                self.fail(ens, "Direct mode ensembles have no NIR equivalent")
            self.export_ensemble(ens)
        for k, conn in enumerate(net.all_connections):
            self.export_connection(conn, k)
        self.probe_names = {p: self.export_probe(p) for p in net.all_probes}
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, type_check=False)


def _delay_steps(syn) -> int | None:
    """``k`` if ``syn`` is nengo's discrete pure delay ``z^-k``, else None."""
    if type(syn) is not nengo.LinearFilter or syn.analog:
        return None
    num, den = np.atleast_1d(syn.num), np.atleast_1d(syn.den)
    if num.shape == (1,) and num[0] == den[0] != 0 and np.all(den[1:] == 0):
        return len(den) - 1
    return None


def to_nir(net: nengo.Network, dt: float = 0.001, approximate: bool = False) -> nir.NIRGraph:
    """Export a nengo network as a NIR graph.

    Parameters
    ----------
    net : nengo.Network
        The network. It is built with nengo's builder (with ``net.seed``) to
        read decoders, encoders, gains and biases.
    dt : float
        Time step the network is built with (decoders do not depend on it).
    approximate : bool
        Export nengo's own `nengo.LIF` / `nengo.LIFRate` (as NIR LIF without
        refractory period) and `nengo.SpikingRectifiedLinear` /
        `nengo.RectifiedLinear` (as NIR IF) with a warning; otherwise they
        raise `nengo.exceptions.BuildError`.

    Returns
    -------
    nir.NIRGraph
        Nodes without input become ``nir.Input`` nodes (named by label),
        probes ``nir.Output`` nodes, ensembles neuron nodes (``r`` = gain,
        ``v_leak`` = bias), connections ``nir.Linear`` (decoders, transform
        and encoders multiplied out) or ``nir.Conv1d``/``Conv2d``, Lowpass
        synapses ``nir.LI`` nodes, discrete delays ``LinearFilter([1], [1, 0, ...,
        0], analog=False)`` ``nir.Delay`` nodes and passthrough Nodes
        ``nir.Scale`` nodes.
    """
    try:
        import nir  # noqa: F401
    except ImportError as e:  # pragma: no cover - nir is an optional dependency
        raise ImportError("to_nir needs the nir package: pip install nengojax[nir]") from e
    if not isinstance(net, nengo.Network):
        raise ValidationError(
            f"to_nir: net must be a nengo.Network (got {type(net).__name__})", attr="net"
        )
    return _Exporter(net, dt, approximate).export()
