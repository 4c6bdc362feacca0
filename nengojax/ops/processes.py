"""Lowering of `.SimProcess`: synapses in JAX, input-free processes from the host."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from nengo.builder.processes import SimProcess
from nengo.synapses import LinearFilter

from ..compiler.registry import register_lowering
from .basic import HIGHEST


def lower_linear_filter(op, ctx):
    """`.LinearFilter` (Lowpass, Alpha, Triangle, any order) as nengo discretizes it."""
    A, B, C, D = op.process._get_ss(ctx.dt)
    dtype = ctx.layout.float_dtype
    A, B, C, D = (np.asarray(m, dtype=dtype) for m in (A, B, C, D))
    X_sig = op.state.get("X")
    if A.size == 0:  # no state: a pure gain
        d = D.item()

        def apply(env):
            env.write(op.output, d * env.read(op.input), op.mode)

        return apply

    one_x = len(A) == 1 and (D == 0).all()
    no_d = (D == 0).all()
    a, b, c, dd = A.item(0), (C.item(0) * B.item(0)), C, D.item()

    def apply(env):
        u = env.read(op.input)
        X = env.read(X_sig)
        if one_x:
            X = a * X + b * u
            y = X[0]
        elif no_d:
            X = (
                jnp.tensordot(A, X, axes=1, precision=HIGHEST)
                + B.reshape(B.shape[:1] + (1,) * (X.ndim - 1)) * u
            )
            y = jnp.tensordot(c, X, axes=1, precision=HIGHEST)[0]
        else:
            y = jnp.tensordot(c, X, axes=1, precision=HIGHEST)[0] + dd * u
            X = (
                jnp.tensordot(A, X, axes=1, precision=HIGHEST)
                + B.reshape(B.shape[:1] + (1,) * (X.ndim - 1)) * u
            )
        env.set(X_sig, X)
        env.write(op.output, y, op.mode)

    return apply


def lower_host_process(op, ctx):
    """A process with input but no JAX lowering: its NumPy step on the host."""
    ctx.warn_host(op.process, "process")
    out_shape = tuple(op.output.shape)
    dtype = ctx.layout.float_dtype
    steps = {}

    def make(stream):
        state = {n: np.array(s.initial_value, copy=True) for n, s in op.state.items()}
        rng = np.random.RandomState(ctx.seed_for_stream(int(stream)))
        return op.process.make_step(tuple(op.input.shape), out_shape, ctx.dt, rng, state)

    def host(step, stream, x):
        key = int(stream)
        if key not in steps:
            steps[key] = make(stream)
        t = float(step) * ctx.dt
        return np.asarray(steps[key](t, np.array(x, dtype=np.float64)), dtype=dtype).reshape(
            out_shape
        )

    host = ctx.guard_callback(host)

    def apply(env):
        y = io_callback(
            host,
            jax.ShapeDtypeStruct(out_shape, dtype),
            env.read(ctx.step_signal),
            env.stream,
            env.read(op.input),
            ordered=False,
        )
        env.write(op.output, y, op.mode)

    return apply


@register_lowering(SimProcess)
def lower_sim_process(op, ctx):
    if op.input is None:
        key = ctx.host_key(op)
        node_key = ctx.node_key_of(op)

        def apply(env):
            if node_key is not None and node_key in env.inputs:
                value = env.inputs[node_key]
            else:
                value = env.host[key]
            env.write(op.output, value, op.mode)

        return apply
    if isinstance(op.process, LinearFilter):
        return lower_linear_filter(op, ctx)
    return lower_host_process(op, ctx)
