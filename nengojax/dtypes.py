"""The default compute dtype."""

from __future__ import annotations

import jax
import numpy as np


def default_float_dtype() -> np.dtype:
    """float64 when JAX runs with x64 enabled, else float32."""
    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)


_ALIGNMENT = 64  # bytes; XLA's CPU client shares host memory aligned this way


def frozen_host_array(value: np.ndarray, dtype=None) -> np.ndarray:
    """A read-only, 64-byte aligned copy of ``value`` (cast to ``dtype``) that
    devices may share.

    `to_device` of such an array on a CPU backend uses its memory instead of a
    copy (a model's weights then take their memory once, not twice). Read-only
    because a device array sharing it must never change.
    """
    value = np.asarray(value)
    dtype = value.dtype if dtype is None else np.dtype(dtype)
    nbytes = value.size * dtype.itemsize
    buffer = np.empty(nbytes + _ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % _ALIGNMENT
    out = buffer[start : start + nbytes].view(dtype).reshape(value.shape)
    out[...] = value  # the cast, without an intermediate copy
    out.setflags(write=False)
    return out


def to_device(value, dtype=None) -> jax.Array:
    """``value`` as a device array, converted on the host.

    ``jnp.asarray`` of a host array compiles a small XLA program for each new
    shape and dtype (several milliseconds each, dozens per model when building);
    ``jax.device_put`` of a NumPy array compiles nothing. A read-only host array
    (see `frozen_host_array`) may be shared instead of copied.
    """
    value = np.asarray(value, dtype)
    return jax.device_put(value, may_alias=None if value.flags.writeable else True)
