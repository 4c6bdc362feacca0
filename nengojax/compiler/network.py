"""`CompiledNetwork`: a nengo network as pure JAX functions."""

from __future__ import annotations

import contextlib
import heapq
import warnings

import jax
import jax.numpy as jnp
import nengo
import numpy as np
from nengo.builder import Model
from nengo.builder.operator import Reset
from nengo.builder.optimizer import OpMergePass, SigMerger
from nengo.builder.optimizer import optimize as nengo_optimize
from nengo.cache import get_default_decoder_cache
from nengo.exceptions import BuildError, ValidationError
from nengo.utils.simulator import operator_dependency_graph

from .. import ops as _ops  # noqa: F401  (registers the lowerings)
from .env import StepEnv
from .host import HostSource, HostStream, is_host_source
from .keys import KeyMap
from .layout import SignalLayout, View, flat_index
from .merge import merge_operators
from .registry import get_lowering


def default_float_dtype() -> np.dtype:
    """float64 when JAX runs with x64 enabled, else float32."""
    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)


def stream_seed(seed: int, stream: int) -> int:
    """The seed of minibatch item ``stream``: item 0 uses ``seed`` itself, so a
    batch of one reproduces ``nengo.Simulator``'s random streams."""
    if stream == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0] >> 1)


class LoweringContext:
    """What a lowering may ask about the network at compile time."""

    def __init__(self, compiled: CompiledNetwork, neuron_mode: str = "simulate"):
        self._c = compiled
        self.neuron_mode = neuron_mode
        self.layout = compiled.layout
        self.dt = compiled.dt
        self.model = compiled.model
        self.step_signal = compiled.model.step
        self.time_signal = compiled.model.time

    def host_key(self, op) -> str:
        """Key of host source ``op`` in the per-step host values."""
        return self._c._host_key_of_op[id(op)]

    def node_key_of(self, op) -> str | None:
        """Key of the Node whose output ``op`` produces, if any."""
        return self._c._node_key_of_op.get(id(op))

    def key(self, obj, attr: str | None = None) -> str:
        """The key of ``obj`` (see `CompiledNetwork.key`)."""
        return self._c.key(obj, attr)

    def op_index(self, op) -> int:
        """Position of ``op`` in step order (a salt for per-operator randomness)."""
        return self._c._op_index[id(op)]

    def seed_for_stream(self, stream: int) -> int:
        """NumPy seed for host-side randomness of minibatch item ``stream``."""
        return stream_seed(self._c.seed, stream)

    def warn_host(self, obj, what: str) -> None:
        """Warn that ``obj`` runs on the host every step."""
        warnings.warn(
            f"{obj} ({what}) has no JAX lowering; it runs through a host callback "
            "every time step (slow, and not differentiable)",
            UserWarning,
            stacklevel=3,
        )

    def guard_callback(self, fn):
        """Wrap a host callback so its exception reaches the caller unchanged."""
        errors = self._c._callback_errors

        def guarded(*args):
            try:
                return fn(*args)
            except Exception as e:
                errors.error = e
                raise

        return guarded


