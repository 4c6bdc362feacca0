"""The one way a lowering runs NumPy code on the host during a step.

Operators with no JAX lowering (Node functions taking input, processes and
neuron types nengojax does not know) call their NumPy code every step through
`jax.experimental.io_callback`. `host_call` wraps that:

- each call warns once per compiled network and host path, in one wording;
- the calls of a step run in step order, as ``nengo.Simulator`` makes them:
  each call takes a token from the previous one (a data dependency), so XLA
  cannot reorder them;
- the exception a user function raises reaches the caller unchanged (through
  `.CallbackErrors`);
- per-stream objects (a process's step function, a random generator) are made
  once per minibatch item, and made again when a run starts over (the step
  counter goes back, as after ``reset``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from .context import LoweringContext

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

    def host(step, stream, token, *args):
        try:
            step = int(np.ravel(step)[0])
            obj = None
            if per_stream is not None:
                key = int(stream)
                entry = streams.get(key)
                if entry is None or step <= entry[1]:  # a new run from the start
                    entry = streams[key] = [per_stream(key), step]
                entry[1] = step
                obj = entry[0]
            out = fn(step, obj, *args)
            return ((out,) if single else tuple(out)) + (np.asarray(token, np.int32),)
        except Exception as e:
            errors.error = e
            raise

    def call(env, *args):
        token = getattr(env, "host_token", None)
        if token is None:
            token = jnp.zeros((), jnp.int32)
        *out, env.host_token = io_callback(
            host,
            (*shapes, TOKEN),
            env.read(step_signal),
            env.stream,
            token,
            *args,
            ordered=False,
        )
        return out[0] if single else tuple(out)

    return call
