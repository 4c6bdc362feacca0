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

    Values are generated in step order and kept from the earliest step asked
    for last time on, so asking again for those steps gives the same values and
    each function is called once per step. Asking for steps already dropped
    starts that source over from step 0 (same values: nengo's streams are
    deterministic given the seed).
    """

    def __init__(self, sources, step_order, dt, seed):
        self.dt = dt
        self._sources = {s.key: s for s in sources}
        self._factories = {}
        self._steps = {}
        self._tables: dict[str, list] = {}
        self._offsets: dict[str, int] = {}
        rng = np.random.RandomState(seed)
        by_op = {id(s.op): s for s in sources}
        for op in step_order:
            if not isinstance(op, SimProcess):
                continue
            # every SimProcess draws its generator here, as nengo.Simulator does
            op_rng = op.process.get_rng(rng)
            src = by_op.get(id(op))
            if src is not None:
                self._factories[src.key] = self._process_factory(op, op_rng.get_state())
        for src in sources:
            if isinstance(src.op, SimPyFunc):
                self._factories[src.key] = lambda fn=src.op.fn: fn
        for key in self._sources:
            self._restart(key)

    def _process_factory(self, op, rng_state):
        def make():
            rng = np.random.RandomState()
            rng.set_state(rng_state)
            state = {
                name: np.array(sig.initial_value, copy=True) for name, sig in op.state.items()
            }
            return op.process.make_step((0,), tuple(op.output.shape), self.dt, rng, state)

        return make

    def _restart(self, key):
        self._steps[key] = self._factories[key]()
        self._tables[key] = []
        self._offsets[key] = 0

    def _raw(self, src, t):
        fn = self._steps[src.key]
        op = src.op
        if isinstance(op, SimPyFunc):
            y = fn(t) if op.t is not None else fn()
            # a function may return the same array object, changed, every step
            return y.copy() if isinstance(y, np.ndarray) else y
        # copy: some steps return a view of their own state, mutated next step
        return np.array(fn(t), dtype=np.float64).reshape(src.shape)

    def _checked(self, src, raw: list) -> list:
        """Validate a batch of raw outputs; fast when they are all fine."""
        if not isinstance(src.op, SimPyFunc):
            return raw
        try:
            arr = np.asarray(raw, dtype=np.float64)
            ok = arr.shape[1:] == src.shape or arr.shape[1:] in ((), (1,)) and src.shape == (1,)
            ok = ok and bool(np.all(np.isfinite(arr)))
        except (TypeError, ValueError):
            ok = False
        if ok:
            return list(arr.reshape((len(raw), *src.shape)))
        return [check_pyfunc_output(src.op, y, src.shape) for y in raw]

    def values(self, key: str, start: int, n_steps: int) -> np.ndarray:
        """Values of source ``key`` for absolute steps ``start .. start+n_steps``."""
        src = self._sources[key]
        if start < self._offsets[key]:
            self._restart(key)
        table = self._tables[key]
        # drop what lies before ``start``: runs move forward
        drop = start - self._offsets[key]
        if drop > 0:
            keep = min(drop, len(table))
            del table[:keep]
            self._offsets[key] += keep
        offset = self._offsets[key]
        raw = []
        while offset + len(table) + len(raw) < start + n_steps:
            t = (offset + len(table) + len(raw) + 1) * self.dt
            value = self._raw(src, t)
            if offset + len(table) < start:  # catching up to ``start``
                self._checked(src, [value])
                self._offsets[key] += 1
                offset += 1
                continue
            raw.append(value)
        table.extend(self._checked(src, raw))
        if n_steps == 0:
            return np.zeros((0, *src.shape))
        lo = start - offset
        return np.stack(table[lo : lo + n_steps])


def stream_seed(seed: int, stream: int) -> int:
    """The seed of minibatch item ``stream``: item 0 uses ``seed`` itself, so a
    batch of one reproduces ``nengo.Simulator``'s random streams."""
    if stream == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0] >> 1)


class HostValues:
    """The values of all host sources of a program, for any seed and stream.

    One `HostStream` per ``(seed, stream)`` pair, made on first use; shared
    sources (Node functions, called once per step) come from stream 0.

    Parameters
    ----------
    sources : list of HostSource
        The host sources.
    step_order : list
        The operators in step order.
    dt : float
        The time step.
    float_dtype : numpy.dtype
        The dtype of the values returned.
    """

    def __init__(self, sources, step_order, dt, float_dtype):
        self.sources = list(sources)
        self.step_order = step_order
        self.dt = dt
        self.float_dtype = np.dtype(float_dtype)
        self._streams: dict[tuple, HostStream] = {}

    def _stream(self, seed: int, stream: int) -> HostStream:
        key = (int(seed), int(stream))
        if key not in self._streams:
            self._streams[key] = HostStream(
                self.sources, self.step_order, self.dt, stream_seed(seed, stream)
            )
        return self._streams[key]

    def clear(self) -> None:
        """Forget the values computed so far (functions are called again for
        steps asked for later)."""
        self._streams.clear()

    def values(self, start: int, n_steps: int, seed, streams, skip=()) -> dict:
        """Host source values for steps ``start .. start+n_steps`` (NumPy).

        Shared sources (Node functions) have shape ``(n_steps, *shape)``;
        per-item sources (random processes) ``(len(streams), n_steps, *shape)``,
        or ``(n_steps, *shape)`` when ``streams`` is an int. ``seed`` is one seed
        or one per item (stacked states of different seeds). Sources whose key
        is in ``skip`` (replaced by run-time data) are not computed.
        """
        single = np.ndim(streams) == 0
        streams = [int(streams)] if single else [int(s) for s in np.ravel(streams)]
        seeds = np.broadcast_to(np.ravel(seed), (len(streams),)) if np.ndim(seed) else None
        seeds = [int(seed)] * len(streams) if seeds is None else [int(x) for x in seeds]
        out = {}
        for src in self.sources:
            if src.key in skip:
                continue
            if src.per_item:
                vals = [
                    self._stream(sd, st).values(src.key, start, n_steps)
                    for sd, st in zip(seeds, streams, strict=True)
                ]
                arr = vals[0] if single else np.stack(vals)
            else:
                arr = self._stream(seeds[0], 0).values(src.key, start, n_steps)
            out[src.key] = arr.astype(self.float_dtype)
        return out
