"""`Program`: everything static about a compiled nengo network.

nengo's builder makes a `nengo.builder.Model` (signals and operators, with
nengo's seeds, so the same encoders and decoders as ``nengo.Simulator``); this
module turns it into a frozen description that the lowerings (`nengojax.ops`)
and the runtime (`nengojax.runtime`) read: the operators in step order, the
home of every signal (`.SignalLayout`), the names of objects (`.KeyMap`), the
params, the input Nodes, the host sources and the probes.
"""

from __future__ import annotations

import jax
import nengo
import numpy as np
from nengo.builder import Model
from nengo.builder.operator import Reset
from nengo.cache import get_default_decoder_cache
from nengo.exceptions import ValidationError
from nengo.utils.simulator import operator_dependency_graph

from ..dtypes import default_float_dtype
from .collector import paused_collector
from .host import HostSource, is_host_source
from .keys import KeyMap
from .layout import Param, SignalLayout, View, flat_index
from .merge import merge_operators
from .opmerge import optimize as merge_like_nengo
from .schedule import stable_toposort
from .solves import SharingBuilder
from .stack import StackedOps, stack_operators


class Program:
    """A built nengo model, scheduled and laid out; static once made.

    Parameters
    ----------
    network : nengo.Network or None
        The network to build (None when ``model`` is already built).
    dt : float
        The time step (a given ``model``'s own dt wins, as in nengo).
    seed : int, optional
        Seed of the random streams; defaults to ``network.seed + 1`` as in nengo.
    model : nengo.builder.Model, optional
        A model to build into, or a built one.
    dtype : str or numpy.dtype, optional
        The float dtype (default float32, float64 with JAX's x64 mode).
    optimize : bool
        Merge operators with nengo's optimizer.
    key_network : nengo.Network, optional
        The network naming the objects when ``network`` is None.
    merge : bool, optional
        Merge filters and learning rules (default: ``optimize``).
    rank_one : callable, optional
        ``rank_one(op) -> signals``: the signals the lowering of ``op`` sets to
        an outer product and keeps the factors of (see `.SignalLayout`); none
        is carried as factors without it.

    Attributes
    ----------
    step_order : list
        The operators in the order they run each step.
    layout : SignalLayout
        Where every signal lives (param, const, state or scratch).
    keys : KeyMap
        The stable names of the network's objects.
    params : dict
        Param key -> `.Param` (its base, view and initial value).
    input_nodes : dict
        Key -> Node whose output can be given at run time (no input).
    node_views : dict
        Key -> `.View` of each input Node's output.
    host_sources : list of HostSource
        Operators whose values are computed on the host ahead of the step.
    probes : dict
        Key -> Probe; ``probe_views`` holds the view each probe reads.
    """

    def __init__(
        self,
        network: nengo.Network | None,
        dt: float = 0.001,
        seed: int | None = None,
        model: Model | None = None,
        dtype=None,
        optimize: bool = True,
        key_network: nengo.Network | None = None,
        merge: bool | None = None,
        rank_one=None,
    ):
        self.dt = float(dt)
        self.network = network
        self.float_dtype = np.dtype(dtype) if dtype is not None else default_float_dtype()
        if self.float_dtype == np.float64 and not jax.config.jax_enable_x64:
            raise ValidationError(
                "float64 needs JAX's x64 mode: call "
                "jax.config.update('jax_enable_x64', True) before compiling",
                attr="dtype",
            )
        if self.float_dtype.kind != "f":
            raise ValidationError(f"dtype must be a float type, got {dtype}", attr="dtype")
        int_dtype = np.int64 if self.float_dtype == np.float64 else np.int32

        # the build makes many objects and almost no cyclic garbage: Python's
        # cycle collector pauses meanwhile (see .collector)
        with paused_collector():
            if model is None:
                model = Model(
                    dt=self.dt,
                    label=f"{network}, dt={self.dt:f}",
                    decoder_cache=get_default_decoder_cache(),
                    builder=SharingBuilder(),
                )
            else:
                self.dt = float(model.dt)
            self.model = model
            if network is not None:
                model.build(network)
                if isinstance(model.builder, SharingBuilder):
                    model.builder.done()
            if seed is None:
                if network is not None and network.seed is not None:
                    seed = network.seed + 1
                else:
                    seed = np.random.randint(np.iinfo(np.int32).max)
            self.seed = int(seed)

            dg = operator_dependency_graph(model.operators)
            if optimize:
                merge_like_nengo(model, dg)
            step_order = stable_toposort(dg, model.operators)
            merged = optimize if merge is None else merge
            if merged:
                step_order = merge_operators(step_order, self.dt, stable_toposort)
                step_order = stack_operators(step_order, stable_toposort, _input_node_bases(model))
            self.step_order = step_order
            self.op_index = {id(op): i for i, op in enumerate(step_order)}
            for op in step_order:  # members of stacked operators (their random streams)
                for member in op.ops if isinstance(op, StackedOps) else ():
                    self.op_index[id(member)] = len(self.op_index)

            self.keys = KeyMap(network if network is not None else key_network, model)
            # with merged operators, small bases are coalesced (a step that does
            # not grow with the number of modules); the step counter stays apart
            self.layout = SignalLayout(
                step_order,
                self.float_dtype,
                int_dtype,
                rank_one,
                coalesce=merged,
                keep_apart=[model.step, model.time],
            )
            self._find_nodes()
            self._find_host_sources()
            self._find_probes()
            self.params: dict[str, Param] = self.layout.find_params(model, self.keys)
            self.base_params: dict[int, list[str]] = {}
            for key, p in self.params.items():
                self.base_params.setdefault(p.base, []).append(key)

    @property
    def toplevel(self) -> nengo.Network | None:
        """The network the program was built from (holds its config)."""
        return self.network or getattr(self.model, "toplevel", None)

    def key(self, obj, attr: str | None = None) -> str:
        """The key of ``obj`` (and of its param ``attr``); see `.KeyMap.key`."""
        return self.keys.key(obj, attr)

    def param_key(self, obj, attr: str) -> str:
        """The key of the param holding ``obj``'s ``attr``: its own key, or for a
        signal nengo's merger stored once with an equal param, that param's."""
        key = self.keys.key(obj, attr)
        return self.layout.tied.get(key, key)

    def node_key_of(self, op) -> str | None:
        """Key of the Node whose output ``op`` writes, if any."""
        return self.node_key_of_op.get(id(op))

    def host_key(self, op) -> str:
        """Key of host source ``op`` in the per-step host values."""
        return self.host_key_of_op[id(op)]

    def state_base(self, sig) -> str:
        """The state key of the base of ``sig`` (e.g. the step counter's)."""
        return self.layout.bases[self.layout.base_index(sig)].key

    def _find_nodes(self):
        """Nodes whose output can be given at run time (input nodes)."""
        self.input_nodes: dict[str, nengo.Node] = {}
        self.node_views: dict[str, View] = {}
        self.node_key_of_op: dict[int, str] = {}
        outs = {}
        for node in self.keys.nodes:
            sig = self.model.sig.get(node, {}).get("out")
            if sig is None or node.size_out == 0:
                continue
            key = self.keys.key(node)
            outs[key] = sig
            if node.size_in == 0:
                self.input_nodes[key] = node
                self.node_views[key] = self.layout.view(sig)
        by_target = {_signature(sig): key for key, sig in outs.items()}
        for op in self.step_order:
            if _resets(op):  # resets of a node's output are not its source
                continue
            for sig in op.sets + op.incs + op.updates:
                key = by_target.get(_signature(sig))
                if key is not None:
                    self.node_key_of_op[id(op)] = key
        self.op_nodes = set(self.node_key_of_op.values())

    def _find_host_sources(self):
        self.host_sources: list[HostSource] = []
        self.host_key_of_op: dict[int, str] = {}
        for i, op in enumerate(self.step_order):
            if not is_host_source(op):
                continue
            node_key = self.node_key_of_op.get(id(op))
            key = node_key or f"host_{i}_{type(getattr(op, 'process', op)).__name__}"
            per_item = type(op).__name__ == "SimProcess"
            self.host_sources.append(HostSource(key, op, tuple(op.output.shape), per_item))
            self.host_key_of_op[id(op)] = key

    def _find_probes(self):
        self.probes: dict[str, nengo.Probe] = {}
        self.probe_views: dict[str, View] = {}
        for probe in self.model.probes:
            key = self.keys.key(probe) if self.keys.has(probe) else f"probe_{id(probe)}"
            self.probes[key] = probe
            self.probe_views[key] = self.layout.view(self.model.sig[probe]["in"])


def _resets(op) -> bool:
    """Whether ``op`` is a `.Reset`, or resets stacked together."""
    if isinstance(op, StackedOps):
        op = op.ops[0]
    return isinstance(op, Reset)


def _input_node_bases(model) -> frozenset:
    """Bases of the outputs of input Nodes (run-time data replaces the operator
    writing one, so no such operator is stacked with others)."""
    return frozenset(
        sigs["out"].base
        for obj, sigs in model.sig.items()
        if isinstance(obj, nengo.Node) and obj.size_in == 0 and sigs.get("out") is not None
    )


def _signature(sig):
    idx = flat_index(sig) if sig.is_view else None
    return (id(sig.base), None if idx is None else tuple(idx.ravel().tolist()), sig.shape)
