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
from ..validation import integer


def is_batched(state) -> bool:
    """Whether ``state`` has a minibatch axis."""
    return np.ndim(state["stream"]) == 1


def batch_size(state) -> int | None:
    """The minibatch size of ``state``, or None without a minibatch axis."""
    return int(np.shape(state["stream"])[0]) if is_batched(state) else None


def prng_key(seed: int) -> jax.Array:
    """A PRNG key from a seed in [0, 2**32)."""
    return jax.random.PRNGKey(np.uint32(seed))


def check_seed(seed) -> int:
    """``seed`` as an int in [0, 2**32), or a `ValidationError` (never truncated)."""
    return integer(seed, "seed", 0, 2**32 - 1)


def init_state(program: Program, minibatch_size: int | None = None, seed: int | None = None):
    """The initial state of ``program`` (batched when ``minibatch_size`` is given).

    ``seed`` selects the random streams (default: the program's seed).
    """
    seed = program.seed if seed is None else check_seed(seed)
    signals = {b.key: jnp.asarray(b.init) for b in program.layout.bases if b.kind == "state"}
    state = {
        "signals": signals,
        "rng": prng_key(seed),
        "stream": jnp.asarray(0, jnp.int32),
        "seed": jnp.asarray(np.uint32(seed), jnp.uint32),
        "fault": jnp.full((2,), -1, jnp.int32),
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
    return state["signals"][key].reshape(np.shape(state["stream"]))
