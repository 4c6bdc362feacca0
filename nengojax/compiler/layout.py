"""Where every nengo Signal lives in the compiled network.

Each *base* signal becomes one flat JAX array.  Views of a base become static
slices (when their elements are contiguous in row-major order) or static gathers.
Bases are sorted into four homes:

``param``
    Never written by any operator and named in ``model.sig`` (encoders, biases,
    weights, ...): user-visible entries of ``params``.
``const``
    Never written and not named: baked into the compiled function as arguments.
``state``
    Written by some operator and read before being overwritten in a step: carried
    from step to step (the scan carry).
``scratch``
    Written by some operator, but fully reset or set before any read in each step:
    recreated every step from its initial value and never carried.

A state base that a learning rule sets to an outer product ``u v^T`` every
step (its ``delta``), and nothing else writes, is carried as its two factors
(`Base.factors`): the next step's ``weights += delta`` reads ``u`` and ``v``
and multiplies them where it adds, instead of writing the whole matrix out and
reading it back (at minibatch 32 the delta of one 2048-neuron, 32-D rule is
8 MB a step).

Small bases that an operator merged or stacked over many modules touches at
one of its members' positions are *coalesced* into one array per home and
dtype (`SignalLayout`'s ``coalesce``; `Base.parts` lists the nengo bases and
their offsets): nengo's merger leaves a base per module of a model made of
many small modules (a filter state, a connection's weighted input), and the
operator would otherwise read and write each base apart, a step program that
grows with the number of modules.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from nengo.builder.signal import Signal
from nengo.exceptions import BuildError

from ..dtypes import frozen_host_array
from .sparse import sparse_structure


@dataclasses.dataclass(frozen=True)
class View:
    """Static description of how a signal reads from its base's flat array.

    Attributes
    ----------
    base : int
        Index of the base in `.SignalLayout.bases`.
    shape : tuple
        Shape of the signal.
    start, stop : int or None
        Set for contiguous views: the flat slice ``[start:stop]``.
    index : numpy.ndarray or None
        Set for non-contiguous views: flat indices into the base, with the shape
        of the signal.
    full : bool
        Whether the view covers the whole base in its natural order.
    """

    base: int
    shape: tuple
    start: int | None
    stop: int | None
    index: np.ndarray | None
    full: bool

    def __hash__(self):
        return hash((self.base, self.shape, self.start, self.stop, self.full))

    def __eq__(self, other):
        return self is other


def _addresses(arr: np.ndarray) -> np.ndarray:
    """Byte address of every element of ``arr`` (in row-major order of ``arr``)."""
    ptr = arr.__array_interface__["data"][0]
    if arr.ndim == 0:
        return np.array(ptr, dtype=np.int64)
    grids = np.indices(arr.shape, dtype=np.int64)
    return ptr + sum(g * s for g, s in zip(grids, arr.strides, strict=True))


def flat_index(sig: Signal) -> np.ndarray:
    """Flat (row-major) indices of ``sig``'s elements within its base."""
    base = sig.base
    b = base.initial_value
    v = sig.initial_value
    view_addr = _addresses(v)
    if b.flags.c_contiguous:
        ptr = b.__array_interface__["data"][0]
        idx = (view_addr - ptr) // b.itemsize
    else:
        base_addr = _addresses(b).ravel()
        order = np.argsort(base_addr)
        pos = np.searchsorted(base_addr[order], view_addr)
        idx = order[np.clip(pos, 0, len(order) - 1)]
    idx = np.asarray(idx, dtype=np.int64).reshape(v.shape)
    if idx.size and (idx.min() < 0 or idx.max() >= b.size):
        raise BuildError(f"Signal {sig} is not a view inside its base {base}")
    return idx


