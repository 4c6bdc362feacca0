"""A base held as the separate arrays last written to its parts.

nengo's operator merger packs the signals of many operators into one base, and
each operator then writes its own slice. Held as one flat array, every such
write is an update of the whole base: cheap in a forward step (XLA updates in
place), but in a gradient each update is a full-size zero-padded cotangent and
each version of the base a residual of the loop. When a base is read in the
same parts it was written in (each read one written part, or a few whole ones),
keeping the parts apart costs nothing: a read of a part is the array written to
it. `Pieces` is that representation; the layout chooses it per base
(`.SignalLayout.piecewise`), and any access it was not chosen for still works
(a concatenation or a slice).
"""

from __future__ import annotations

import bisect

import jax
import jax.numpy as jnp


class Pieces:
    """A flat array of ``size`` elements as sorted, disjoint, covering pieces.

    Parameters
    ----------
    parts : list of (int, int, jax.Array)
        ``(start, stop, values)`` of each piece, in order, covering ``0..size``.
    """

    __slots__ = ("parts", "starts")

    def __init__(self, parts, starts=None):
        self.parts = parts
        # shared by the pieces a write of one whole part makes (the same cuts)
        self.starts = starts if starts is not None else [a for a, _, _ in parts]

    @classmethod
    def whole(cls, flat: jax.Array) -> Pieces:
        """One piece holding all of ``flat``."""
        return cls([(0, flat.shape[0], flat)])

    @property
    def dtype(self):
        return self.parts[0][2].dtype

    def flat(self) -> jax.Array:
        """All elements as one flat array."""
        if len(self.parts) == 1:
            return self.parts[0][2]
        return jnp.concatenate([p for _, _, p in self.parts])

    def read(self, start: int, stop: int) -> jax.Array:
        """Elements ``start:stop``: a piece as it was written, or slices of pieces."""
        got = []
        first = max(bisect.bisect_right(self.starts, start) - 1, 0)  # the part holding start
        for a, b, p in self.parts[first:]:
            if a >= stop:
                break
            if b <= start:
                continue
            lo, hi = max(a, start), min(b, stop)
            got.append(p if (lo, hi) == (a, b) else p[lo - a : hi - a])
        return got[0] if len(got) == 1 else jnp.concatenate(got)

    def write(self, start: int, stop: int, value: jax.Array) -> Pieces:
        """These pieces with elements ``start:stop`` replaced by ``value``."""
        k = bisect.bisect_left(self.starts, start)
        if k < len(self.parts) and self.parts[k][:2] == (start, stop):  # one whole part
            parts = list(self.parts)
            parts[k] = (start, stop, value)
            return Pieces(parts, self.starts)
        parts = []
        for a, b, p in self.parts:
            if b <= start or a >= stop:
                parts.append((a, b, p))
                continue
            if a < start:
                parts.append((a, start, p[: start - a]))
            if b > stop:
                parts.append((stop, b, p[stop - a :]))
        parts.append((start, stop, value))
        parts.sort(key=lambda part: part[0])
        return Pieces(parts)
