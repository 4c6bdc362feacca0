"""Checks of plain arguments shared by every layer."""

from __future__ import annotations

import numbers

import numpy as np
from nengo.exceptions import ValidationError


def integer(value, name: str, low: int | None = None, high: int | None = None, obj=None) -> int:
    """``value`` as an int in ``[low, high]``, or a `ValidationError` naming ``name``.

    Whole floats (``10.0``) are accepted; anything else (``2.5``, ``"10"``, NaN,
    inf, bools) is refused, never truncated.
    """
    whole = isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and np.isfinite(value) and float(value).is_integer()
    )
    ok = whole and not isinstance(value, bool)
    ok = ok and (low is None or int(value) >= low) and (high is None or int(value) <= high)
    if not ok:
        bounds = (
            f" in [{low}, {high}]" if high is not None else f" >= {low}" if low is not None else ""
        )
        raise ValidationError(
            f"{name} must be an integer{bounds} (got {value!r})", attr=name, obj=obj
        )
    return int(value)