def make_view(sig: Signal, base_index: int, offset: int = 0, size: int | None = None) -> View:
    """Build the static `.View` of ``sig`` (a dense signal) in the array
    ``base_index``, where its base starts at element ``offset`` of the
    array's ``size`` (by default its base is the whole array)."""
    shape = tuple(sig.shape)
    size = sig.base.size if size is None else size
    if not sig.is_view:
        full = offset == 0 and sig.size == size
        return View(base_index, shape, offset, offset + sig.size, None, full)
    idx = flat_index(sig) + offset
    flat = idx.ravel()
    n = flat.size
    if n == 0:
        return View(base_index, shape, offset, offset, None, False)
    start = int(flat[0])
    if np.array_equal(flat, np.arange(start, start + n)):
        full = start == 0 and n == size
        return View(base_index, shape, start, start + n, None, full)
    return View(base_index, shape, None, None, idx, False)


#: Largest nengo base (elements) coalesced with others (`SignalLayout`'s ``coalesce``).
COALESCE_SIZE = 1024
#: Bases one signal position of a many-member operator may span before they
#: are coalesced (more: one array, read and written with one slice or gather).
COALESCE_SPAN = 8
MAX_PIECES = 8  # parts of a base held apart while a step is traced (see piecewise)
MAX_ALIGNED_PIECES = 4096  # the same, when every access is one part or the whole


@dataclasses.dataclass
class Base:
    """A base signal and its home."""

    signal: Signal
    index: int
    kind: str  # "param", "const", "state" or "scratch"
    init: np.ndarray  # flat initial value (dense bases) in the compute dtype
    key: str  # name in the state dict (state bases) or constants dict
    sparse: bool = False
    # (rows, cols): a state base carried as the factors of an outer product,
    # rows then cols in one flat array (see the module's docstring)
    factors: tuple[int, int] | None = None
    # ((nengo base, offset), ...) of a coalesced array (``signal`` then names
    # the array); empty for an array that is one nengo base
    parts: tuple = ()

    @property
    def members(self) -> tuple:
        """``(nengo base signal, offset in the flat array)`` of each base it holds."""
        return self.parts or ((self.signal, 0),)

    @property
    def carried_init(self) -> np.ndarray:
        """The flat initial value as the state holds it (the factors: zeros)."""
        if self.factors is None:
            return self.init
        return np.zeros(sum(self.factors), self.init.dtype)

    def whole(self, carried):
        """The flat value of this base from what the state carries of it (NumPy
        or JAX, any leading axes): the factors ``[u, v]`` multiplied out."""
        if self.factors is None:
            return carried
        rows = self.factors[0]
        product = carried[..., :rows, None] * carried[..., None, rows:]
        return product.reshape(carried.shape[:-1] + (-1,))


