"""Write-after-read order of loop-carried signals, made visible to XLA.

A state signal (a base carried from one step to the next) is often read at its
old value by one operator and overwritten later in the step by another that
does not depend on the first: a learning rule's delta is added to the weights
early in the step (nengo's ``Copy(delta, weights, inc=True)``) and the rule
computes the next delta at the end, from other signals. Nothing in the data
says that the add comes first, so XLA keeps the old value alive in a copy and
writes the new one into another (two full copies per step: for a 2048 x 32
PES connection they halved the steps per second).

The order nengo runs its operators in says it: the reader comes first. We make
that a data dependency. Each writer's new value gets ``+ after``, a scalar
that is ``-0.0`` (adding it changes no value, signed zeros included) computed
from one element of each earlier reader's output; XLA then runs the readers
first and updates the signal in place. (An ``optimization_barrier`` does not
carry the order through XLA:CPU's pipeline; a data dependency does.)
"""

from __future__ import annotations

import jax.numpy as jnp

from ..compiler.program import Program

__all__ = ["MIN_SIZE", "after_value", "marker", "write_after_read"]

#: Smallest state base (elements per minibatch item) whose order is kept: XLA's
#: copies of smaller ones cost less than the compile time of the dependencies.
MIN_SIZE = 1024


def write_after_read(
    program: Program, min_size: int = MIN_SIZE
) -> dict[int, dict[int, frozenset[int]]]:
    """The orders a step must keep: operator position ``k`` -> state base ->
    positions of the earlier operators that read the base's old value.

    Only the first operator writing a state base in a step is listed (later
    writers work on its output, not on the carried buffer), and only readers
    that do not write the base themselves.

    Parameters
    ----------
    program : Program
        The static program (``step_order``, ``layout``).
    min_size : int
        Bases with fewer elements are left out.

    Returns
    -------
    dict
        ``{k: {base index: frozenset of reader positions}}``.
    """
    layout = program.layout
    state = {b.index for b in layout.bases if b.kind == "state" and b.init.size >= min_size}
    written: set[int] = set()
    readers: dict[int, set[int]] = {}
    ties: dict[int, dict[int, frozenset[int]]] = {}
    for k, op in enumerate(program.step_order):
        outs = {layout.view(s).base for s in op.sets + op.incs + op.updates} & state
        ins = {layout.view(s).base for s in op.reads} & state
        for b in outs - written:
            if readers.get(b):
                ties.setdefault(k, {})[b] = frozenset(readers[b])
        for b in ins - outs - written:
            readers.setdefault(b, set()).add(k)
        written |= outs
    return ties


def marker(values) -> jnp.ndarray | None:
    """One element of an operator's first non-empty float output (None if it
    wrote none): a value that exists only once the operator has run."""
    for v in values:
        if jnp.issubdtype(v.dtype, jnp.floating) and v.size:
            return v.reshape(-1)[0]
    return None


def after_value(markers: list, dtype) -> jnp.ndarray | None:
    """``-0.0`` of ``dtype``, computed from ``markers`` (``+0.0`` where one is
    NaN, which then is a fault of its own); None without markers. XLA does not
    fold ``m == m`` for floats, so the value keeps the dependency."""
    if not markers:
        return None
    ok = jnp.all(jnp.stack([m == m for m in markers]))
    return jnp.where(ok, jnp.asarray(-0.0, dtype), jnp.asarray(0.0, dtype))
