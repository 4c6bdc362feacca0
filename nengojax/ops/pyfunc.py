"""Lowering of `.SimPyFunc` (Node functions).

Functions of time only are host sources: computed ahead of the run, step by
step in step order (see `nengojax.compiler.host`), which no user can tell
apart from nengo's calls as long as no other user Python runs during the run.
Functions of an input signal run every step through a host callback
(`.host_call`): correct, but slow; the documented path for arbitrary Python
code. When the network has such a callback, user functions of time run in the
step too (``ctx.live_python``), so that every user function is called in
nengo's order: a sensor Node reading an environment that a motor Node changes
sees the change of the step before, as in nengo.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from nengo.builder.operator import SimPyFunc

from ..compiler.host import check_pyfunc_output, is_host_source
from .hostcall import host_call
from .inline import top_package, users_code
from .purity import as_jax, is_pure
from .registry import register_lowering


def _lower_pure(op, ctx):
    """A function of its input that is pure arithmetic (`.is_pure`), traced into
    the step instead of calling the host; False if it is not (or if JAX cannot
    trace it, e.g. Python branches on the input)."""
    if not is_pure(op.fn):
        return False
    if op.output is None:
        return None  # a pure function's only effect is its output: none
    fn = users_code(as_jax(op.fn))
    dtype = ctx.float_dtype
    out_shape = tuple(op.output.shape)
    t_spec = jax.ShapeDtypeStruct((), dtype)
    x_spec = jax.ShapeDtypeStruct(tuple(op.x.shape), dtype)

    def call(t, x):
        y = fn(t, x) if op.t is not None else fn(x)
        return jnp.broadcast_to(jnp.asarray(y, dtype), out_shape)

    try:
        jax.eval_shape(call, t_spec, x_spec)  # abstract values: nothing is computed
    except Exception:  # noqa: BLE001  (untraceable: the host runs it)
        return False
    index = ctx.op_index(op)
    ctx.checks_finite = True

    def apply(env):
        t = env.read(op.t) if op.t is not None else None
        y = call(t, env.read(op.x))
        env.check_finite(index, y)  # a NaN output is an error, as for a Node in nengo
        env.set(op.output, y)

    return apply


def is_users(fn) -> bool:
    """Whether ``fn`` is user code (not a function of nengo's own)."""
    return top_package(fn) != "nengo"


def calls_observable(fn) -> bool:
    """Whether a user could tell when ``fn`` is called: user code that is not
    pure arithmetic (`.is_pure`). Functions of time that are not are computed
    ahead of a run even while other user Python runs in the step."""
    return is_users(fn) and not is_pure(fn)


def ahead_safe(op) -> bool:
    """Whether host source ``op`` may be computed steps ahead of the step that
    uses it even while user code runs between steps (``sim.step()`` loops):
    nengo's own process or function, or a function that is pure arithmetic
    (`.is_pure`) and reads nothing a user could change in between; a closure
    cell could be rebound by its enclosing function, so none may have any
    unless marked `pure`."""
    if isinstance(op, SimPyFunc):
        fn = op.fn
        if not is_users(fn):
            return True
        if getattr(fn, "__nengojax_pure__", False) or isinstance(fn, np.ufunc):
            return is_pure(fn)
        return is_pure(fn) and not getattr(fn, "__closure__", None)
    process = getattr(op, "process", None)
    return process is not None and not is_users(process)


@register_lowering(SimPyFunc)
def lower_sim_py_func(op, ctx):
    if is_host_source(op) and not (ctx.live_python and calls_observable(op.fn)):
        key = ctx.host_key(op)

        def apply(env):
            env.set(op.output, env.host[key])

        return apply
    if is_host_source(op):
        ctx.live_keys.add(ctx.host_key(op))
        warning = None
    else:
        traced = _lower_pure(op, ctx)
        if traced is not False:
            return traced
        warning = (
            op,
            f"{op.fn!r} (the function of a Node taking input, {op}) runs on the host "
            "every time step through a callback (slow, and not differentiable); user "
            "functions of time then run in the step too, in nengo's order",
        )

    dtype = ctx.float_dtype
    out_shape = tuple(op.output.shape) if op.output is not None else (0,)
    dt = ctx.dt
    fn = op.fn
    # decided once: this runs every step
    takes_t, takes_x, sink = op.t is not None, op.x is not None, op.output is None
    no_output = np.zeros(out_shape, dtype=dtype)

    def host(step, _, x):
        args = (np.array(x, dtype=np.float64),) if takes_x else ()
        y = fn(step * dt, *args) if takes_t else fn(*args)
        if sink:
            return no_output
        return check_pyfunc_output(op, y, out_shape).astype(dtype, copy=False)

    call = host_call(ctx, host, jax.ShapeDtypeStruct(out_shape, dtype), warning=warning)

    def apply(env):
        x = env.read(op.x) if op.x is not None else np.zeros(0, dtype)
        y = call(env, x)
        if op.output is not None:  # a sink's callback still runs (it has side effects)
            env.set(op.output, y)

    return apply
