"""Lowering of `.SimProcess`: synapses in JAX, input-free processes from the host."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from nengo.builder.processes import SimProcess
from nengo.synapses import LinearFilter

from ..compiler.merge import MergedLinearFilter
from .access import MergedAccess
from .hostcall import host_call
from .registry import register_lowering


def _filter_step(A, B, C, D, X, u, precision):
    """One step of a discrete LTI system, ordered exactly as nengo's step classes.

    ``A, B, C, D`` are NumPy arrays. Returns ``(X, y)``.
    """
    if len(A) == 1 and (D == 0).all():  # OneX: x = a x + (b c) u; y = x
        a, bc = A.reshape(-1)[0], C.reshape(-1)[0] * B.reshape(-1)[0]  # dtype scalars
        X = a * X + bc * u
        return X, X[0]
    Bcol = B.reshape(B.shape[:1] + (1,) * (X.ndim - 1))
    if (D == 0).all():  # NoD: input advanced one step
        X = jnp.tensordot(A, X, axes=1, precision=precision) + Bcol * u
        return X, jnp.tensordot(C, X, axes=1, precision=precision)[0]
    y = jnp.tensordot(C, X, axes=1, precision=precision)[0] + D.item() * u
    X = jnp.tensordot(A, X, axes=1, precision=precision) + Bcol * u
    return X, y


def lower_linear_filter(op, ctx):
    """`.LinearFilter` (Lowpass, Alpha, Triangle, any order) as nengo discretizes it."""
    dtype = ctx.layout.float_dtype
    precision = ctx.precision
    A, B, C, D = (np.asarray(m, dtype=dtype) for m in op.process._get_ss(ctx.dt))
    X_sig = op.state.get("X")
    if A.size == 0:  # no state: a pure gain
        d = D.item()

        def apply(env):
            env.write(op.output, d * env.read(op.input), op.mode)

        return apply

    def apply(env):
        X, y = _filter_step(A, B, C, D, env.read(X_sig), env.read(op.input), precision)
        env.set(X_sig, X)
        env.write(op.output, y, op.mode)

    return apply


@register_lowering(MergedLinearFilter)
def lower_merged_linear_filter(op, ctx):
    dtype = ctx.layout.float_dtype
    precision = ctx.precision
    inputs = MergedAccess(ctx.layout, op.inputs)
    outputs = MergedAccess(ctx.layout, op.outputs)
    sizes = [s.size for s in op.inputs]
    A0, B0, C0, D0 = op.systems[0]
    one_x = len(A0) == 1 and (D0 == 0).all()
    if one_x:  # per-element coefficients: Lowpass filters of any time constant
        pairs = list(zip(sizes, op.systems, strict=True))
        a = np.concatenate([np.full(n, A.item()) for n, (A, _, _, _) in pairs]).astype(dtype)
        bc = np.concatenate([np.full(n, C.item() * B.item()) for n, (_, B, C, _) in pairs])
        bc = bc.astype(dtype)
    else:  # identical systems
        system = tuple(np.asarray(m, dtype=dtype) for m in (A0, B0, C0, D0))

    def apply(env):
        u = inputs.read(env)
        X = env.read(op.X)
        if one_x:
            X = a * X + bc * u
            y = X[0]
        else:
            X, y = _filter_step(*system, X, u, precision)
        env.set(op.X, X)
        outputs.write(env, y, inc=op.mode == "inc")

    return apply


def lower_host_process(op, ctx):
    """A process with input but no JAX lowering: its NumPy step on the host."""
    warning = (
        op,
        f"{op.process} (process) has no JAX lowering; it runs through a host callback "
        "every time step (slow, and not differentiable)",
    )
    out_shape = tuple(op.output.shape)
    dtype = ctx.float_dtype
    dt = ctx.dt

    def make(stream):
        state = {n: np.array(s.initial_value, copy=True) for n, s in op.state.items()}
        rng = np.random.RandomState(ctx.seed_for_stream(stream))
        return op.process.make_step(tuple(op.input.shape), out_shape, dt, rng, state)

    def host(step, process_step, x):
        y = process_step(step * dt, np.array(x, dtype=np.float64))
        return np.asarray(y, dtype=dtype).reshape(out_shape)

    call = host_call(
        ctx, host, jax.ShapeDtypeStruct(out_shape, dtype), per_stream=make, warning=warning
    )

    def apply(env):
        env.write(op.output, call(env, env.read(op.input)), op.mode)

    return apply


@register_lowering(SimProcess)
def lower_sim_process(op, ctx):
    if op.input is None:
        key = ctx.host_key(op)

        def apply(env):
            env.write(op.output, env.host[key], op.mode)

        return apply
    if isinstance(op.process, LinearFilter):
        return lower_linear_filter(op, ctx)
    return lower_host_process(op, ctx)
