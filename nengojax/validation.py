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
        if high is not None:
            what = f"an integer in [{low}, {high}]"
        else:
            what = {0: "a non-negative integer", 1: "a positive integer"}.get(
                low, "an integer" if low is None else f"an integer >= {low}"
            )
        raise ValidationError(f"{name} must be {what} (got {value!r})", attr=name, obj=obj)
    return int(value)
