"""The default compute dtype."""

from __future__ import annotations

import jax
import numpy as np


def default_float_dtype() -> np.dtype:
    """float64 when JAX runs with x64 enabled, else float32."""
    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)


def to_device(value, dtype=None) -> jax.Array:
    """``value`` as a device array, converted on the host.

    ``jnp.asarray`` of a host array compiles a small XLA program for each new
    shape and dtype (several milliseconds each, dozens per model when building);
    ``jax.device_put`` of a NumPy array compiles nothing.
    """
    return jax.device_put(np.asarray(value, dtype))
