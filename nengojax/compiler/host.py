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


def _invalid_type(op, y) -> SimulationError:
    return SimulationError(
        f"Function '{_function_name(op.fn)}' returned a value {y!r} of invalid type {type(y)!r}"
    )


def check_pyfunc_output(op, y, shape) -> np.ndarray:
    """Validate a Node function's return value as ``nengo.Simulator`` does.

    Called every step for Nodes that run on the host, so the common case (a
    numeric array or number of the right size) takes few NumPy calls; the
    messages are only made for a value that fails.
    """
    if y is None:
        raise _invalid_type(op, y)
    if type(y) is np.ndarray:  # skips is_array_like: the common case, every step
        if y.dtype.kind not in "biuf":
            raise _invalid_type(op, y)
    elif is_array_like(y) and not _is_numeric(y):
        raise _invalid_type(op, y)
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise _invalid_type(op, y) from e
    if not np.isfinite(arr).all():
        raise SimulationError(f"Function '{_function_name(op.fn)}' returned non-finite value")
    if arr.shape == shape:
        return arr
    try:
        return np.broadcast_to(arr, shape)
    except ValueError as e:
        raise SimulationError(
            f"Function '{_function_name(op.fn)}' returned a value of shape {arr.shape}, "
            f"expected {shape}"
        ) from e


def _is_numeric(y) -> bool:
    try:
        return np.asarray(y).dtype.kind in "biuf"
    except Exception:  # noqa: BLE001
        return False


class HostStream:
    """The host sources of one simulation stream (one minibatch item and seed).

    Values are made step by step, and within a step source by source in step
    order, as ``nengo.Simulator`` calls them: a function with side effects (a
    shared random generator, a vocabulary that grows when a name is first
    parsed) sees the same sequence of calls. They are kept from the earliest
    step asked for last time on, so asking again for those steps gives the
    same values and each function is called once per step. Asking for steps
    already dropped starts the stream over from step 0 (the same values for
    nengo's own processes: their streams are deterministic given the seed).

    Parameters
    ----------
    sources : list of HostSource
        The sources of this stream, in step order.
    step_order : list
        All operators in step order (every `.SimProcess` draws its generator
        from the stream's seed in this order, as nengo does).
    dt : float
        The time step.
    seed : int
        The seed of this stream.
    """

    def __init__(self, sources, step_order, dt, seed):
        self.dt = dt
        self.sources = list(sources)
        self._factories = {}
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
        self._restart()

    def _process_factory(self, op, rng_state):
        def make():
            rng = np.random.RandomState()
            rng.set_state(rng_state)
            state = {
                name: np.array(sig.initial_value, copy=True) for name, sig in op.state.items()
            }
            return op.process.make_step((0,), tuple(op.output.shape), self.dt, rng, state)

        return make

    @property
    def steps_done(self) -> int:
        """Steps computed so far (from 0)."""
        return self._done

    def _restart(self):
        self._steps = {key: make() for key, make in self._factories.items()}
        self._row_fns: dict = {}  # skip -> per source (row fn or None, gap row fn or None)
        self._tables: dict[str, list] = {src.key: [] for src in self.sources}
        self._offset = 0  # absolute step of the first row kept
        self._done = 0  # steps computed so far

    def _call(self, src):
        """``t -> row``: the raw output of ``src`` at time ``t``."""
        fn = self._steps[src.key]
        op = src.op
        if isinstance(op, SimPyFunc):
            ndarray = np.ndarray
            takes_t = op.t is not None

            def row(t):
                y = fn(t) if takes_t else fn()
                # a function may return the same array object, changed, every step
                return y.copy() if isinstance(y, ndarray) else y

            return row
        shape = src.shape
        # copy: some steps return a view of their own state, mutated next step
        return lambda t: np.array(fn(t), dtype=np.float64).reshape(shape)

    def _advance(self, start: int, stop: int, skip) -> None:
        """Compute every source (but ``skip``) up to absolute step ``stop``.

        Steps before ``start`` (skipped by an earlier run, e.g. given as data)
        are caught up for processes, whose state moves on every step, but Node
        functions are not called for them: nobody reads those values. If a
        function fails (raises, or returns a bad value), the steps before the
        failing one are kept, as nengo keeps them, and the error is raised.
        """
        new = {src.key: [] for src in self.sources}
        first = self._done
        error = None
        # per source, decided once: its list's append, and the call making a
        # row (None: skipped), or in the steps before ``start`` (gap)
        skip = skip if isinstance(skip, frozenset) else frozenset(skip)
        fns = self._row_fns.get(skip)
        if fns is None:
            fns = self._row_fns[skip] = []
            for src in self.sources:
                call = None if src.key in skip else self._call(src)
                fns.append((call, None if isinstance(src.op, SimPyFunc) else call))
        appends = [new[src.key].append for src in self.sources]
        calls = [(a, f) for a, (f, _) in zip(appends, fns, strict=True)]
        gap_calls = [(a, g) for a, (_, g) in zip(appends, fns, strict=True)]
        try:
            while self._done < stop:
                t = (self._done + 1) * self.dt
                for append, call in gap_calls if self._done < start else calls:
                    append(NOT_COMPUTED if call is None else call(t))
                self._done += 1
        except BaseException as e:  # KeyboardInterrupt too: keep what is complete
            error = e
        n = self._done - first  # whole steps computed
        checked = {}
        for src in self.sources:
            rows = new[src.key][:n]
            try:
                checked[src.key] = self._checked(src, rows)
            except _BadRow as bad:
                n, error = min(n, bad.row), bad.error
        for src in self.sources:
            self._tables[src.key].extend(checked.get(src.key, new[src.key])[:n])
        self._done = first + n
        if error is not None:
            raise error

    def _checked(self, src, raw: list) -> list:
        """Validate a batch of raw outputs (`NOT_COMPUTED` kept); fast when they
        are all fine. Raises `_BadRow` at the first bad one."""
        if not isinstance(src.op, SimPyFunc) or not raw:
            return raw
        if any(r is NOT_COMPUTED for r in raw):
            done = [i for i, r in enumerate(raw) if r is not NOT_COMPUTED]
            rows = list(raw)
            try:
                values = self._checked(src, [raw[i] for i in done])
            except _BadRow as bad:
                raise _BadRow(done[bad.row], bad.error) from None
            for i, value in zip(done, values, strict=True):
                rows[i] = value
            return rows
        try:
            arr = np.asarray(raw, dtype=np.float64)
            ok = arr.shape[1:] == src.shape or arr.shape[1:] in ((), (1,)) and src.shape == (1,)
            ok = ok and bool(np.isfinite(arr).all())
        except (TypeError, ValueError):
            ok = False
        if ok:
            return list(arr.reshape((len(raw), *src.shape)))
        rows = []
        for i, y in enumerate(raw):
            try:
                rows.append(check_pyfunc_output(src.op, y, src.shape))
            except SimulationError as e:
                raise _BadRow(i, e) from None
        return rows

    def values(self, start: int, n_steps: int, skip=()) -> dict:
        """Values of every source (but ``skip``) for absolute steps
        ``start .. start+n_steps``, each ``(n_steps, *shape)``."""
        if start < self._offset or any(
            v is NOT_COMPUTED
            for src in self.sources
            if src.key not in skip
            for v in self._tables[src.key][start - self._offset : start - self._offset + n_steps]
        ):
            self._restart()
        drop = min(start - self._offset, self._done - self._offset)
        if drop > 0:  # runs move forward: forget what lies before ``start``
            for table in self._tables.values():
                del table[:drop]
            self._offset += drop
        self._advance(start, start + n_steps, skip)
        lo = start - self._offset
        out = {}
        for src in self.sources:
            if src.key in skip:
                continue
            rows = self._tables[src.key][lo : lo + n_steps]
            # rows of one shape (checked): np.array stacks them, faster than np.stack
            out[src.key] = np.array(rows) if rows else np.zeros((0, *src.shape))
        return out


