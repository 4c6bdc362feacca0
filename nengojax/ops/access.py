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

from ..compiler.layout import SignalLayout


def _flat(view) -> np.ndarray:
    if view.index is not None:
        return view.index.ravel()
    return np.arange(view.start, view.stop)


def _contiguous(idx: np.ndarray) -> bool:
    return idx.size > 0 and bool(np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)))


def _take(arr, idx):
    if _contiguous(idx):
        return arr[int(idx[0]) : int(idx[0]) + idx.size]
    return arr[idx]


class MergedAccess:
    """The signals ``sigs`` (flattened, in order) as one vector.

    Parameters
    ----------
    layout : SignalLayout
        Where the signals live.
    sigs : list of Signal
        The signals, in the order of the merged vector.
    """

    def __init__(self, layout: SignalLayout, sigs):
        self.size = int(sum(s.size for s in sigs))
        by_base: dict[int, tuple[list, list]] = {}
        pos = 0
        for sig in sigs:
            view = layout.view(sig)
            idx = _flat(view)
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
        self._order = None if _contiguous(positions) else np.argsort(positions)

    def read(self, env) -> jax.Array:
        """The merged vector of the signals' current values."""
        pieces = [_read(env, base, idx) for base, idx, _ in self.runs]
        vec = jnp.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        return vec if self._order is None else vec[self._order]

    def write(self, env, vec, inc: bool = False) -> None:
        """Set (or increment) the signals from a merged vector."""
        for base, idx, positions in self.runs:
            part = _take(vec, positions).astype(env.dtype_of(base))
            if _contiguous(idx):
                env.write_range(base, int(idx[0]), int(idx[0]) + idx.size, part, inc)
            else:
                env.write_index(base, idx, part, inc)


def _read(env, base, idx):
    if _contiguous(idx):
        return env.read_range(base, int(idx[0]), int(idx[0]) + idx.size)
    return env.read_flat(base)[idx]
