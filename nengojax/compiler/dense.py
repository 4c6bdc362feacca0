"""Dense transforms built on the user's weight array, without a copy.

nengo's `~nengo.transforms.Dense` build casts the weights to nengo's float type
with ``astype``, which copies them even when they already have that type: a
10,000 x 10,000 float64 matrix is held twice (the user's array and the built
one) before nengojax makes its own float32 device copy. When a Dense transform
holds an array of nengo's float type and is applied to the connection's input
as is (no decoders or encoders folded in), `build_dense_in_place` builds the
same operators on a read-only view of that array instead: the same values, the
same signals and operators, one copy fewer.

The one observable difference: the built weights (``sim.data[conn].weights``)
share memory with the array the user passed, as ``conn.transform.init``
already does in nengo. The simulation reads its own device copy, so changing
that array after building changes neither simulator's results.
"""

from __future__ import annotations

import numpy as np
from nengo.builder.operator import DotInc, ElementwiseInc, Reset
from nengo.builder.signal import Signal
from nengo.rc import rc
from nengo.transforms import Dense

__all__ = ["build_dense_in_place", "builds_in_place"]


def builds_in_place(obj, decoders=None, encoders=None) -> bool:
    """Whether `build_dense_in_place` builds ``obj`` exactly as nengo would."""
    return (
        type(obj) is Dense
        and decoders is None
        and encoders is None
        and isinstance(obj.init, np.ndarray)  # not a Distribution to sample
        and obj.init.dtype == np.dtype(rc.float_dtype)
    )


def build_dense_in_place(model, transform: Dense, sig_in, decoders=None, encoders=None, rng=None):
    """nengo's Dense build (a Reset and a DotInc or ElementwiseInc), uncopied weights.

    Returns the weighted output signal and the weight signal, as nengo's does.
    """
    weights = transform.init  # nengo keeps it as a read-only view of the user's array
    weight_sig = Signal(weights, readonly=True, name=f"{transform}.weights")
    weighted = Signal(shape=transform.size_out, name=f"{transform}.weighted")
    model.add_op(Reset(weighted))
    op = ElementwiseInc if weights.ndim < 2 else DotInc
    model.add_op(op(weight_sig, sig_in, weighted, tag=f"{transform}.apply_weights"))
    return weighted, weight_sig
