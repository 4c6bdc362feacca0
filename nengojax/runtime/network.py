"""`CompiledNetwork`: a nengo network as pure JAX functions."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import nengo
import numpy as np
from nengo.builder import Model
from nengo.builder.operator import SimPyFunc
from nengo.exceptions import ValidationError

from .. import ops  # noqa: F401  (registers the lowerings)
from ..compiler.host import HostValues
from ..compiler.program import Program
from ..config import get_setting, keeps_history
from ..dtypes import to_device
from ..ops.context import MODES, PRECISIONS, CallbackErrors, LoweringContext
from ..ops.host_target import HANDLE_KEY, HostTable
from ..ops.learning import rank_one_deltas
from ..ops.pyfunc import calls_observable
from ..ops.step import StepFunction
from ..validation import integer
from .host import host_axes, host_inputs, host_structs
from .memory import check_memory
from .params import ParamPacker
from .run import scan_steps
from .state import batch_size, init_state, is_batched
from .xla_options import jit


class CompiledNetwork:
    """A nengo network compiled into pure JAX functions.

    Static structure (a `.Program`: signal layout, operator schedule, keys)
    lives in this object; dynamic values live in two pytrees, ``params``
    (encoders, biases, weights, ...; shared across a minibatch) and ``state``
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
        precision: str = "highest",
        unroll: int = 1,
    ):
        if precision not in PRECISIONS:
            raise ValidationError(
                f"precision must be one of {sorted(PRECISIONS)} (got {precision!r})",
                attr="precision",
            )
        self.precision = precision
        self.unroll = integer(unroll, "unroll", 1)
        factors = functools.partial(rank_one_deltas, platform=jax.default_backend())
        self.program = program = Program(
            network, dt, seed, model, dtype, optimize, key_network, merge, factors
        )
        check_memory(program)  # before any device array is made
        self.errors = CallbackErrors()
        self.host_table = HostTable()  # the host calls of every step function (CPU)
        self._steps: dict[str, StepFunction] = {}
        self.live_python = False
        # lowering errors surface at compile time; if some operator calls the
        # host every step, user functions of time must be called in the step too
        user_time_functions = any(
            isinstance(s.op, SimPyFunc) and calls_observable(s.op.fn) for s in program.host_sources
        )
        if self.step_function("simulate").ctx.uses_host_calls and user_time_functions:
            self.live_python = True
            self._steps.clear()
            self.step_function("simulate")
        self.live_keys = frozenset(self._steps["simulate"].ctx.live_keys)
        self.packer = ParamPacker(program)
        if self._steps["simulate"].ctx.uses_host_calls:  # an argument: programs stay cacheable
            self.packer.consts[HANDLE_KEY] = to_device(np.int32(self.host_table.handle))
        dt, float_dtype = program.dt, program.float_dtype
        self.host = HostValues(program.host_sources, program.step_order, dt, float_dtype)
        bases = program.layout.bases
        self._probe_struct = {
            k: jax.ShapeDtypeStruct(
                v.shape, float_dtype if bases[v.base].sparse else bases[v.base].init.dtype
            )
            for k, v in program.probe_views.items()
        }
        static = ("n_steps", "mode", "remat", "early_exit", "sampled")
        self._run_jit = jax.jit(self._run_with_params, static_argnames=static)
        self._checked_params = None
        self._last_step_probes = None
        self._trusted = None  # identity of the state the last run returned
        self._run_packed_jit = jit(self._run_packed, static_argnames=static)

    # --- what was built --------------------------------------------------------------

    @property
    def dt(self) -> float:
        """The time step."""
        return self.program.dt

    @property
    def seed(self) -> int:
        """The default seed of the random streams."""
        return self.program.seed

    @property
    def float_dtype(self) -> np.dtype:
        """The compute dtype of float signals."""
        return self.program.float_dtype

    @property
    def network(self) -> nengo.Network | None:
        """The network compiled."""
        return self.program.network

    @property
    def model(self) -> Model:
        """nengo's built model."""
        return self.program.model

    @property
    def step_order(self) -> list:
        """The operators in the order they run each step."""
        return self.program.step_order

    @property
    def layout(self):
        """Where every signal lives (`.SignalLayout`)."""
        return self.program.layout

    @property
    def keys(self):
        """The names of the network's objects (`.KeyMap`)."""
        return self.program.keys

    @property
    def input_nodes(self) -> dict:
        """Key -> Node whose output can be given at run time."""
        return self.program.input_nodes

    @property
    def probes(self) -> dict:
        """Key -> Probe."""
        return self.program.probes

    @property
    def last_step_probes(self) -> frozenset:
        """Keys of the probes that keep only their last step (NengoDL's
        ``keep_history=False``, `nengojax.config.configure_settings`)."""
        if self._last_step_probes is None:
            net = self.network
            self._last_step_probes = frozenset(
                k for k, p in self.probes.items() if not keeps_history(net, p)
            )
        return self._last_step_probes

    @property
    def host_sources(self) -> list:
        """The operators computed on the host ahead of each run."""
        return self.program.host_sources

    def key(self, obj, attr: str | None = None) -> str:
        """Name of ``obj`` (a Probe, a Node) in probes/inputs, or of its parameter
        ``attr`` in params (``model.key(ens.neurons, "bias")``).

        ``key(ens, "bias")`` is the bias of ``ens.neurons``, as
        ``sim.data[ens].bias``. A signal that nengo's operator merger stored in
        one place with another param's (equal scalar transforms of merged
        connections) gives that param's key: they are one value, trained as one.
        An ``attr`` that names no param raises a
        `nengo.exceptions.ValidationError` saying why.
        """
        program = self.program
        if attr is None:
            return program.key(obj)
        key = program.param_key(obj, attr)  # a tied signal: the param holding it
        if key in program.params:
            return key
        if attr == "bias" and isinstance(obj, nengo.Ensemble):
            alt = program.key(obj.neurons, "bias")
            if alt in program.params:
                return alt
        prefix = program.key(obj) + "."
        mine = sorted(k[len(prefix) :] for k in program.params if k.startswith(prefix))
        if attr == "gain" and isinstance(obj, (nengo.Ensemble, nengo.ensemble.Neurons)):
            why = "the gain is not a param: nengo folds it into the scaled encoders"
        elif program.model.sig.get(obj, {}).get(attr) is not None:
            why = (
                f"{attr!r} is simulation state (changed by a learning rule, or put in one "
                "array with state by nengo's operator merger), not a param"
            )
        else:
            why = f"it has no param {attr!r}"
        raise ValidationError(f"{obj}: {why} (its params: {mine})", attr="attr", obj=obj)

    def host_objects(self) -> list[str]:
        """The objects whose NumPy code runs on the host every step (callbacks)."""
        return sorted(self.errors.warned_objects)

    def step_function(self, mode: str = "simulate") -> StepFunction:
        """The lowered step for one neuron ``mode`` (made once per mode).

        ``"simulate"`` runs every neuron type as itself; ``"rate"`` runs spiking
        types as their rate counterparts and ``"spike_aware"`` spikes forward but
        differentiates through the rate counterpart (both for training).
        """
        if mode not in MODES:
            raise ValidationError(f"mode must be one of {MODES} (got {mode!r})", attr="mode")
        if mode not in self._steps:
            ctx = LoweringContext(
                self.program,
                neuron_mode=mode,
                precision=self.precision,
                lif_smoothing=get_setting(self.program.toplevel, "lif_smoothing", None),
                errors=self.errors,
                live_python=self.live_python,
                host_table=self.host_table,
            )
            self._steps[mode] = StepFunction(self.program, ctx)
        return self._steps[mode]

    # --- initial values ------------------------------------------------------------------

    def init_params(self) -> dict[str, jax.Array]:
        """Initial parameters: encoders, biases, weights, ... as nengo built them."""
        return {k: to_device(p.init) for k, p in self.program.params.items()}

    def init_state(self, minibatch_size: int | None = None, seed: int | None = None):
        """Initial state (batched along axis 0 when ``minibatch_size`` is given).

        ``seed`` selects the random streams (default: the compile seed).
        """
        return init_state(self.program, minibatch_size, seed)

    # --- host sources ---------------------------------------------------------------------

    def clear_host_cache(self) -> None:
        """Forget host-source values computed so far (Node functions are called
        again for steps asked for later)."""
        self.host.clear()

    def host_values(self, start: int, n_steps: int, seed, streams) -> dict:
        """Host source values for steps ``start .. start+n_steps`` (NumPy); see
        `.HostValues.values`."""
        return self.host.values(start, n_steps, seed, streams)

    def host_inputs(self, state, n_steps: int, skip=(), pad_to=None) -> dict:
        """Host values for a run of ``n_steps`` from ``state`` (see
        `nengojax.runtime.host.host_inputs`); sources called in the step
        (`live_keys`) and those in ``skip`` are not computed."""
        skip = self.live_keys.union(skip)
        return host_inputs(self.program, self.host, state, n_steps, skip, pad_to)

    # --- running ---------------------------------------------------------------------------

    def _run_packed(self, packed, consts, run_args, n_steps, mode, remat, early_exit, sampled):
        state, inputs, host, n_active, slots = run_args
        step = self.step_function(mode)
        return scan_steps(
            step,
            step.prepare(packed),
            consts,
            state,
            inputs,
            host,
            n_steps,
            self._probe_struct,
            is_batched(state),
            host_axes(self.program, host),
            n_active=n_active,
            remat=remat,
            unroll=self.unroll,
            stop_at_fault=step.ctx.checks_finite or step.ctx.uses_host_calls,
            undo_faulty_step=step.ctx.uses_host_calls,
            time_major=step.ctx.uses_host_calls,
            early_exit=early_exit,
            sampled=dict(sampled),
            slots=slots,
        )

    def _run_with_params(self, params, consts, *args, **kwargs):
        packed = self.packer.pack(params, consts)
        return self._run_packed(packed, consts, *args, **kwargs)

    def check_params(self, params) -> None:
        """Every param present, with its shape; no unknown key (a typo in a
        sweep would otherwise change nothing). Raises `ValidationError`."""
        if not isinstance(params, Mapping):
            raise ValidationError(
                f"params must be a dict (from init_params), got {type(params).__name__}",
                attr="params",
            )
        ident = tuple((k, id(v)) for k, v in params.items())
        if self._checked_params is not None and self._checked_params[0] == ident:
            return
        spec = self.program.params
        unknown = sorted(set(params) - set(spec))
        if unknown:
            raise ValidationError(
                f"params: unknown keys {unknown} (not params of this network; see "
                "model.key(obj, attr))",
                attr="params",
            )
        missing = sorted(set(spec) - set(params))
        if missing:
            raise ValidationError(f"params: missing keys {missing}", attr="params")
        for key, p in spec.items():
            shape = tuple(np.shape(params[key]))
            if shape != tuple(np.shape(p.init)):
                raise ValidationError(
                    f"params[{key!r}]: expected shape {tuple(np.shape(p.init))}, got {shape}",
                    attr="params",
                )
        if all(
            isinstance(v, jax.Array) and not isinstance(v, jax.core.Tracer)
            for v in params.values()
        ):  # immutable arrays: the same ids are the same values (kept alive here)
            self._checked_params = (ident, dict(params))

    def check_state(self, state) -> None:
        """``state`` comes from this network (`init_state` or a run of it)."""
        if self._trusted is not None and self._trusted[0] == _identity(state)[0]:
            return  # the state the last run returned, unchanged (fast single steps)
        try:
            signals = state["signals"]
            ok = {"signals", "rng", "stream", "seed", "fault"} <= set(state)
        except (TypeError, KeyError):
            ok = False
        if not ok:
            raise ValidationError(
                "state must be a dict from init_state (or a run) of this network",
                attr="state",
            )
        lead = tuple(np.shape(state["stream"]))
        for b in self.program.layout.bases:
            if b.kind != "state":
                continue
            got = tuple(np.shape(signals[b.key])) if b.key in signals else None
            if got != lead + tuple(np.shape(b.carried_init)):
                raise ValidationError(
                    f"state does not come from this network (signal {b.key!r} has shape "
                    f"{got}, expected {lead + tuple(np.shape(b.carried_init))}); use init_state",
                    attr="state",
                )
        if len(signals) != len(self.program.layout.by_kind("state")):
            raise ValidationError(
                "state does not come from this network (other signals); use init_state",
                attr="state",
            )

    def check_inputs(self, inputs, n_steps: int, batch: int | None) -> dict:
        """``inputs`` as ``{node key: float array}``, checked against the input
        Nodes and the expected shape ``([batch,] n_steps, size_out)``."""
        out = {}
        for k, v in ({} if inputs is None else dict(inputs)).items():
            key = self.key(k) if not isinstance(k, str) else k
            if key not in self.program.input_nodes:
                raise ValidationError(
                    f"inputs: {k!r} is not an input Node of this network (input "
                    f"Nodes: {sorted(self.program.input_nodes)})",
                    attr="inputs",
                )
            node = self.program.input_nodes[key]
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
        *,
        n_active=None,
        host=None,
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
            ``(batch, n_steps, size_out)`` when ``state`` is batched. Nodes
            given here are not computed (their functions are not called).
        mode : str
            ``"simulate"``, or for training ``"rate"`` (spiking neurons run as
            their rate counterparts) or ``"spike_aware"`` (spiking forward, rate
            gradients backward).
        remat : bool
            Recompute each step in the backward pass (``jax.checkpoint``) so
            memory stays bounded for long sequences.
        n_active : int, optional
            Run only the first ``n_active`` of the ``n_steps`` steps (the rest
            give zeros and leave the state): runs of many lengths then share one
            compiled scan.
        host : dict, optional
            Host-source values, already computed for this run (see
            `host_inputs`); computed here when not given.

        Returns
        -------
        state : dict
            The state after the run.
        probes : dict
            ``probes[key]`` has shape ``(n_steps, *probe_shape)``, with a
            leading batch axis when ``state`` is batched.
        """
        return self._run(params, state, n_steps, inputs, mode, remat, n_active, host, False, None)

    def _run(self, params, state, n_steps, inputs, mode, remat, n_active, host, early_exit, slots):
        n_steps = integer(n_steps, "n_steps", 0)
        if self.float_dtype == np.float64 and not jax.config.jax_enable_x64:
            raise ValidationError(
                "this network was compiled for float64, but JAX's x64 mode is now off: "
                "call jax.config.update('jax_enable_x64', True) again",
                attr="dtype",
            )
        self.check_params(params)
        self.check_state(state)
        inputs = self.check_inputs(inputs, n_steps, batch_size(state))
        self.step_function(mode)
        if host is None:
            if n_active is None:
                host = self.host_inputs(state, n_steps, inputs.keys())
            else:
                host = self.host_inputs(state, int(n_active), inputs.keys(), pad_to=n_steps)
        run = (n_steps, mode, remat, early_exit)
        args, kwargs = _scan_args(state, inputs, host, n_active, slots, *run)
        consts = self.packer.consts
        if any(isinstance(v, jax.core.Tracer) for v in params.values()):
            consts = self.packer.with_param_bases(consts)  # traced params pack in the jit
            return self._run_jit(params, consts, args, **kwargs)
        packed = self.packer.pack_on_host(params)
        out = self._run_packed_jit(packed, consts, args, **kwargs)
        if not isinstance(out[0]["stream"], jax.core.Tracer):  # not inside a transform
            self._trusted = _identity(out[0])
        return out

    def step(self, params, state, inputs=None):
        """One step; ``inputs`` values have shape ``(node.size_out,)`` (batched:
        ``(k, size_out)``). Returns ``(state, probes)`` without a time axis."""
        batched = is_batched(state)
        inputs = {
            k: jnp.asarray(v)[:, None] if batched else jnp.asarray(v)[None]
            for k, v in ({} if inputs is None else inputs).items()
        }
        state, probes = self.run(params, state, 1, inputs)
        return state, {k: jnp.squeeze(v, 1 if batched else 0) for k, v in probes.items()}

    def run_chunk(self, params, state, n_steps: int, n_active: int, inputs, host, slots=None):
        """`run` of the first ``n_active`` of ``n_steps`` steps, inputs and host
        values already prepared (for the Simulator): a loop that stops after
        ``n_active`` steps (probe rows past them are zeros), compiled once for
        every ``n_active``; not reverse-differentiable, unlike `run`.

        A host callback that raises makes its step a fault (the state's
        ``"fault"``; see `.pop_callback_error`) and the loop stops there.

        ``slots`` maps a probe key to ``(n_rows, rows)``: the probe's output
        has ``n_rows`` rows and step ``i`` writes row ``rows[i]`` (see
        `.scan_steps`'s ``sampled``); ``n_rows`` is part of what is compiled.
        """
        # a failing host callback stops the loop instead of failing the whole
        # run (`.CallbackErrors`); its callbacks run before the result is ready
        self.errors.stop_quietly = True
        try:
            out = self._run(
                params, state, n_steps, inputs, "simulate", False, n_active, host, True, slots
            )
            return jax.block_until_ready(out)
        finally:
            self.errors.stop_quietly = False

    def compile_chunk(self, packed, state, n_steps: int) -> None:
        """Compile the loop `run_chunk` runs for ``n_steps`` (no run-time data,
        no sampled probes) without running it: e.g. in a background thread,
        ahead of the calls that use it. ``packed`` is ``packer.pack_on_host(params)``.
        Calls no host function and changes nothing a run reads."""
        n_steps = integer(n_steps, "n_steps", 1)
        skip = self.live_keys
        structs = host_structs(self.program, n_steps, batch_size(state), skip)
        host = {k: np.zeros(s.shape, s.dtype) for k, s in structs.items()}
        args, kwargs = _scan_args(state, {}, host, 0, None, n_steps, "simulate", False, True)
        self._run_packed_jit.compile(packed, self.packer.consts, args, **kwargs)

    def signal_values(self, params, state) -> dict:
        """Current NumPy value of every base signal, keyed by nengo `.Signal`."""
        packed = jax.device_get(self.packer.pack_on_host(params))
        out = {}
        for b in self.program.layout.bases:
            if b.kind == "state":
                flat = b.whole(np.asarray(state["signals"][b.key]))
            elif b.kind == "scratch":
                flat = b.init
            else:
                flat = np.asarray(packed[b.index]).ravel()
            if b.sparse:
                out[b.signal] = flat
                continue
            for sig, offset in b.members:  # the nengo bases a coalesced array holds
                part = flat[..., offset : offset + sig.size]
                out[sig] = part.reshape(part.shape[:-1] + tuple(sig.shape))
        return out

    def pop_callback_error(self):
        """The exception raised by a host callback during the last run, if any."""
        return self.errors.pop()


def compile(  # noqa: A001
    network: nengo.Network,
    dt: float = 0.001,
    seed: int | None = None,
    model: Model | None = None,
    dtype=None,
    optimize: bool = True,
    precision: str = "highest",
    unroll: int = 1,
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
    precision : str
        Matmul precision: ``"highest"`` (default, matches nengo), ``"high"``
        or ``"default"`` (TF32 on GPUs: faster, less exact).
    unroll : int
        Time steps per iteration of the compiled loop (``lax.scan``'s
        ``unroll``): results are identical; larger values trade compile time
        for fewer loop iterations.

    Returns
    -------
    CompiledNetwork
    """
    return CompiledNetwork(
        network, dt, seed, model, dtype, optimize, precision=precision, unroll=unroll
    )


__all__ = ["CompiledNetwork", "compile"]


def _scan_args(state, inputs, host, n_active, slots, n_steps, mode, remat, early_exit) -> tuple:
    """The run arguments and static keywords of the jitted runs, made in this
    one place: `CompiledNetwork.compile_chunk` must compile
    the very program a run then calls. ``slots`` maps a probe key to
    ``(n_rows, rows)`` (see `run_chunk`)."""
    slots = slots or {}
    sampled = tuple(sorted((k, n_rows) for k, (n_rows, _) in slots.items()))
    rows = {k: v for k, (_, v) in slots.items()}
    kwargs = dict(n_steps=n_steps, mode=mode, remat=remat, early_exit=early_exit, sampled=sampled)
    return (state, inputs, host, n_active, rows), kwargs


def _identity(state) -> tuple:
    """The ids of a state dict and of everything in it, with the objects (kept
    alive, so their ids stay theirs): equal only for the very same, unchanged
    state."""
    if not isinstance(state, Mapping) or not isinstance(state.get("signals"), Mapping):
        return ((), ())
    objs = (state, state["signals"], *state.values(), *state["signals"].values())
    return tuple(map(id, objs)), objs
