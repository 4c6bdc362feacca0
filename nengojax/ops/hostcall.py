"""The one way a lowering runs NumPy code on the host during a step.

Operators with no JAX lowering (Node functions taking input, processes and
neuron types nengojax does not know) call their NumPy code every step through
`jax.experimental.io_callback`. `host_call` wraps that: the exception a user
function raises reaches the caller unchanged (through `.CallbackErrors`), and
per-stream objects (a process's step function, a random generator) are made
once per minibatch item and made again when a run starts over (the step
counter goes back, as after ``reset``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from jax.experimental import io_callback

from .context import LoweringContext


def host_call(
    ctx: LoweringContext,
    fn: Callable,
    result_shape,
    per_stream: Callable | None = None,
) -> Callable:
    """Make ``call(env, *args)``: ``fn`` on the host, every step.

    Parameters
    ----------
    ctx : LoweringContext
        The lowering context (for its callback error slot).
    fn : callable
        ``fn(t, obj, *args) -> NumPy value(s)``: ``t`` is the step number
        (an int), ``obj`` the stream's object (None without ``per_stream``) and
        ``args`` NumPy values of the traced arguments.
    result_shape : jax.ShapeDtypeStruct or tuple of them
        Shape and dtype of what ``fn`` returns.
    per_stream : callable, optional
        ``per_stream(stream) -> obj``, the state of one minibatch item (e.g.
        ``numpy.random.RandomState(ctx.seed_for_stream(stream))``).

    Returns
    -------
    callable
        ``call(env, *args)`` to use inside ``apply(env)``.
    """
    streams: dict[int, list] = {}
    errors = ctx.errors
    step_signal = ctx.step_signal

    def host(step, stream, *args):
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
            return fn(step, obj, *args)
        except Exception as e:
            errors.error = e
            raise

    def call(env, *args):
        return io_callback(
            host, result_shape, env.read(step_signal), env.stream, *args, ordered=False
        )

    return call
