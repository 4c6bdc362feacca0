"""Reading and writing many signals as one flat vector (for merged operators).

A `MergedAccess` is planned once at compile time: the signals are grouped by
base, and each base is read with one slice (contiguous elements) or one gather,
and written with one slice update or one scatter, whatever the number of
signals.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler.layout import SignalLayout, View


def flat_indices(view) -> np.ndarray:
    """Flat indices of a view's elements in its base."""
    if view.index is not None:
        return view.index.ravel()
    return np.arange(view.start, view.stop)


def is_contiguous(idx: np.ndarray) -> bool:
    """Whether ``idx`` is a run of consecutive indices (a slice)."""
    return idx.size > 0 and bool(np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)))


def _take(arr, idx):
    if is_contiguous(idx):
        return arr[int(idx[0]) : int(idx[0]) + idx.size]
    return arr[idx]


class MergedAccess:
    """The signals ``sigs`` (flattened, in order) as one vector.

    Parameters
    ----------
    layout : SignalLayout
        Where the signals live.
    sigs : list of Signal or View
        The signals, in the order of the merged vector.
    """

    def __init__(self, layout: SignalLayout, sigs):
        views = [s if isinstance(s, View) else layout.view(s) for s in sigs]
        self.size = int(sum(int(np.prod(v.shape)) for v in views))
        by_base: dict[int, tuple[list, list]] = {}
        pos = 0
        for view in views:
            idx = flat_indices(view)
            entry = by_base.setdefault(view.base, ([], []))
            entry[0].append(idx)
            entry[1].append(np.arange(pos, pos + idx.size))
            pos += idx.size
        # (base, indices in the base, positions in the merged vector)
        self.runs = [
            (base, np.concatenate(i), np.concatenate(p)) for base, (i, p) in by_base.items()
        ]
        positions = np.concatenate([p for _, _, p in self.runs]) if self.runs else np.zeros(0)
        # reading base by base gives the runs' order; this puts it back in order
        self._order = None if is_contiguous(positions) else np.argsort(positions)

    def read(self, env) -> jax.Array:
        """The merged vector of the signals' current values."""
        pieces = [read_indices(env, base, idx) for base, idx, _ in self.runs]
        vec = jnp.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        return vec if self._order is None else vec[self._order]

    def write(self, env, vec, inc: bool = False) -> None:
        """Set (or increment) the signals from a merged vector."""
        for base, idx, positions in self.runs:
            write_indices(env, base, idx, _take(vec, positions), inc)


def read_indices(env, base: int, idx: np.ndarray) -> jax.Array:
    """Elements ``idx`` of a base: a slice where they are consecutive, else a gather."""
    if is_contiguous(idx):
        return env.read_range(base, int(idx[0]), int(idx[0]) + idx.size)
    return env.read_flat(base)[idx]


def write_indices(env, base: int, idx: np.ndarray, values, inc: bool) -> None:
    """Set (or increment) elements ``idx`` of a base from flat ``values``: a
    slice update where they are consecutive, else a scatter."""
    values = values.astype(env.dtype_of(base))
    if is_contiguous(idx):
        env.write_range(base, int(idx[0]), int(idx[0]) + idx.size, values, inc)
    else:
        env.write_index(base, idx, values, inc)