class CompiledNetwork:
    """A nengo network compiled into pure JAX functions.

    Static structure (signal layout, operator schedule, keys) lives in this
    object; dynamic values live in two pytrees, ``params`` (constants such as
    encoders, biases and weights; shared across a minibatch) and ``state``
    (everything that persists from one step to the next).

    Use `nengojax.compile` to create one.
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

        if model is None:
            model = Model(
                dt=self.dt,
                label=f"{network}, dt={self.dt:f}",
                decoder_cache=get_default_decoder_cache(),
            )
        else:
            self.dt = float(model.dt)  # as in nengo, a given model's dt wins
        self.model = model
        if network is not None:
            model.build(network)
        if seed is None:
            if network is not None and network.seed is not None:
                seed = network.seed + 1
            else:
                seed = np.random.randint(np.iinfo(np.int32).max)
        self.seed = int(seed)

        dg = operator_dependency_graph(model.operators)
        if optimize:
            with _nengo_optimizer_fixes():
                nengo_optimize(model, dg)
        self.step_order = stable_toposort(dg, model.operators)
        if optimize if merge is None else merge:
            self.step_order = merge_operators(self.step_order, self.dt, stable_toposort)
        self._op_index = {id(op): i for i, op in enumerate(self.step_order)}

        self.keys = KeyMap(network if network is not None else key_network, model)
        self.layout = SignalLayout(self.step_order, self.float_dtype, int_dtype)
        self._callback_errors = _ErrorSlot()

        self._find_nodes()
        self._find_host_sources()
        self._find_probes()
        self._find_params()

        self._applies_by_mode: dict[str, list] = {}
        self._lowered("simulate")  # lowering errors surface at compile time

        self._consts = {
            b.key: jnp.asarray(b.init)
            for b in self.layout.bases
            if b.kind in ("const", "param", "scratch")
        }
        self._host_consts = {
            b.key: b.init for b in self.layout.bases if b.kind in ("const", "param")
        }
        self._streams: dict[tuple, HostStream] = {}
        self._run_jit = jax.jit(self._run_impl, static_argnames=("n_steps", "mode", "remat"))
        self._run_packed_jit = jax.jit(
            self._run_packed, static_argnames=("n_steps", "mode", "remat")
        )

    # --- structure ------------------------------------------------------------

    def _lowered(self, mode: str) -> list:
        """The traced step functions of all operators, for one neuron ``mode``.

        ``"simulate"`` runs every neuron type as itself; ``"rate"`` runs spiking
        types as their rate counterparts and ``"spike_aware"`` spikes forward but
        differentiates through the rate counterpart (both for training).
        """
        if mode not in MODES:
            raise ValidationError(f"mode must be one of {MODES} (got {mode!r})", attr="mode")
        if mode not in self._applies_by_mode:
            ctx = LoweringContext(self, neuron_mode=mode)
            applies = []
            for op in self.step_order:
                apply = get_lowering(op)(op, ctx)
                if apply is not None:
                    applies.append(apply)
            self._applies_by_mode[mode] = applies
        return self._applies_by_mode[mode]

    def _find_nodes(self):
        """Nodes whose output can be given at run time (input nodes)."""
        self.input_nodes: dict[str, nengo.Node] = {}
        self._node_out: dict[str, View] = {}
        self._node_key_of_op: dict[int, str] = {}
        outs = {}
        for node in self.keys.nodes:
            sig = self.model.sig.get(node, {}).get("out")
            if sig is None or node.size_out == 0:
                continue
            key = self.keys.key(node)
            outs[key] = sig
            if node.size_in == 0:
                self.input_nodes[key] = node
                self._node_out[key] = self.layout.view(sig)
        by_target = {}
        for key, sig in outs.items():
            by_target[_signature(sig)] = key
        for op in self.step_order:
            if isinstance(op, Reset):  # resets of a node's output are not its source
                continue
            for sig in op.sets + op.incs + op.updates:
                key = by_target.get(_signature(sig))
                if key is not None:
                    self._node_key_of_op[id(op)] = key
        self._op_nodes = set(self._node_key_of_op.values())

    def _find_host_sources(self):
        self.host_sources: list[HostSource] = []
        self._host_key_of_op: dict[int, str] = {}
        for i, op in enumerate(self.step_order):
            if not is_host_source(op):
                continue
            node_key = self._node_key_of_op.get(id(op))
            key = node_key or f"host_{i}_{type(getattr(op, 'process', op)).__name__}"
            per_item = type(op).__name__ == "SimProcess"
            src = HostSource(key, op, tuple(op.output.shape), per_item)
            self.host_sources.append(src)
            self._host_key_of_op[id(op)] = key

    def _find_probes(self):
        self.probes: dict[str, nengo.Probe] = {}
        self._probe_view: dict[str, View] = {}
        for probe in self.model.probes:
            key = self.keys.key(probe) if self.keys.has(probe) else f"probe_{id(probe)}"
            self.probes[key] = probe
            self._probe_view[key] = self.layout.view(self.model.sig[probe]["in"])

    def _find_params(self):
        """Named constant float signals (encoders, biases, weights) become params."""
        self._params: dict[str, tuple[View | None, np.ndarray]] = {}
        self._param_base: dict[str, int] = {}
        self._base_params: dict[int, list[str]] = {}
        seen = set()
        for obj, sigs in self.model.sig.items():
            if not self.keys.has(obj):
                continue
            for attr, sig in sigs.items():
                if sig is None or not isinstance(attr, str):
                    continue
                bi = self.layout.base_index(sig)
                base = self.layout.bases[bi]
                if base.kind not in ("const", "param"):
                    continue
                if base.sparse:
                    if sig is not sig.base:
                        continue
                    value, view = base.init, None
                else:
                    if np.asarray(sig.initial_value).dtype.kind != "f":
                        continue
                    view = self.layout.view(sig)
                    value = self.layout.cast(sig.initial_value)
                ident = (bi, _view_signature(view, sig))
                if ident in seen:
                    continue
                seen.add(ident)
                key = self.keys.key(obj, attr)
                base.kind = "param"
                self._params[key] = (view, value)
                self._param_base[key] = bi
                self._base_params.setdefault(bi, []).append(key)

    def key(self, obj, attr: str | None = None) -> str:
        """Name of ``obj`` (a Probe, a Node) in probes/inputs, or of its parameter
        ``attr`` in params (``model.key(ens.neurons, "bias")``)."""
        return self.keys.key(obj, attr)

    # --- initial values ---------------------------------------------------------

    def init_params(self) -> dict[str, jax.Array]:
        """Initial parameters: encoders, biases, weights, ... as nengo built them."""
        return {k: jnp.asarray(v) for k, (_, v) in self._params.items()}

    def init_state(self, minibatch_size: int | None = None, seed: int | None = None):
        """Initial state (batched along axis 0 when ``minibatch_size`` is given).

        ``seed`` selects the random streams (default: the compile seed).
        """
        seed = self.seed if seed is None else int(seed)
        if not 0 <= seed < 2**32:
            raise ValidationError(f"seed must be in [0, 2**32) (got {seed})", attr="seed")
        signals = {b.key: jnp.asarray(b.init) for b in self.layout.bases if b.kind == "state"}
        state = {
            "signals": signals,
            "rng": _prng_key(seed),
            "stream": jnp.asarray(0, jnp.int32),
            "seed": jnp.asarray(np.uint32(seed), jnp.uint32),
        }
        if minibatch_size is None:
            return state
        k = int(minibatch_size)
        if k < 1:
            raise ValidationError(
                f"minibatch_size must be >= 1 (got {minibatch_size})", attr="minibatch_size"
            )
        batched = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (k, *x.shape)), state)
        batched["stream"] = jnp.arange(k, dtype=jnp.int32)
        batched["rng"] = jax.vmap(lambda i: jax.random.fold_in(_prng_key(seed), i))(jnp.arange(k))
        return batched

    # --- host sources -------------------------------------------------------------

    def _stream(self, seed: int, stream: int) -> HostStream:
        key = (int(seed), int(stream))
        if key not in self._streams:
            self._streams[key] = HostStream(
                self.host_sources, self.step_order, self.dt, stream_seed(seed, stream)
            )
        return self._streams[key]

    def clear_host_cache(self) -> None:
        """Forget host-source values computed so far (Node functions are called
        again for steps asked for later)."""
        self._streams.clear()

    def host_values(self, start: int, n_steps: int, seed, streams) -> dict:
        """Host source values for steps ``start .. start+n_steps`` (NumPy).

        Shared sources (Node functions) have shape ``(n_steps, *shape)``;
        per-item sources (random processes) ``(len(streams), n_steps, *shape)``,
        or ``(n_steps, *shape)`` when ``streams`` is an int. ``seed`` is one seed
        or one per item (stacked states of different seeds).
        """
        single = np.ndim(streams) == 0
        streams = [int(streams)] if single else [int(s) for s in np.ravel(streams)]
        seeds = np.broadcast_to(np.ravel(seed), (len(streams),)) if np.ndim(seed) else None
        seeds = [int(seed)] * len(streams) if seeds is None else [int(x) for x in seeds]
        out = {}
        for src in self.host_sources:
            if src.per_item:
                vals = [
                    self._stream(sd, st).values(src.key, start, n_steps)
                    for sd, st in zip(seeds, streams, strict=True)
                ]
                arr = vals[0] if single else np.stack(vals)
            else:
                arr = self._stream(seeds[0], 0).values(src.key, start, n_steps)
            out[src.key] = arr.astype(self.float_dtype)
        return out

    def _host_struct(self, n_steps, batch):
        structs = {}
        for src in self.host_sources:
            shape = (n_steps, *src.shape)
            if src.per_item and batch is not None:
                shape = (batch, *shape)
            structs[src.key] = jax.ShapeDtypeStruct(shape, self.float_dtype)
        return structs

    def _host_for(self, state, n_steps):
        """Host values for a run starting at ``state`` (a callback when traced)."""
        if not self.host_sources:
            return {}
        step = self._state_step(state)
        batch = state["stream"].shape[0] if np.ndim(state["stream"]) else None
        concrete = not any(
            isinstance(x, jax.core.Tracer) for x in (step, state["stream"], state["seed"])
        )
        if concrete:
            start = np.ravel(np.asarray(step))[0]
            seed = np.asarray(state["seed"])
            return self.host_values(int(start), n_steps, seed, np.asarray(state["stream"]))

        def cb(step, stream, seed):
            return self.host_values(int(np.ravel(step)[0]), n_steps, seed, stream)

        # "sequential": under jax.vmap (e.g. over stacked states of several
        # seeds) each item's values come from its own seed and stream
        return jax.pure_callback(
            cb,
            self._host_struct(n_steps, batch),
            step,
            state["stream"],
            state["seed"],
            vmap_method="sequential",
        )

    def _state_step(self, state):
        b = self.layout.bases[self.layout.base_index(self.model.step)]
        return state["signals"][b.key].reshape(state["stream"].shape)

    # --- the step -------------------------------------------------------------------

    def _pack(self, params, consts, xp=jnp):
        """Flat base arrays of all constants, with params written into them.

        Runs once per `run`, outside the scan: params stay out of the carry.
        Contiguous params are concatenated (with the constant gaps between them),
        which compiles much faster than a chain of scatters. With ``xp=numpy``
        it runs on the host (no compile at all; see `_packed_on_host`).
        """
        packed = {}
        for b in self.layout.bases:
            if b.kind == "const":
                packed[b.index] = consts[b.key]
            elif b.kind == "param":
                packed[b.index] = self._pack_base(b, params, consts, xp)
        return packed

    def _pack_base(self, b, params, consts, xp):
        keys = self._base_params[b.index]
        values = {k: xp.asarray(params[k], self.float_dtype).ravel() for k in keys}
        for key in keys:
            view, _ = self._params[key]
            if view is None or view.full:
                return values[key]
        contiguous = sorted(
            (self._params[k][0].start, self._params[k][0].stop, k)
            for k in keys
            if self._params[k][0].index is None
        )
        pieces, pos = [], 0
        for start, stop, key in contiguous:
            if start < pos:  # overlapping views: write them one by one instead
                pieces = None
                break
            if start > pos:
                pieces.append(consts[b.key][pos:start])
            pieces.append(values[key])
            pos = stop
        if pieces is None:
            arr = consts[b.key]
            for start, stop, key in contiguous:
                arr = _set(xp, arr, slice(start, stop), values[key])
        else:
            if pos < b.init.size:
                pieces.append(consts[b.key][pos:])
            arr = xp.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        for key in keys:
            view = self._params[key][0]
            if view.index is not None:
                arr = _set(xp, arr, view.index.ravel(), values[key])
        return arr

    def _packed_on_host(self, params, to_device=True):
        """`_pack` with NumPy, remembered for the same param arrays.

        Concrete params (the Simulator's, or a user's outside any transform)
        are packed on the host: a jitted pack of thousands of params takes
        seconds to compile, and the packed arrays are few.
        """
        # only immutable (JAX) arrays can be recognised again by identity
        cacheable = all(isinstance(v, jax.Array) for v in params.values())
        ident = tuple((k, id(v)) for k, v in params.items())
        cached = getattr(self, "_host_pack", None)
        if cacheable and cached is not None and cached[0] == ident:
            return cached[2]
        host_params = {k: np.asarray(v) for k, v in params.items()}
        packed = self._pack(host_params, self._host_consts, xp=np)
        if not to_device:  # inside someone's trace: NumPy constants, nothing cached
            return packed
        packed = jax.device_put(packed)
        # keep the arrays alive so their ids stay theirs while cached
        if cacheable:
            self._host_pack = (ident, dict(params), packed)
        return packed

    def _step_item(self, packed, consts, state, host_row, input_row, mode="simulate"):
        values = dict(packed)
        for b in self.layout.bases:
            if b.kind == "state":
                values[b.index] = state["signals"][b.key]
            elif b.kind == "scratch":
                values[b.index] = consts[b.key]
        step_value = values[self.layout.base_index(self.model.step)][0]
        rng = jax.random.fold_in(state["rng"], step_value)
        env = StepEnv(self.layout, values, host_row, input_row, rng, self.dt)
        env.stream = state["stream"]
        for key, value in input_row.items():
            if key not in self._op_nodes:
                env.set(self._node_out[key], value)
        for apply in self._lowered(mode):
            apply(env)
        new_state = dict(state)
        new_state["signals"] = {
            b.key: values[b.index] for b in self.layout.bases if b.kind == "state"
        }
        probes = {k: env.read(v) for k, v in self._probe_view.items()}
        return new_state, probes

    def _run_item(self, packed, consts, state, inputs, host, n_steps, n_active, mode, remat):
        def step(carry, host_row, input_row):
            return self._step_item(packed, consts, carry, host_row, input_row, mode)

        if remat:  # memory-bounded backprop through time
            step = jax.checkpoint(step)

        def body(carry, xs):
            i, host_row, input_row = xs
            if n_active is None:
                return step(carry, host_row, input_row)

            def active(c):
                return step(c, host_row, input_row)

            def idle(c):
                return c, jax.tree_util.tree_map(
                    lambda s: jnp.zeros(s.shape, s.dtype), self._probe_struct()
                )

            return jax.lax.cond(i < n_active, active, idle, carry)

        xs = (jnp.arange(n_steps), host, inputs)
        return jax.lax.scan(body, state, xs, length=n_steps)

    def _probe_struct(self):
        return {
            k: jax.ShapeDtypeStruct(
                v.shape,
                self.layout.bases[v.base].init.dtype
                if not self.layout.bases[v.base].sparse
                else self.float_dtype,
            )
            for k, v in self._probe_view.items()
        }

    def _run_impl(
        self,
        params,
        consts,
        state,
        inputs,
        host,
        n_steps,
        n_active=None,
        mode="simulate",
        remat=False,
    ):
        packed = self._pack(params, consts)
        return self._run_packed(
            packed, consts, state, inputs, host, n_steps, n_active, mode, remat
        )

    def _run_packed(
        self,
        packed,
        consts,
        state,
        inputs,
        host,
        n_steps,
        n_active=None,
        mode="simulate",
        remat=False,
    ):
        def run_item(st, inp, h):
            return self._run_item(packed, consts, st, inp, h, n_steps, n_active, mode, remat)

        if state["stream"].ndim == 0:
            return run_item(state, inputs, host)
        host_axes = {s.key: (0 if s.per_item else None) for s in self.host_sources}
        return jax.vmap(run_item, in_axes=(0, 0, host_axes))(state, inputs, host)

    def _dispatch(self, params, state, inputs, host, **kwargs):
        """Run with params packed on the host when they are concrete, else in the
        trace (so jax.grad/vmap of params reach every entry)."""
        if any(isinstance(v, jax.core.Tracer) for v in params.values()):
            return self._run_jit(params, self._consts, state, inputs, host, **kwargs)
        packed = self._packed_on_host(params, to_device=_outside_any_trace())
        return self._run_packed_jit(packed, self._consts, state, inputs, host, **kwargs)

    # --- public pure API -----------------------------------------------------------

    def _check_inputs(self, inputs, n_steps, batch):
        inputs = {} if inputs is None else dict(inputs)
        out = {}
        for k, v in inputs.items():
            key = self.key(k) if not isinstance(k, str) else k
            if key not in self.input_nodes:
                raise ValidationError(
                    f"inputs: {k!r} is not an input Node of this network (input "
                    f"Nodes: {sorted(self.input_nodes)})",
                    attr="inputs",
                )
            node = self.input_nodes[key]
            want = (n_steps, node.size_out) if batch is None else (batch, n_steps, node.size_out)
            if tuple(np.shape(v)) != want:
                raise ValidationError(
                    f"inputs for {node}: expected shape {want}, got {tuple(np.shape(v))}",
                    attr="inputs",
                )
            out[key] = jnp.asarray(v, self.float_dtype)
        return out

    def run(
        self,
        params,
        state,
        n_steps: int,
        inputs=None,
        mode: str = "simulate",
        remat: bool = False,
    ):
        """Run ``n_steps`` steps from ``state``; pure, so jit/vmap/grad apply.

        Parameters
        ----------
        params : dict
            From `init_params` (or trained).
        state : dict
            From `init_state` (batched or not) or a previous run.
        n_steps : int
            Number of time steps (static: each new value compiles once).
        inputs : dict, optional
            Input Node (or its key) -> values of shape ``(n_steps, size_out)``,
            ``(batch, n_steps, size_out)`` when ``state`` is batched.
        mode : str
            ``"simulate"``, or for training ``"rate"`` (spiking neurons run as
            their rate counterparts) or ``"spike_aware"`` (spiking forward, rate
            gradients backward).
        remat : bool
            Recompute each step in the backward pass (``jax.checkpoint``) so
            memory stays bounded for long sequences.

        Returns
        -------
        state : dict
            The state after the run.
        probes : dict
            ``probes[key]`` has shape ``(n_steps, *probe_shape)``, with a
            leading batch axis when ``state`` is batched.
        """
        n_steps = int(n_steps)
        batch = state["stream"].shape[0] if np.ndim(state["stream"]) else None
        inputs = self._check_inputs(inputs, n_steps, batch)
        host = self._host_for(state, n_steps)
        self._lowered(mode)
        return self._dispatch(params, state, inputs, host, n_steps=n_steps, mode=mode, remat=remat)

    def step(self, params, state, inputs=None):
        """One step; ``inputs`` values have shape ``(node.size_out,)`` (batched:
        ``(k, size_out)``). Returns ``(state, probes)`` without a time axis."""
        inputs = {} if inputs is None else inputs
        batched = np.ndim(state["stream"]) == 1
        inputs = {
            k: jnp.asarray(v)[:, None] if batched else jnp.asarray(v)[None]
            for k, v in inputs.items()
        }
        state, probes = self.run(params, state, 1, inputs)
        axis = 1 if batched else 0
        return state, {k: jnp.squeeze(v, axis) for k, v in probes.items()}

    def run_chunk(self, params, state, n_steps: int, n_active: int, inputs, host):
        """Run a scan of static length ``n_steps`` of which only the first
        ``n_active`` steps are active (so many run lengths share one compile).
        Used by the Simulator; inputs and host values are already prepared."""
        return self._dispatch(params, state, inputs, host, n_steps=n_steps, n_active=n_active)

    def signal_values(self, params, state) -> dict:
        """Current NumPy value of every base signal, keyed by nengo `.Signal`."""
        packed = jax.device_get(self._packed_on_host(params))
        out = {}
        for b in self.layout.bases:
            if b.kind == "state":
                flat = np.asarray(state["signals"][b.key])
            elif b.kind == "scratch":
                flat = b.init
            else:
                flat = np.asarray(packed[b.index])
            if b.sparse:
                out[b.signal] = flat
            else:
                out[b.signal] = flat.reshape(flat.shape[:-1] + tuple(b.signal.shape))
        return out

    def pop_callback_error(self):
        """The exception raised by a host callback during the last run, if any."""
        err = getattr(self._callback_errors, "error", None)
        self._callback_errors.error = None
        return err


MODES = ("simulate", "rate", "spike_aware")


class _OrderedSet(dict):
    """The set operations nengo's merge pass uses, iterating in insertion order."""

    def __init__(self, items=()):
        super().__init__((x, None) for x in items)

    def add(self, x):
        self[x] = None

    def remove(self, x):
        del self[x]

    def discard(self, x):
        self.pop(x, None)

    def difference_update(self, items):
        for x in items:
            self.pop(x, None)


