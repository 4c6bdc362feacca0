"""Writes of parts of a base, held back and applied together.

nengo's operators write slices of merged signals: a ``Reset`` sets a part to
zero, then ``DotInc``/``ElementwiseInc``/``Copy`` operators add to it, then
others read it. Applied at once, each of these writes is an in-place slice
update of the whole base, and XLA makes each its own kernel: nengo_spa's
models write dozens of parts of a few merged bases every step. Held back until
the base is read where they fall (or read whole), the writes of nearby parts
are applied as one update: the step has fewer kernels and compiles faster
(spa_sequence_routed: 108 kernels a step to 94).

The arithmetic is the same as applying each write at once: a part that is set
gets the value set, an increment is added to a part once, and elements between
the parts of one update are copied as they are, signed zeros included. Pending
parts never overlap: a write that overlaps one (the same signal written again,
a reset then an increment) applies what is pending first. Chaining the writes
of one part into the same update was tried: XLA then left some of the values
unfused, and a step of 32 ensembles ran 20 % slower.

One difference in the last bit: where XLA:CPU fused a product into a slice
update it contracted the two into one multiply-add, rounded once; here the
product and the sum are rounded apart, as NumPy rounds them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SLACK", "SPREAD", "PendingWrites"]

#: Parts are applied in one update when the elements from the first to the last
#: are at most this many times the elements they write (plus `SLACK`): the
#: update copies the elements between them.
SPREAD = 2
SLACK = 64


class _Part:
    """Elements ``start:stop`` set to ``value``, or (``inc``) incremented by it."""

    __slots__ = ("start", "stop", "value", "inc")

    def __init__(self, start: int, stop: int, value, inc: bool):
        self.start, self.stop, self.value, self.inc = start, stop, value, inc


class PendingWrites:
    """The writes held back for each base (base index -> its `_Part` list)."""

    def __init__(self):
        self.parts: dict[int, list[_Part]] = {}

    def add(self, arr: jax.Array, base: int, start: int, stop: int, value, inc: bool):
        """Hold back a write of ``value`` to ``start:stop`` of ``base``
        (currently ``arr``); returns ``arr`` with what had to be applied first."""
        if self.touches(base, start, stop):
            arr = self.apply(arr, base)
        self.parts.setdefault(base, []).append(_Part(start, stop, value, inc))
        return arr

    def drop(self, base: int) -> None:
        """Forget the writes held back for ``base`` (all of it is overwritten)."""
        self.parts.pop(base, None)

    def touches(self, base: int, start: int, stop: int) -> bool:
        """Whether a write held back for ``base`` falls in ``start:stop``."""
        return any(p.start < stop and start < p.stop for p in self.parts.get(base, ()))

    def apply(self, arr: jax.Array, base: int) -> jax.Array:
        """``arr`` with every write held back for ``base`` applied."""
        parts = self.parts.pop(base, None)
        if not parts:
            return arr
        for run in _runs(sorted(parts, key=lambda p: p.start)):
            lo, hi = run[0].start, run[-1].stop
            new = arr[lo:hi]
            new = _spread(new, [p for p in run if not p.inc], lo, lambda a, v: v)
            new = _spread(new, [p for p in run if p.inc], lo, lambda a, v: a + v)
            arr = jax.lax.dynamic_update_slice(arr, new, (lo,))
        return arr


def _spread(arr: jax.Array, parts: list, lo: int, combine) -> jax.Array:
    """``combine(arr, value)`` on the elements of each of ``parts`` (sorted,
    disjoint; ``arr`` starts at element ``lo``), ``arr`` elsewhere."""
    if not parts:
        return arr
    size = arr.shape[0]
    pieces, at = [], lo
    mask = np.zeros(size, bool)
    for part in parts:
        if part.start > at:  # elements between two parts: not written here
            pieces.append(jnp.zeros(part.start - at, arr.dtype))
        pieces.append(part.value)
        mask[part.start - lo : part.stop - lo] = True
        at = part.stop
    if at < lo + size:
        pieces.append(jnp.zeros(lo + size - at, arr.dtype))
    values = pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces)
    combined = combine(arr, values)
    return combined if mask.all() else jnp.where(mask, combined, arr)


def _runs(parts: list) -> list:
    """Sorted, disjoint parts in runs dense enough to apply as one (`SPREAD`)."""
    runs: list = []
    written = 0
    for part in parts:
        size = part.stop - part.start
        if runs and part.stop - runs[-1][0].start <= SPREAD * (written + size) + SLACK:
            runs[-1].append(part)
            written += size
        else:
            runs.append([part])
            written = size
    return runs
