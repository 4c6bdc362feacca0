"""The one way a lowering runs NumPy code on the host during a step.

Operators with no JAX lowering (Node functions taking input, processes and
neuron types nengojax does not know) call their NumPy code every step from
the compiled step: on a CPU backend through nengojax's own XLA FFI target
(`.host_target`), which hands the function XLA's own buffers (a few us a
call) and, unlike JAX's host callbacks, leaves the program cacheable on disk,
so a closed loop through Python compiles once, not in every process; on other
backends, whose buffers live on the device, through
`jax.experimental.io_callback`. `host_call` wraps that:

- each call warns once per compiled network and host path, in one wording;
- the calls of a step run in step order, as ``nengo.Simulator`` makes them:
  each call takes a token from the previous one (a data dependency), so XLA
  cannot reorder them;
- the exception a user function raises reaches the caller unchanged (through
  `.CallbackErrors`); in the Simulator's runs it makes its step a fault (the
  token comes back negative) so that the steps before it are kept;
- per-stream objects (a process's step function, a random generator) are made
  once per minibatch item, and made again when a run starts over (the step
  counter goes back, as after ``reset``);
- the arguments travel as one byte array: each argument of a callback costs
  tens of microseconds every step, more than the bytes it carries.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from .context import LoweringContext
from .host_target import call_target, view

TOKEN = jax.ShapeDtypeStruct((), np.int32)


def host_call(
    ctx: LoweringContext,
    fn: Callable,
    result_shape,
    per_stream: Callable | None = None,
    warning: tuple | None = None,
) -> Callable:
    """Make ``call(env, *args)``: ``fn`` on the host, every step, in step order.

    Parameters
    ----------
    ctx : LoweringContext
        The lowering context.
    fn : callable
        ``fn(step, obj, *args) -> NumPy value(s)``: ``step`` is the step number
        (an int), ``obj`` the stream's object (None without ``per_stream``) and
        ``args`` NumPy values of the traced arguments.
    result_shape : jax.ShapeDtypeStruct or tuple of them
        Shape and dtype of what ``fn`` returns.
    per_stream : callable, optional
        ``per_stream(stream) -> obj``, the state of one minibatch item (e.g.
        ``numpy.random.RandomState(ctx.seed_for_stream(stream))``).
    warning : tuple, optional
        ``(key, message)``: warned once per compiled network and key.

    Returns
    -------
    callable
        ``call(env, *args)`` to use inside ``apply(env)``.
    """
    ctx.uses_host_calls = True
    if warning is not None:
        ctx.warn_once(*warning)
        ctx.errors.warned_objects.add(str(getattr(warning[0], "tag", None) or warning[0]))
    streams: dict[int, list] = {}
    errors = ctx.errors
    step_signal = ctx.step_signal
    single = not isinstance(result_shape, (tuple, list))
    shapes = (result_shape,) if single else tuple(result_shape)

    def failed():
        # the step's outputs do not matter: the loop stops and drops the step
        return tuple(np.zeros(s.shape, s.dtype) for s in shapes) + (np.int32(-1),)

    def run_host(values):
        step, stream, token, *args = values
        if errors.stop_quietly and (errors.error is not None or token < 0):
            return failed()  # an earlier call failed: call no more user code
        try:
            step = int(step)
            obj = None
            if per_stream is not None:
                key = int(stream)
                entry = streams.get(key)
                if entry is None or step <= entry[1]:  # a new run from the start
                    entry = streams[key] = [per_stream(key), step]
                entry[1] = step
                obj = entry[0]
            out = fn(step, obj, *args)
            return ((out,) if single else tuple(out)) + (np.int32(token),)
        except BaseException as e:  # KeyboardInterrupt too: the steps before it are kept
            errors.error = e
            if errors.stop_quietly:
                return failed()
            raise

    def in_place(specs):
        # the table function for these argument specs (one per call site)
        unpack = _unpacker(specs, 3)  # step, stream, token
        n_in = specs[-1][1]
        outs = [(s.shape, np.dtype(s.dtype)) for s in (*shapes, TOKEN)]
        outs = [(shape, dtype, int(np.prod(shape)) * dtype.itemsize) for shape, dtype in outs]

        def write(args, rets):
            # runs every step: the arguments taken apart as planned once (a
            # copy: the buffer is XLA's, reused after the call, and user code
            # may keep its arguments)
            values = run_host(unpack(view(args[0], n_in).copy()))
            for address, value, (shape, dtype, nbytes) in zip(rets, values, outs, strict=True):
                if getattr(value, "shape", None) != shape and np.shape(value) != shape:
                    # no silent broadcasting
                    raise ValueError(
                        f"host callback returned shape {np.shape(value)} where "
                        f"{shape} was expected"
                    )
                view(address, nbytes).view(dtype).reshape(shape)[...] = value

        return ctx.host_table.add(write)

    indices: dict = {}  # specs -> index in the host table

    def call(env, *args):
        token = getattr(env, "host_token", None)
        if token is None:
            token = jnp.zeros((), jnp.int32)
        args = [_no_jvp(a) if jnp.issubdtype(jnp.result_type(a), jnp.inexact) else a for a in args]
        values = (env.read(step_signal), env.stream, token, *args)
        packed, specs = _pack(values)
        if ctx.platform == "cpu":
            index = indices.get(specs)
            if index is None:
                index = indices[specs] = in_place(specs)
            # the table's handle is an argument of the program (the same
            # program in every process); without one, a constant
            handle = getattr(env, "host_handle", None)
            if handle is None:
                handle = ctx.host_table.handle
            ids = jnp.stack([jnp.asarray(handle, jnp.int32), jnp.int32(index)])
            *out, env.host_token = call_target((*shapes, TOKEN), ids, packed)
        else:
            unpack = _unpacker(specs, 0)  # planned once per call site, not every step
            *out, env.host_token = io_callback(
                lambda b: run_host(unpack(np.asarray(b))), (*shapes, TOKEN), packed, ordered=False
            )
        return out[0] if single else tuple(out)

    return call


@jax.custom_jvp
def _no_jvp(x):
    """``x``; differentiating through it is an error (bytes carry no gradient)."""
    return x


@_no_jvp.defjvp
def _no_jvp_rule(primals, tangents):
    # the callback's arguments go to the host as bytes, which would silently
    # give a zero gradient; JAX's own io_callback refuses JVP the same way
    raise ValueError("a host callback (NumPy code on the host) does not support JVP")


def _pack(values):
    """``values`` as one flat uint8 array, and how to take each back out of it."""
    specs, parts, start = [], [], 0
    for v in values:
        v = jnp.asarray(v)
        flat = v.ravel()
        if flat.dtype == jnp.bool_:
            flat = flat.astype(jnp.uint8)
        stored = np.dtype(flat.dtype)
        # wider types gain a trailing byte axis; ravel flattens it away
        flat = jax.lax.bitcast_convert_type(flat, jnp.uint8).ravel()
        stop = start + v.size * stored.itemsize
        specs.append((start, stop, stored, v.shape, v.dtype == jnp.bool_))
        parts.append(flat)
        start = stop
    return jnp.concatenate(parts), tuple(specs)


def _unpack(buffer, specs):
    """The NumPy arrays `_pack` packed into ``buffer``."""
    return _unpacker(specs, 0)(np.asarray(buffer))


def _unpacker(specs, scalars: int):
    """``buffer -> values``: `_unpack` for one ``specs``, planned once.

    Up to ``scalars`` leading scalars of one type (a callback's step, stream
    and token) come out of one view of their bytes, as Python numbers; each
    other value is a view of its bytes, reshaped.
    """
    n_head = 0
    for _start, _stop, stored, shape, is_bool in specs[:scalars]:
        if shape != () or is_bool or stored != specs[0][2]:
            break
        n_head += 1
    head_stop = specs[n_head - 1][1] if n_head else 0
    head_type = specs[0][2] if n_head else None
    rest = specs[n_head:]

    def unpack(buffer):
        out = buffer[:head_stop].view(head_type).tolist() if n_head else []
        for start, stop, stored, shape, is_bool in rest:
            value = buffer[start:stop].view(stored).reshape(shape)
            out.append(value.astype(np.bool_) if is_bool else value)
        return out

    return unpack
