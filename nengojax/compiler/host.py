"""Host-side sources: Node functions and Processes that take no input.

Their values depend only on time (and on nengo's random streams), so they are
computed on the host with nengo's own code and fed to the compiled step as
inputs. This gives exactly ``nengo.Simulator``'s values, including its RNG
streams: the random generator of each process is drawn from a
``numpy.random.RandomState(seed)`` in step order, as ``nengo.Simulator`` does.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from nengo.builder.operator import SimPyFunc
from nengo.builder.processes import SimProcess
from nengo.exceptions import SimulationError
from nengo.utils.numpy import is_array_like


@dataclasses.dataclass
class HostSource:
    """One operator whose output is computed on the host.

    Attributes
    ----------
    key : str
        Name of the source in the ``host`` inputs of the step.
    op : Operator
        The `.SimPyFunc` or `.SimProcess` operator.
    shape : tuple
        Shape of one step's output.
    per_item : bool
        Whether each minibatch item has its own stream (random processes), or
        all items share one (Node functions, called once per step).
    """

    key: str
    op: object
    shape: tuple
    per_item: bool


def is_host_source(op) -> bool:
    """Whether ``op`` is computed on the host ahead of the step."""
    if isinstance(op, SimPyFunc):
        return op.x is None and op.output is not None
    if isinstance(op, SimProcess):
        return op.input is None
    return False


def _function_name(fn) -> str:
    return getattr(fn, "__name__", repr(fn))


def check_pyfunc_output(op, y, shape) -> np.ndarray:
    """Validate a Node function's return value as ``nengo.Simulator`` does."""
    name = _function_name(op.fn)
    if y is None or (is_array_like(y) and not _is_numeric(y)):
        raise SimulationError(
            f"Function '{name}' returned a value {y!r} of invalid type {type(y)!r}"
        )
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SimulationError(
            f"Function '{name}' returned a value {y!r} of invalid type {type(y)!r}"
        ) from e
    if not np.all(np.isfinite(arr)):
        raise SimulationError(f"Function '{name}' returned non-finite value")
    try:
        return np.broadcast_to(arr, shape)
    except ValueError as e:
        raise SimulationError(
            f"Function '{name}' returned a value of shape {arr.shape}, expected {shape}"
        ) from e


def _is_numeric(y) -> bool:
    try:
        return np.asarray(y).dtype.kind in "biuf"
    except Exception:  # noqa: BLE001
        return False


class HostStream:
    """The host sources of one simulation stream (one minibatch item and seed).

    Values are generated lazily, in step order, and remembered, so asking for
    the same steps twice gives the same values and each function is called once
    per step.
    """

    def __init__(self, sources, step_order, dt, seed, shared_only=False):
        self.dt = dt
        self.sources = sources
        self._steps = {}
        self._tables: dict[str, list] = {s.key: [] for s in sources}
        rng = np.random.RandomState(seed)
        by_op = {id(s.op): s for s in sources}
        for op in step_order:
            if not isinstance(op, SimProcess):
                continue
            # every SimProcess draws its generator here, as nengo.Simulator does
            op_rng = op.process.get_rng(rng)
            src = by_op.get(id(op))
            if src is None or (shared_only and src.per_item):
                continue
            state = {
                name: np.array(sig.initial_value, copy=True) for name, sig in op.state.items()
            }
            out_shape = tuple(op.output.shape)
            self._steps[src.key] = op.process.make_step((0,), out_shape, dt, op_rng, state)
        for src in sources:
            if isinstance(src.op, SimPyFunc):
                self._steps[src.key] = src.op.fn

    def _call(self, src, t):
        fn = self._steps[src.key]
        op = src.op
        if isinstance(op, SimPyFunc):
            y = fn(t) if op.t is not None else fn()
            return check_pyfunc_output(op, y, src.shape)
        # copy: some steps return a view of their own state, mutated next step
        return np.array(fn(t), dtype=np.float64).reshape(src.shape)

    def values(self, key: str, start: int, n_steps: int) -> np.ndarray:
        """Values of source ``key`` for absolute steps ``start .. start+n_steps``."""
        src = next(s for s in self.sources if s.key == key)
        table = self._tables[key]
        while len(table) < start + n_steps:
            t = (len(table) + 1) * self.dt
            table.append(self._call(src, t))
        if n_steps == 0:
            return np.zeros((0, *src.shape))
        return np.stack(table[start : start + n_steps])
