"""Lowering of `.SimPyFunc` (Node functions).

Functions of time only are host sources (computed ahead of the step, see
`nengojax.compiler.host`). Functions of an input signal run every step through a
host callback (`.host_call`): correct, but slow; the documented path for
arbitrary Python code.
"""

from __future__ import annotations

import jax
import numpy as np
from nengo.builder.operator import SimPyFunc

from ..compiler.host import check_pyfunc_output, is_host_source
from .hostcall import host_call
from .registry import register_lowering


@register_lowering(SimPyFunc)
def lower_sim_py_func(op, ctx):
    if is_host_source(op):
        key = ctx.host_key(op)

        def apply(env):
            env.set(op.output, env.host[key])

        return apply

    dtype = ctx.float_dtype
    out_shape = tuple(op.output.shape) if op.output is not None else (0,)
    dt = ctx.dt
    fn = op.fn

    def host(step, _, x):
        args = () if op.x is None else (np.array(x, dtype=np.float64),)
        y = fn(step * dt, *args) if op.t is not None else fn(*args)
        if op.output is None:
            return np.zeros(out_shape, dtype=dtype)
        return np.asarray(check_pyfunc_output(op, y, out_shape), dtype=dtype)

    call = host_call(ctx, host, jax.ShapeDtypeStruct(out_shape, dtype))

    def apply(env):
        x = env.read(op.x) if op.x is not None else np.zeros(0, dtype)
        y = call(env, x)
        if op.output is not None:  # a sink's callback still runs: io_callback is never dropped
            env.set(op.output, y)

    return apply
