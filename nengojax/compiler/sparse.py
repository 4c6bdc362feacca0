"""The static structure of nengo's sparse signals."""

from __future__ import annotations

import numpy as np


def sparse_structure(sig):
    """Static ``(rows, cols, shape)`` and the data of a sparse signal."""
    value = sig.initial_value
    if hasattr(value, "tocoo"):  # scipy.sparse
        coo = value.tocoo()
        return coo.row, coo.col, coo.shape, coo.data
    # nengo.transforms.SparseMatrix; allocating it warns, as in nengo, when
    # scipy is missing (the values used are the same either way)
    value.allocate()
    indices = np.asarray(value.indices)
    return indices[:, 0], indices[:, 1], tuple(value.shape), np.asarray(value.data)
