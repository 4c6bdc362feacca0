"""How JAX hands nengojax's programs to the CPU: inline, not through a thread.

JAX's CPU client runs a compiled program on a worker thread by default
(asynchronous dispatch) unless XLA rates it under 1,000 flops; the caller then
waits for the worker to finish. nengojax waits for every run anyway (its
probe data are read right after), so the hand-over buys nothing and costs two
thread wake-ups per call: measured here (2 cores), 60 us on a one-step program
of the README model (100 vs 32 us a call), which is half of what one
``sim.step()`` costs in a closed loop. nengojax therefore turns asynchronous
dispatch off when it is imported, for programs run on the CPU only (GPU and
TPU dispatch is unchanged):

- ``NENGOJAX_CPU_ASYNC_DISPATCH=1`` leaves JAX's setting alone;
- the setting takes effect only when JAX's CPU backend starts, which is at
  the first computation: a script that computes with JAX before importing
  nengojax keeps asynchronous dispatch (``jax.config.update
  ("jax_cpu_enable_async_dispatch", False)`` before that computation turns it
  off there too).

The results are the same either way; only when the caller waits differs. JAX
code of the user's own that overlaps Python with CPU computation (a training
loop dispatching the next step while one runs) waits for each program
instead; set ``NENGOJAX_CPU_ASYNC_DISPATCH=1`` to keep the overlap.
"""

from __future__ import annotations

import os

import jax

__all__ = ["enable_default_dispatch"]


def enable_default_dispatch() -> None:
    """What importing nengojax does: inline CPU dispatch, unless the user chose otherwise."""
    if os.environ.get("NENGOJAX_CPU_ASYNC_DISPATCH", "0") in ("1", "true", "yes", "on"):
        return
    jax.config.update("jax_cpu_enable_async_dispatch", False)