@contextlib.contextmanager
def _nengo_optimizer_fixes():
    """Run nengo's operator merger with two fixes.

    - Read-only signals (biases, encoders, weights) are not merged with written
      ones: a merged base would be state, and the constants in it lost as params.
    - The operators that may merge are kept in build order, not in a set ordered
      by object identity, so every build of a network gets the same layout (the
      same state and param layout in every process of a multi-host run).
    """
    original_check = SigMerger.check_signals
    original_init = OpMergePass.__init__

    def check_signals(signals, axis=0):
        if len({bool(s.readonly) for s in signals}) > 1:
            raise ValueError("Cannot merge read-only and writable signals.")
        return original_check(signals, axis=axis)

    def init(self, dg):
        original_init(self, dg)
        self.might_merge = _OrderedSet(dg)

    SigMerger.check_signals = staticmethod(check_signals)
    OpMergePass.__init__ = init
    try:
        yield
    finally:
        SigMerger.check_signals = staticmethod(original_check)
        OpMergePass.__init__ = original_init


class _ErrorSlot:
    """Holds the exception of a failed host callback until the caller re-raises it."""

    error = None


def stable_toposort(dg: dict, operators: list) -> list:
    """Operators in dependency order, ties broken by build order.

    nengo's own toposort breaks ties by object hash, which changes between
    processes; this order is the same for every compile of the same network.
    """
    rank = {id(op): i for i, op in enumerate(operators)}
    for op in dg:
        rank.setdefault(id(op), len(rank))
    indegree = {op: 0 for op in dg}
    for succs in dg.values():
        for succ in succs:
            indegree[succ] = indegree.get(succ, 0) + 1
    ready = [(rank[id(op)], id(op), op) for op, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, op = heapq.heappop(ready)
        order.append(op)
        for succ in dg.get(op, ()):
            indegree[succ] -= 1
            if indegree[succ] == 0:
                heapq.heappush(ready, (rank.setdefault(id(succ), len(rank)), id(succ), succ))
    if len(order) != len(indegree):
        raise BuildError(
            "Input graph has cycles. This usually occurs because too many connections "
            "have no synapses. Try setting more synapses to '0' instead of 'None'."
        )
    return order


def _outside_any_trace() -> bool:
    """Whether we run eagerly, not inside someone's jit/vmap/grad trace."""
    from jax._src import core  # no public equivalent in JAX 0.4-0.10

    return core.trace_state_clean()


def _set(xp, arr, index, value):
    """``arr[index] = value`` for NumPy (a copy) or JAX arrays."""
    if xp is jnp:
        return arr.at[index].set(value)
    arr = np.array(arr, copy=True)
    arr[index] = value
    return arr


def _prng_key(seed: int) -> jax.Array:
    """A PRNG key from a seed in [0, 2**32)."""
    return jax.random.PRNGKey(np.uint32(seed))


def _signature(sig):
    idx = flat_index(sig) if sig.is_view else None
    return (id(sig.base), None if idx is None else tuple(idx.ravel().tolist()), sig.shape)


def _view_signature(view, sig):
    if view is None:
        return ("sparse",)
    if view.index is None:
        return (view.start, view.stop, view.shape)
    return (tuple(view.index.ravel().tolist()), view.shape)


def compile(  # noqa: A001
    network: nengo.Network,
    dt: float = 0.001,
    seed: int | None = None,
    model: Model | None = None,
    dtype=None,
    optimize: bool = True,
) -> CompiledNetwork:
    """Compile a nengo network into pure JAX functions.

    Parameters
    ----------
    network : nengo.Network
        The network to compile.
    dt : float
        Time step in seconds.
    seed : int, optional
        Seed of the random streams (noise and input processes); defaults to
        ``network.seed + 1`` like ``nengo.Simulator``.
    model : nengo.builder.Model, optional
        A model to build into (for pre-built models).
    dtype : str or numpy.dtype, optional
        ``"float32"`` (default) or ``"float64"`` (needs JAX's x64 mode).
    optimize : bool
        Merge operators with nengo's optimizer (faster steps and compiles).

    Returns
    -------
    CompiledNetwork
    """
    return CompiledNetwork(network, dt=dt, seed=seed, model=model, dtype=dtype, optimize=optimize)


__all__ = ["CompiledNetwork", "compile"]