#: The value of a step a source was not called for (given as data, or skipped).
NOT_COMPUTED = object()


class _BadRow(Exception):
    """Row ``row`` of a batch of outputs failed validation with ``error``."""

    def __init__(self, row: int, error: Exception):
        super().__init__(str(error))
        self.row, self.error = row, error


def stream_seed(seed: int, stream: int) -> int:
    """The seed of minibatch item ``stream``: item 0 uses ``seed`` itself, so a
    batch of one reproduces ``nengo.Simulator``'s random streams."""
    if stream == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0] >> 1)


class HostValues:
    """The values of all host sources of a program, for any seed and stream.

    One `HostStream` per ``(seed, item)``: item 0 computes every source (Node
    functions are shared by the items of a minibatch, called once per step,
    interleaved with the processes as in nengo), other items their own random
    processes only.

    Parameters
    ----------
    sources : list of HostSource
        The host sources, in step order.
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

    def _stream(self, seed: int, stream: int, shared: bool) -> HostStream:
        """The stream of item ``stream``, with the shared sources if ``shared``."""
        key = (int(seed), int(stream), shared)
        if key not in self._streams:
            sources = self.sources if shared else [s for s in self.sources if s.per_item]
            self._streams[key] = HostStream(
                sources, self.step_order, self.dt, stream_seed(seed, stream)
            )
        return self._streams[key]

    def clear(self) -> None:
        """Forget the values computed so far (functions are called again for
        steps asked for later)."""
        self._streams.clear()

    def computed(self) -> int:
        """The fewest steps any stream has made (after a failed `values`: the
        steps that are complete in every stream)."""
        done = [s.steps_done for s in self._streams.values() if s.sources]
        return min(done) if done else 0

    def values(self, start: int, n_steps: int, seed, streams, skip=()) -> dict:
        """Host source values for steps ``start .. start+n_steps`` (NumPy).

        Shared sources (Node functions) have shape ``(n_steps, *shape)``;
        per-item sources (random processes) ``(len(streams), n_steps, *shape)``,
        or ``(n_steps, *shape)`` when ``streams`` is an int. ``seed`` is one seed
        or one per item (stacked states of different seeds). Sources whose key
        is in ``skip`` (replaced by run-time data, or called live during the
        run) are not computed.
        """
        skip = frozenset(skip)
        single = np.ndim(streams) == 0
        streams = [int(streams)] if single else [int(s) for s in np.ravel(streams)]
        seeds = np.broadcast_to(np.ravel(seed), (len(streams),)) if np.ndim(seed) else None
        seeds = [int(seed)] * len(streams) if seeds is None else [int(x) for x in seeds]
        if not any(s.key not in skip for s in self.sources):
            return {}
        first = streams[0] == 0
        shared = self._stream(seeds[0], streams[0] if first else 0, True)
        shared = shared.values(start, n_steps, skip)
        per_item = [
            shared
            if i == 0 and first
            else self._stream(sd, st, False).values(start, n_steps, skip)
            for i, (sd, st) in enumerate(zip(seeds, streams, strict=True))
        ]
        out = {}
        for src in self.sources:
            if src.key in skip:
                continue
            if src.per_item:
                arr = per_item[0][src.key] if single else np.stack([v[src.key] for v in per_item])
            else:
                arr = shared[src.key]
            out[src.key] = arr.astype(self.float_dtype)
        return out
