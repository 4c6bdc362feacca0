"""The signal environment seen by lowerings while one step is traced."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from nengo.builder.signal import Signal

from ..compiler.layout import SignalLayout, View


class StepEnv:
    """Reads and writes signals (as JAX values) during the trace of one step.

    Operators run in step order and see each other's writes, exactly like
    nengo's in-place NumPy simulator; XLA turns the chain of functional updates
    into in-place work again.

    Parameters
    ----------
    layout : SignalLayout
        Static signal homes.
    values : dict
        Base index -> flat JAX array, for every base.
    host : dict
        Host source key -> this step's value.
    inputs : dict
        Node key -> this step's value (``data`` given at run time).
    rng : jax.Array
        PRNG key of this step.
    dt : float
        The time step.
    stream : jax.Array
        The minibatch item being simulated (0 without a minibatch).
    """

    def __init__(self, layout: SignalLayout, values, host, inputs, rng, dt, stream=0):
        self.layout = layout
        self.values = values
        self.host = host
        self.inputs = inputs
        self._rng = rng
        self.dt = dt
        self.stream = stream
        self.checks: list = []  # (index, output) of values that must stay finite

    def _view(self, sig: Signal | View) -> View:
        return sig if isinstance(sig, View) else self.layout.view(sig)

    def read(self, sig: Signal | View) -> jax.Array:
        """Current value of ``sig``, with its shape."""
        v = self._view(sig)
        arr = self.values[v.base]
        if v.full:
            return arr.reshape(v.shape)
        if v.index is None:
            return arr[v.start : v.stop].reshape(v.shape)
        return arr[v.index]

    def read_flat(self, base_index: int) -> jax.Array:
        """The whole flat array of a base (for sparse data and merged reads)."""
        return self.values[base_index]

    def set_flat(self, base_index: int, value) -> None:
        """Replace the whole flat array of a base."""
        self.values[base_index] = value

    def _write(self, sig, value, inc: bool) -> None:
        v = self._view(sig)
        arr = self.values[v.base]
        value = jnp.asarray(value, dtype=arr.dtype)
        value = jnp.broadcast_to(value, v.shape).ravel()
        if v.full:
            new = arr + value if inc else value
        elif v.index is None:
            if v.start == v.stop:
                return
            # a slice update, not a scatter: XLA compiles and fuses it better
            if inc:
                value = arr[v.start : v.stop] + value
            new = jax.lax.dynamic_update_slice(arr, value, (v.start,))
        else:
            idx = v.index.ravel()
            new = arr.at[idx].add(value) if inc else arr.at[idx].set(value)
        self.values[v.base] = new

    def set(self, sig: Signal | View, value) -> None:
        """``sig[...] = value``."""
        self._write(sig, value, inc=False)

    def inc(self, sig: Signal | View, value) -> None:
        """``sig[...] += value``."""
        self._write(sig, value, inc=True)

    def write(self, sig: Signal, value, mode: str) -> None:
        """Write ``value`` with nengo's mode ``"set"``, ``"inc"`` or ``"update"``."""
        if mode == "inc":
            self.inc(sig, value)
        else:
            self.set(sig, value)

    def check_finite(self, index: int, value) -> None:
        """Record that ``value`` must be finite (a fault of check ``index`` if not;
        see the state's ``"fault"``)."""
        self.checks.append((index, value))

    def rng(self, salt: int) -> jax.Array:
        """A PRNG key for this step, distinct for each ``salt`` (an operator)."""
        return jax.random.fold_in(self._rng, salt)

    @property
    def float_dtype(self) -> np.dtype:
        """The compute dtype of float signals."""
        return self.layout.float_dtype