class SignalLayout:
    """The static home of every signal of a built nengo model.

    Parameters
    ----------
    operators : list of Operator
        The operators in step order.
    float_dtype : numpy.dtype
        The floating point dtype of all float signals.
    int_dtype : numpy.dtype
        The integer dtype of all integer signals.
    rank_one : callable, optional
        ``rank_one(op) -> signals``: the signals the lowering of ``op`` sets to
        an outer product every step and keeps the factors of (learning rules'
        deltas); the candidates to carry as factors (none without it).
    coalesce : bool
        Hold the small bases that one many-member operator spans in one array
        per home and dtype (see the module's docstring and `_coalesce`).
    keep_apart : iterable of Signal
        Bases never coalesced (the step counter, read by its own array).
    """

    def __init__(
        self, operators, float_dtype, int_dtype, rank_one=None, coalesce=False, keep_apart=()
    ):
        self.float_dtype = np.dtype(float_dtype)
        self.int_dtype = np.dtype(int_dtype)
        self.bases: list[Base] = []
        self._base_of: dict[Signal, int] = {}
        self._offset: dict[Signal, int] = {}  # nengo base -> its offset in a coalesced array
        self._views: dict[Signal, View] = {}

        written = set()
        for op in operators:
            for sig in op.sets + op.incs + op.updates:
                written.add(sig.base)
        self.scratch = _scratch_bases(operators)

        for op in operators:
            for sig in op.all_signals:
                self._add_base(sig.base, written)
        if coalesce:
            self._coalesce(operators, {sig.base for sig in keep_apart})
        self.piecewise = self._piecewise_bases(operators)
        if rank_one is not None:
            self._factor_bases(operators, rank_one)

    def _coalesce(self, operators, keep_apart: set) -> None:
        """Join the small bases (the state ones 1-D) that one operator standing
        for many (a `.StackedOps`, a merged filter or rule: its ``ops``) reads
        or writes at one of its members' signal positions over more than
        `COALESCE_SPAN` bases: one array per home and dtype for each set of
        such bases, in the order of `bases` (the order operators first touch
        them), so that the operator's signals lie side by side in one array.
        Other bases stay apart (XLA fuses the writes of a small base into the
        operator making them; a slice update of a larger array is a kernel of
        its own). Constants named as params make their array a param one
        (`find_params`)."""

        def eligible(b):
            # a state base of several dimensions is carried in its shape (see
            # `.StepFunction`); constants (params-to-be) may have any shape
            sig = b.signal
            return (
                (b.kind == "const" or sig.ndim <= 1)
                and not b.sparse
                and 0 < sig.size <= COALESCE_SIZE
                and sig not in keep_apart
            )

        parent = list(range(len(self.bases)))  # union-find over base indices

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for op in operators:
            members = getattr(op, "ops", None) or ()
            lengths = {len(m.all_signals) for m in members}
            if len(members) <= COALESCE_SPAN or len(lengths) != 1:
                continue
            for position in range(lengths.pop()):
                spanned = set()
                for m in members:
                    i = self._base_of.get(m.all_signals[position].base)
                    if i is not None and eligible(self.bases[i]):
                        spanned.add(i)
                if len(spanned) > COALESCE_SPAN:
                    first, *rest = sorted(spanned)
                    for i in rest:
                        parent[root(i)] = root(first)
        groups: dict[tuple, list[Base]] = {}
        for b in self.bases:
            groups.setdefault((root(b.index), b.kind, b.init.dtype.str), []).append(b)
        joined = {id(b): g for g in groups.values() if len(g) > 1 for b in g}
        if not joined:
            return
        old, self.bases = self.bases, []
        for b in old:
            group = joined.get(id(b))
            if group is None:
                b.index = len(self.bases)
                b.key = f"s{b.index}"
                self.bases.append(b)
                self._base_of[b.signal] = b.index
            elif group[0] is b:
                self._add_coalesced(group)

    def _add_coalesced(self, group: list[Base]) -> None:
        index = len(self.bases)
        offsets = np.cumsum([0] + [b.init.size for b in group[:-1]])
        init = frozen_host_array(np.concatenate([b.init for b in group]), group[0].init.dtype)
        name = f"coalesced<{group[0].signal.name}, ..., {group[-1].signal.name}>"
        parts = tuple((b.signal, int(o)) for b, o in zip(group, offsets, strict=True))
        signal = Signal(init, name=name)  # names the array; shares its initial value
        self.bases.append(Base(signal, index, group[0].kind, init, f"s{index}", parts=parts))
        for sig, offset in parts:
            self._base_of[sig] = index
            self._offset[sig] = offset

    def _factor_bases(self, operators, rank_one) -> None:
        """Mark the state bases carried as two factors (``rank_one``'s signals):
        a whole 2-D base, written by that operator only, zero at first (the
        factors start at zero), and smaller as factors."""
        writers: dict[int, int] = {}
        outer: dict[int, tuple] = {}
        for op in operators:
            for i in {self.base_index(sig) for sig in op.sets + op.incs + op.updates}:
                writers[i] = writers.get(i, 0) + 1
            for sig in rank_one(op):
                if sig.ndim == 2 and self.view(sig).full:
                    outer[self.base_index(sig)] = tuple(sig.shape)
        for i, (rows, cols) in outer.items():
            b = self.bases[i]
            if (
                b.kind == "state"
                and not b.sparse
                and writers.get(i) == 1
                and i not in self.piecewise
                and rows + cols < rows * cols
                and not np.any(b.init)
            ):
                b.factors = (rows, cols)

    def _piecewise_bases(self, operators) -> frozenset:
        """Written bases whose operators touch contiguous parts of them.

        Such a base is held as the arrays written to its parts while a step is
        traced (see `nengojax.ops.pieces`): its reads are then the written
        arrays themselves, and no write updates the whole base. A base
        qualifies when every signal of it that an operator touches is a slice
        and their bounds cut it into at most `MAX_PIECES` parts, or into at
        most `MAX_ALIGNED_PIECES` when each of those slices is one part or the
        whole base (the signals of many small modules side by side: held as
        one array, each module's write is a kernel of its own).
        """
        views: dict[int, set] = {}  # base -> (start, stop) of each slice touched
        gathered = set()
        for op in operators:
            for sig in op.all_signals:
                i = self.base_index(sig)
                base = self.bases[i]
                if base.kind not in ("state", "scratch") or base.sparse:
                    continue
                view = self.view(sig)
                if view.index is not None:
                    gathered.add(i)
                    continue
                views.setdefault(i, set()).add((view.start, view.stop))

        def qualifies(i, slices):
            whole = (0, self.bases[i].init.size)
            cuts = sorted({c for s in slices for c in s}.union(whole))
            n_parts = len(cuts) - 1
            if i in gathered or n_parts < 2:
                return False
            if n_parts <= MAX_PIECES:
                return True
            if n_parts > MAX_ALIGNED_PIECES:
                return False
            parts = set(zip(cuts[:-1], cuts[1:], strict=True))
            return all(s in parts or s == whole for s in slices)

        return frozenset(i for i, slices in views.items() if qualifies(i, slices))

    def _add_base(self, base: Signal, written: set) -> int:
        if base in self._base_of:
            return self._base_of[base]
        index = len(self.bases)
        sparse = base.sparse
        if base in written:
            kind = "scratch" if base in self.scratch else "state"
        else:
            kind = "const"
        value = sparse_structure(base)[3] if sparse else np.asarray(base.initial_value)
        # read-only and aligned: CPU device arrays share it instead of copying
        init = frozen_host_array(value.ravel(), self.cast_dtype(value))
        self.bases.append(Base(base, index, kind, init, f"s{index}", sparse))
        self._base_of[base] = index
        return index

    def cast_dtype(self, value: np.ndarray) -> np.dtype:
        """The compute dtype of a NumPy value's kind."""
        kind = np.asarray(value).dtype.kind
        if kind in "fb":
            return self.float_dtype
        if kind in "iu":
            return self.int_dtype
        raise BuildError(f"Unsupported signal dtype {np.asarray(value).dtype}")

    def base_index(self, sig: Signal) -> int:
        """Index of ``sig``'s base, adding the base if needed (as a constant)."""
        base = sig.base
        if base not in self._base_of:
            return self._add_base(base, set())
        return self._base_of[base]

    def view(self, sig: Signal) -> View:
        """The static `.View` of ``sig`` (a base signal: the whole base)."""
        if sig not in self._views:
            i = self.base_index(sig)
            offset = self._offset.get(sig.base)
            if offset is None:
                self._views[sig] = make_view(sig, i)
            else:
                self._views[sig] = make_view(sig, i, offset, self.bases[i].init.size)
        return self._views[sig]

    def by_kind(self, kind: str) -> list[Base]:
        """All bases of one home."""
        return [b for b in self.bases if b.kind == kind]

    def find_params(self, model, keys) -> dict[str, Param]:
        """Name the params: constant float signals named in ``model.sig``.

        Encoders, biases, weights, JaxNode params, ... of the objects ``keys``
        names become user-visible params, and their bases move from ``const``
        to ``param``. Signals sharing one place in a base are named once.

        Parameters
        ----------
        model : nengo.builder.Model
            The built model.
        keys : KeyMap
            The names of the network's objects.

        Returns
        -------
        dict
            Param key -> `Param`, in ``model.sig`` order. A signal in the same
            place as an earlier param (nengo's operator merger stores equal
            scalar transforms once) is not a param of its own: ``tied`` maps its
            key to that param's.
        """
        params: dict[str, Param] = {}
        seen: dict[tuple, str] = {}
        self.tied: dict[str, str] = {}  # key of a signal -> key of the param holding it
        for obj, sigs in model.sig.items():
            if not keys.has(obj):
                continue
            for attr, sig in sigs.items():
                if sig is None or not isinstance(attr, str):
                    continue
                bi = self.base_index(sig)
                base = self.bases[bi]
                if base.kind not in ("const", "param"):
                    continue
                if base.sparse:
                    if sig is not sig.base:
                        continue
                    value, view = base.init, None
                else:
                    if np.asarray(sig.initial_value).dtype.kind != "f":
                        continue
                    view = self.view(sig)
                    value = _initial_view(base.init, view)
                ident = (bi, _view_signature(view))
                key = keys.key(obj, attr)
                if ident in seen:  # nengo's merger stored equal values once
                    self.tied[key] = seen[ident]
                    continue
                seen[ident] = key
                base.kind = "param"
                params[key] = Param(bi, view, value)
        return params


