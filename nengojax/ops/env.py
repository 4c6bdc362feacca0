"""The signal environment seen by lowerings while one step is traced."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from nengo.builder.signal import Signal

from ..compiler.layout import SignalLayout, View
from .pending import PendingWrites
from .pieces import Pieces


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
        Base index -> flat JAX array, for every base. The layout's piecewise
        bases are held as `.Pieces` while the step is traced (`final_values`
        gives flat arrays again).
    host : dict
        Host source key -> this step's value.
    inputs : dict
        Node key -> this step's value (``data`` given at run time).
    rng : callable
        ``() -> jax.Array``: the PRNG key of this step, made on first use (a
        step that draws no random numbers traces and lowers no PRNG work).
    dt : float
        The time step.
    stream : jax.Array
        The minibatch item being simulated (0 without a minibatch).
    invariants : dict, optional
        Key -> run-invariant value computed before the loop over steps
        (`.LoweringContext.add_invariant`).
    """

    def __init__(
        self, layout: SignalLayout, values, host, inputs, rng, dt, stream=0, invariants=None
    ):
        self.layout = layout
        self.values = dict(values)
        for i in layout.piecewise:
            self.values[i] = Pieces.whole(self.values[i])
        self.host = host
        self.inputs = inputs
        self._rng = rng
        self.dt = dt
        self.stream = stream
        self.checks: list = []  # (index, output) of values that must stay finite
        self.invariants = invariants or {}
        # set around each operator by the step (see `.ordering`): base -> a -0.0
        # its writes add, and the values it wrote
        self.after: dict = {}
        self.written: list = []
        # base -> the flat factors [u, v] it was set to this step (`set_outer`)
        self.factors: dict = {}
        # writes of parts of bases held as one array, not yet applied
        self.pending = PendingWrites()

    def _view(self, sig: Signal | View) -> View:
        return sig if isinstance(sig, View) else self.layout.view(sig)

    def read(self, sig: Signal | View) -> jax.Array:
        """Current value of ``sig``, with its shape."""
        v = self._view(sig)
        if v.full:
            return self.read_flat(v.base).reshape(v.shape)
        if v.index is None:
            return self.read_range(v.base, v.start, v.stop).reshape(v.shape)
        return self.read_flat(v.base)[v.index]

    def read_flat(self, base_index: int) -> jax.Array:
        """The whole flat array of a base (for sparse data and merged reads)."""
        self._apply_pending(base_index)
        arr = self.values[base_index]
        return arr.flat() if isinstance(arr, Pieces) else arr

    def read_range(self, base_index: int, start: int, stop: int) -> jax.Array:
        """Elements ``start:stop`` of a base's flat array."""
        self._apply_pending(base_index, start, stop)
        arr = self.values[base_index]
        if isinstance(arr, Pieces):
            return arr.read(start, stop)
        return arr[start:stop]

    def set_flat(self, base_index: int, value) -> None:
        """Replace the whole flat array of a base."""
        self._store(base_index, self._output(base_index, value))

    def _store(self, base_index: int, value) -> None:
        self.pending.drop(base_index)  # all of the base is replaced
        if isinstance(self.values[base_index], Pieces):
            value = Pieces.whole(value)
        self.values[base_index] = value

    def _output(self, base_index: int, value):
        """What an operator writes into a base: logged in `written`, and made
        to depend on the reads it must follow (`after`, see `.ordering`)."""
        self.written.append(value)
        after = self.after.get(base_index)
        if after is not None and jnp.issubdtype(value.dtype, jnp.floating):
            value = value + after.astype(value.dtype)
        return value

    def write_range(self, base_index: int, start: int, stop: int, value, inc: bool) -> None:
        """Set (or increment) elements ``start:stop`` of a base from flat ``value``."""
        if start == stop:
            return
        arr = self.values[base_index]
        if not isinstance(arr, Pieces) and (start, stop) != (0, arr.shape[0]):
            # held back, and applied with nearby writes (see `.pending`)
            value = self._output(base_index, value)
            self.values[base_index] = self.pending.add(arr, base_index, start, stop, value, inc)
            return
        if inc:  # (applies the writes held back first)
            value = self.read_range(base_index, start, stop) + value
        value = self._output(base_index, value)
        if isinstance(arr, Pieces):  # (a base held in pieces holds no writes back)
            self.values[base_index] = arr.write(start, stop, value)
        else:  # the whole base: what is held back is overwritten
            self._store(base_index, value)

    def _apply_pending(self, base_index: int, start: int = 0, stop: int | None = None) -> None:
        """Apply the base's writes held back (all of them, if any falls in
        ``start:stop``; given no ``stop``, in any case)."""
        if stop is None or self.pending.touches(base_index, start, stop):
            self.values[base_index] = self.pending.apply(self.values[base_index], base_index)

    def write_index(self, base_index: int, idx, value, inc: bool) -> None:
        """Set (or increment) the elements at flat indices ``idx`` from ``value``."""
        arr = self.read_flat(base_index)
        value = self._output(base_index, value)
        self._store(base_index, arr.at[idx].add(value) if inc else arr.at[idx].set(value))

    def dtype_of(self, base_index: int) -> np.dtype:
        """The dtype of a base's values."""
        return self.values[base_index].dtype

    def final_values(self) -> dict:
        """Base index -> flat JAX array of every base, as the step leaves them."""
        return {i: self.read_flat(i) for i in self.values}

    def _write(self, sig, value, inc: bool) -> None:
        v = self._view(sig)
        value = jnp.asarray(value, dtype=self.dtype_of(v.base))
        value = jnp.broadcast_to(value, v.shape).ravel()
        if v.index is None:
            self.write_range(v.base, v.start, v.stop, value, inc)
        else:
            self.write_index(v.base, v.index.ravel(), value, inc)

    def set(self, sig: Signal | View, value) -> None:
        """``sig[...] = value``."""
        self._write(sig, value, inc=False)

    def set_outer(self, sig: Signal | View, u, v) -> None:
        """``sig[...] = outer(u, v)``; a base carried as factors (`.Base.factors`)
        keeps ``u`` and ``v`` for the next step as well."""
        view = self._view(sig)
        u, v = (jnp.asarray(x, dtype=self.dtype_of(view.base)) for x in (u, v))
        self.set(view, u[:, None] * v[None, :])
        self.keep_factors(view, u, v)

    def keep_factors(self, sig: Signal | View, u, v) -> None:
        """Note that ``sig`` was just set to ``outer(u, v)`` (by a write of the
        whole product): a base carried as factors keeps them for the next step."""
        view = self._view(sig)
        if view.full and self.layout.bases[view.base].factors is not None:
            self.factors[view.base] = jnp.concatenate([u, v])

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
        if callable(self._rng):
            self._rng = self._rng()
        return jax.random.fold_in(self._rng, salt)

    @property
    def float_dtype(self) -> np.dtype:
        """The compute dtype of float signals."""
        return self.layout.float_dtype
