"""The default compute dtype."""

from __future__ import annotations

import jax
import numpy as np


def default_float_dtype() -> np.dtype:
    """float64 when JAX runs with x64 enabled, else float32."""
    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)
