"""One step of a program: every operator's lowering, in step order."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from nengo.exceptions import BuildError

from ..compiler.program import Program
from .context import LoweringContext
from .env import StepEnv
from .host_target import HANDLE_KEY
from .hostop import has_numpy_step, lower_host_operator
from .inline import inline_jnp, users_lowering
from .ordering import after_value, marker, write_after_read
from .registry import OPERATORS, get_lowering


class StepFunction:
    """The pure step ``(packed, consts, state, host_row, input_row) -> (state, probes)``
    of one program in one neuron mode.

    Each operator is lowered once, here (errors surface at compile time). An
    operator writing the output of an input Node yields to run-time data for
    that Node: when ``input_row`` holds the Node's key, the Node's output is
    set from it and the operator (a Node function, process or JaxNode) does
    not run.

    Parameters
    ----------
    program : Program
        The static program.
    ctx : LoweringContext
        Options of the lowering (neuron mode, precision, platform, ...).
    """

    def __init__(self, program: Program, ctx: LoweringContext):
        self.program = program
        self.ctx = ctx
        self.applies = []  # (position in step order, apply)
        for position, op in enumerate(program.step_order):
            lower = OPERATORS.lookup(type(op), ctx.platform)
            if lower is None and has_numpy_step(op):  # one of the user's own operators
                lower = lower_host_operator
            apply = users_lowering(lower or get_lowering(op, ctx.platform))(op, ctx)
            if apply is None:
                continue
            key = program.node_key_of(op)
            if key is not None and key in program.input_nodes:
                apply = _yielding_to_data(apply, key, program.node_views[key])
            self.applies.append((position, apply))
        self.ties = write_after_read(program)
        # state bases of one multi-dimensional signal (a connection's learned
        # weights and their delta) are carried from step to step in its shape:
        # XLA:CPU fuses 2-D work into a flat loop-carried buffer 2-3x slower
        self.carry_shapes = {
            b.key: tuple(b.signal.shape)
            for b in program.layout.bases
            if b.kind == "state" and not b.sparse and b.signal.ndim > 1 and b.factors is None
        }
        self._readers = {j for bases in self.ties.values() for js in bases.values() for j in js}
        self._free_nodes = [k for k in program.input_nodes if k not in program.op_nodes]

    def prepare(self, packed: dict) -> dict:
        """``packed`` with the run-invariant values the lowerings asked for
        (`.LoweringContext.add_invariant`); called once per run, outside the
        loop over steps."""
        if not self.ctx.invariants:
            return packed

        def part(view, shape):
            arr = packed[view.base].reshape(-1)
            values = arr[view.start : view.stop] if view.index is None else arr[view.index]
            return values.reshape(shape)

        out = dict(packed)
        for key, (views, shape) in self.ctx.invariants.items():
            out[key] = jnp.stack([part(v, shape) for v in views])
        return out

    def __call__(self, packed, consts, state, host_row, input_row):
        """One step; each state signal comes back in the shape it came in."""
        # jax.numpy traced inline, the user's code as the user set jit (.inline)
        with inline_jnp():
            return self._step(packed, consts, state, host_row, input_row)

    def _step(self, packed, consts, state, host_row, input_row):
        program = self.program
        layout = program.layout
        # a param base may come as its param's own array (not flattened)
        invariants = {k: packed[k] for k in self.ctx.invariants}
        values = {i: v.reshape(-1) for i, v in packed.items() if i not in invariants}
        for b in layout.bases:
            if b.kind == "state":  # flat, as carried (`carry_shapes`), or as factors
                values[b.index] = b.whole(state["signals"][b.key].reshape(-1))
            elif b.kind == "scratch":
                values[b.index] = consts[b.key]
        step_value = values[layout.base_index(program.model.step)][0]

        def rng():
            return jax.random.fold_in(state["rng"], step_value)

        env = StepEnv(
            layout, values, host_row, input_row, rng, program.dt, state["stream"], invariants
        )
        env.host_handle = consts.get(HANDLE_KEY)  # host calls find their functions by it
        for key in self._free_nodes:  # Nodes no operator writes (constant outputs)
            if key in input_row:
                env.set(program.node_views[key], input_row[key])
        markers = {}
        for position, apply in self.applies:
            env.after = {
                b: after_value([markers[j] for j in js if j in markers], env.dtype_of(b))
                for b, js in self.ties.get(position, {}).items()
            }
            env.written = []
            apply(env)
            if position in self._readers:
                mark = marker(env.written)
                if mark is not None:
                    markers[position] = mark
        env.after, env.written = {}, []
        values = env.final_values()
        new_state = dict(state)
        new_state["signals"] = {
            b.key: _carried(b, values, env.factors).reshape(state["signals"][b.key].shape)
            for b in layout.bases
            if b.kind == "state"
        }
        checks = [(i, ~jnp.all(jnp.isfinite(v))) for i, v in env.checks]
        if getattr(env, "host_token", None) is not None:  # a host callback failed (-1)
            checks.append((-1, env.host_token < 0))
        if checks:  # the first step and operator with a non-finite value or failed call
            bad = jnp.stack([b for _, b in checks])
            index = jnp.asarray([i for i, _ in checks], jnp.int32)
            which = jnp.min(jnp.where(bad, index, jnp.iinfo(jnp.int32).max))
            new = jnp.stack([step_value.astype(jnp.int32), which])
            fault = state["fault"]
            new_state["fault"] = jnp.where((fault[0] < 0) & jnp.any(bad), new, fault)
        probes = {k: env.read(v) for k, v in program.probe_views.items()}
        return new_state, probes


def _carried(base, values, factors):
    """What the state carries of ``base`` after a step: its flat value, or the
    factors it was set to (`.StepEnv.set_outer`)."""
    if base.factors is None:
        return values[base.index]
    if base.index not in factors:
        raise BuildError(
            f"{base.signal} is carried as the factors of an outer product, but the "
            "lowering that sets it did not write it with StepEnv.set_outer"
        )
    return factors[base.index]


def _yielding_to_data(apply, key, view):
    def apply_or_data(env):
        if key in env.inputs:  # static: the keys of the inputs are known when tracing
            env.set(view, env.inputs[key])
        else:
            apply(env)

    return apply_or_data
