"""jax.numpy's functions traced inline in nengojax's own lowerings.

Most of jax.numpy's functions (``jnp.add`` behind ``+``, ``ravel``, ``where``,
``clip``, ...) are jitted: inside a trace, each call makes a nested jaxpr that
JAX traces, caches and lowers to an MLIR function of its own, which XLA then
inlines again. A step of a nengo_spa model makes some 300 such calls: about
half of the step's trace and lowering, measured on spa_sequence_routed as
0.10 s of trace and lowering with them inlined against 0.21-0.23 s, in a
first run of about 0.9 s. `inline_jnp` traces with JAX's jit off
(`jax.disable_jit`), so the same functions trace straight into the step: the
same operations in the same order, so the same program once XLA has inlined
the nested ones, and the same numbers.

Code of the user's (registered lowerings and neuron steps, JaxNode functions,
Python functions traced into the step) runs as the user set jit: with jit off,
JAX runs ``lax.scan``, ``fori_loop`` and ``while_loop`` as Python loops, which
would unroll a user's loop into the step. `users_code` wraps such code; a
function or lowering that nengojax defines (`is_ours`) needs no wrapping.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable

import jax

__all__ = [
    "inline_jnp",
    "is_ours",
    "top_package",
    "users_code",
    "users_code_unless_ours",
    "users_lowering",
]

# the user's jit setting outside `inline_jnp` (None: not inside it)
_users_setting: contextvars.ContextVar = contextvars.ContextVar(
    "nengojax_users_disable_jit", default=None
)


@contextlib.contextmanager
def inline_jnp():
    """Trace the block with JAX's jit off; `users_code` turns the user's setting back on."""
    token = _users_setting.set(bool(jax.config.jax_disable_jit))
    try:
        with jax.disable_jit():
            yield
    finally:
        _users_setting.reset(token)


def users_code(fn: Callable) -> Callable:
    """``fn``, called with JAX's jit as the user had it outside `inline_jnp`.

    Parameters
    ----------
    fn : callable
        A user's function, called while a step traces.

    Returns
    -------
    callable
        ``fn`` with the same arguments and result.
    """

    @functools.wraps(fn)
    def call(*args, **kwargs):
        setting = _users_setting.get()
        if setting is None:  # not inside `inline_jnp`: jit as it is
            return fn(*args, **kwargs)
        with jax.disable_jit(setting):
            return fn(*args, **kwargs)

    return call


def top_package(fn) -> str:
    """The top-level package defining ``fn`` (its class's, for an object
    without a module of its own)."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    return module.split(".")[0]


def is_ours(fn) -> bool:
    """Whether ``fn`` is defined in nengojax (anything else is the user's)."""
    return top_package(fn) == "nengojax"


def users_code_unless_ours(fn: Callable) -> Callable:
    """``fn`` as it is if nengojax defines it, else as `users_code`."""
    return fn if is_ours(fn) else users_code(fn)


def users_lowering(lower: Callable) -> Callable:
    """``lower(op, ctx) -> apply``, its ``apply`` run as `users_code` unless
    ``lower`` is one of nengojax's own lowerings."""
    if is_ours(lower):
        return lower

    @functools.wraps(lower)
    def lowered(op, ctx):
        apply = lower(op, ctx)
        return users_code(apply) if callable(apply) else apply

    return lowered