def _initial_view(init: np.ndarray, view) -> np.ndarray:
    """A param's initial value as a view of its base's (read-only as the base;
    no copy: a large weight matrix is held once), or a copy for a gathered view."""
    if view.index is not None:
        return init[view.index]
    return init[view.start : view.stop].reshape(view.shape)


@dataclasses.dataclass(frozen=True)
class Param:
    """Where a named param lives: its base, its view (None for a whole sparse
    base) and its initial value."""

    base: int
    view: View | None
    init: np.ndarray


def _view_signature(view):
    if view is None:
        return ("sparse",)
    if view.index is None:
        return (view.start, view.stop, view.shape)
    return (tuple(view.index.ravel().tolist()), view.shape)


def pure_sets(op) -> list:
    """The signals that ``op`` overwrites without reading their old value.

    nengo lists some read-modify-write signals under ``sets`` (the state of
    `.SimNeurons`, for example), so only known pure setters count. Other
    operators may declare theirs in a ``pure_sets`` attribute.
    """
    declared = getattr(op, "pure_sets", None)
    if declared is not None:
        return list(declared)
    from nengo.builder.neurons import SimNeurons
    from nengo.builder.operator import Copy, Reset, SimPyFunc
    from nengo.builder.processes import SimProcess

    if isinstance(op, Reset):
        return [op.dst]
    if isinstance(op, Copy) and not op.inc and op.dst_slice is None:
        return [op.dst]
    if isinstance(op, SimPyFunc) and op.output is not None:
        return [op.output]
    if isinstance(op, SimProcess) and op.mode == "set":
        return [op.output]
    if isinstance(op, SimNeurons):
        return [op.output]
    return []


def _covers_base(sig: Signal) -> bool:
    if not sig.is_view:
        return True
    if sig.size != sig.base.size:
        return False
    return np.array_equal(np.sort(flat_index(sig).ravel()), np.arange(sig.base.size))


def _scratch_bases(operators) -> set:
    """Bases whose every element is overwritten before it is read in each step.

    Such bases carry no information from one step to the next. We take the
    simple, safe case: the first operator (in step order) touching the base
    overwrites the whole base without reading it, and nothing updates it.
    """
    first = {}
    updated = set()
    for op in operators:
        for sig in op.updates:
            updated.add(sig.base)
        pure = pure_sets(op)
        pure_ids = {id(s) for s in pure}
        others = [s for s in op.all_signals if id(s) not in pure_ids]
        for sig in others:
            first.setdefault(sig.base, False)
        for sig in pure:
            if sig.base not in first:
                first[sig.base] = _covers_base(sig)
    return {b for b, ok in first.items() if ok and b not in updated}
