"""Lowering of `.SimPyFunc` (Node functions).

Functions of time only are host sources (computed ahead of the step, see
`nengojax.compiler.host`). Functions of an input signal run every step through a
host callback: correct, but slow; the documented path for arbitrary Python code.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import io_callback
from nengo.builder.operator import SimPyFunc

from ..compiler.host import check_pyfunc_output, is_host_source
from ..compiler.registry import register_lowering


@register_lowering(SimPyFunc)
def lower_sim_py_func(op, ctx):
    node_key = ctx.node_key_of(op)
    if is_host_source(op):
        key = ctx.host_key(op)

        def apply(env):
            if node_key is not None and node_key in env.inputs:
                env.set(op.output, env.inputs[node_key])
            else:
                env.set(op.output, env.host[key])

        return apply

    dtype = ctx.layout.float_dtype
    out_shape = tuple(op.output.shape) if op.output is not None else (0,)
    dt = ctx.dt
    fn = op.fn

    def host(step, x):
        args = () if op.x is None else (np.array(x, dtype=np.float64),)
        y = fn(float(step) * dt, *args) if op.t is not None else fn(*args)
        if op.output is None:
            return np.zeros(out_shape, dtype=dtype)
        return np.asarray(check_pyfunc_output(op, y, out_shape), dtype=dtype)

    host = ctx.guard_callback(host)

    def apply(env):
        if node_key is not None and node_key in env.inputs and op.output is not None:
            env.set(op.output, env.inputs[node_key])
            return
        x = env.read(op.x) if op.x is not None else np.zeros(0, dtype)
        y = io_callback(
            host,
            jax.ShapeDtypeStruct(out_shape, dtype),
            env.read(ctx.step_signal),
            x,
            ordered=False,
        )
        if op.output is not None:  # a sink's callback still runs: io_callback is never dropped
            env.set(op.output, y)

    return apply
