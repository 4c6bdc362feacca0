"""Simulation state: its initial value and the one rule for "is it batched".

A state is a dict: ``"signals"`` (state key -> flat array of each state base),
``"rng"`` (a JAX PRNG key), ``"stream"`` (the minibatch item, an int32),
``"seed"`` (the seed of the host random streams, a uint32) and ``"fault"``
(int32 ``[step, node]``: the first step at which a `JaxNode` returned a
non-finite value, and which one, or ``[-1, -1]``). A batched state has
a leading minibatch axis on every leaf, and ``"stream"`` is then
``arange(minibatch_size)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler.program import Program
from ..dtypes import to_device
from ..validation import integer


def is_batched(state) -> bool:
    """Whether ``state`` has a minibatch axis."""
    return np.ndim(state["stream"]) == 1


def batch_size(state) -> int | None:
    """The minibatch size of ``state``, or None without a minibatch axis."""
    return int(np.shape(state["stream"])[0]) if is_batched(state) else None


def prng_key(seed: int) -> jax.Array:
    """A PRNG key from a seed in [0, 2**32), equal to ``jax.random.PRNGKey(seed)``.

    With JAX's default threefry implementation a 32-bit seed's key is
    ``[0, seed]``; writing it on the host spares compiling ``PRNGKey``'s program
    (tested against ``jax.random.PRNGKey``).
    """
    if jax.config.jax_default_prng_impl == "threefry2x32":
        return to_device(np.array([0, seed], dtype=np.uint32))
    return jax.random.PRNGKey(np.uint32(seed))


def check_seed(seed) -> int:
    """``seed`` as an int in [0, 2**32), or a `ValidationError` (never truncated)."""
    return integer(seed, "seed", 0, 2**32 - 1)


def init_state(program: Program, minibatch_size: int | None = None, seed: int | None = None):
    """The initial state of ``program`` (batched when ``minibatch_size`` is given).

    ``seed`` selects the random streams (default: the program's seed).
    """
    seed = program.seed if seed is None else check_seed(seed)
    signals = {b.key: to_device(b.carried_init) for b in program.layout.bases if b.kind == "state"}
    state = {
        "signals": signals,
        "rng": prng_key(seed),
        "stream": to_device(0, np.int32),
        "seed": to_device(seed, np.uint32),
        "fault": to_device(np.full((2,), -1), np.int32),
    }
    if minibatch_size is None:
        return state
    k = integer(minibatch_size, "minibatch_size", 1)
    batched = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (k, *x.shape)), state)
    batched["stream"] = jnp.arange(k, dtype=jnp.int32)
    batched["rng"] = jax.vmap(lambda i: jax.random.fold_in(prng_key(seed), i))(jnp.arange(k))
    return batched


def add_batch_axis(state):
    """``state`` with a minibatch axis of one (unchanged when it has one)."""
    if is_batched(state):
        return state
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v)[None], state)


def drop_batch_axis(state):
    """Item 0 of a batched ``state``, without the minibatch axis."""
    return jax.tree_util.tree_map(lambda v: v[0], state)


def state_step(program: Program, state):
    """The step counter of ``state`` (one per item when batched)."""
    key = program.state_base(program.model.step)
    step = state["signals"][key]
    if isinstance(step, jax.core.Tracer) or not getattr(step, "is_fully_addressable", True):
        return step.reshape(np.shape(state["stream"]))
    return np.asarray(step).reshape(np.shape(state["stream"]))  # no XLA program
