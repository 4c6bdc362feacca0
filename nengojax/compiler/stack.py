"""Stacking operators of one kind and shape that nengo's merger cannot merge.

nengo merges operators only when their signals lie one after another in
memory. A model of many identical modules (SPA networks, EnsembleArrays,
Spaun) keeps one reset, product, copy and neuron update per module: a step,
and an XLA compile, that grow with the number of modules. Here operators of
one type whose signals have the same shapes and whose static data (slices,
block structure, neuron parameters) are equal are grouped into one
`StackedOps`: its lowering runs the operator's own lowering once, under
`jax.vmap`, over the members' signals gathered into stacked arrays (see
`nengojax.ops.stacked`).

Members of a group never depend on each other: each group holds operators
of one *depth* (the longest chain of operators before them in the step's
dependency graph), and an operator depending on another is always deeper.
For the same reason no stacking can close a cycle between groups.

Only operators whose non-constant signals are small (`.opmerge.SMALL_SIGNAL`)
stack, in groups of at least `MIN_GROUP`: for big signals (a layer, a conv
feature map, a large ensemble) the work of the step dominates, not its number
of operators, and gathering the members' parts into stacked arrays would cost
more than it saves (and in a gradient a full-size copy of each part).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from nengo.builder.neurons import SimNeurons
from nengo.builder.operator import BsrDotInc, Copy, DotInc, ElementwiseInc, Operator, Reset
from nengo.params import Parameter
from nengo.utils.simulator import operator_dependency_graph

from .layout import pure_sets
from .opmerge import SMALL_SIGNAL
from .schedule import base_ranks


class StackedOps(Operator):
    """Operators of one type, signal shapes and static data, run as one.

    Parameters
    ----------
    ops : list of Operator
        The members, independent of each other; ``ops[0]`` is the one whose
        lowering is run for all of them.
    """

    def __init__(self, ops, tag=None):
        super().__init__(tag=tag or f"{len(ops)} stacked {type(ops[0]).__name__}")
        self.ops = list(ops)
        self.sets = [s for op in ops for s in op.sets]
        self.incs = [s for op in ops for s in op.incs]
        self.reads = [s for op in ops for s in op.reads]
        self.updates = [s for op in ops for s in op.updates]

    @property
    def pure_sets(self):
        """The members' signals overwritten without being read (see `.layout.pure_sets`)."""
        return [s for op in self.ops for s in pure_sets(op)]

    def make_step(self, signals, dt, rng):  # pragma: no cover (nengojax only)
        raise NotImplementedError("StackedOps only runs in nengojax")


def _static_key(value):
    """A hashable key equal for equal static data (slices, index or parameter arrays)."""
    if value is None or isinstance(value, slice):
        return repr(value)
    arr = np.asarray(value)
    return repr(value) if arr.dtype.kind == "O" else (arr.dtype.str, arr.shape, arr.tobytes())


def _neuron_key(op: SimNeurons):
    nt = op.neurons
    cls = type(nt)
    names = sorted(n for n in dir(cls) if isinstance(getattr(cls, n, None), Parameter))
    params = tuple((name, _static_key(getattr(nt, name))) for name in names)
    return (type(nt), params, tuple(op.state))


#: Operator type -> key of its static data; operators stack only with equal keys.
STACKABLE: dict[type, Callable] = {
    Reset: lambda op: (_static_key(op.value),),
    Copy: lambda op: (op.inc, _static_key(op.src_slice), _static_key(op.dst_slice)),
    ElementwiseInc: lambda op: (),
    DotInc: lambda op: (),
    BsrDotInc: lambda op: (_static_key(op.indices), _static_key(op.indptr), op.reshape),
    SimNeurons: _neuron_key,
}


def _signature(op):
    key = STACKABLE.get(type(op))
    if key is None:
        return None
    shapes = tuple(
        (len(group), tuple((s.shape, s.dtype.str) for s in group))
        for group in (op.sets, op.incs, op.reads, op.updates)
    )
    return (type(op), shapes, key(op))


def _depths(step_order: list, dg: dict) -> dict:
    """Longest chain of operators before each operator (``step_order`` is
    a topological order of ``dg``)."""
    depth = {op: 0 for op in step_order}
    for op in step_order:
        d = depth[op] + 1
        for succ in dg[op]:
            if depth[succ] < d:
                depth[succ] = d
    return depth


#: Smallest group stacked: for a few members, the gathers and scatters of a
#: stacked operator cost more than the operators they replace (nengo_spa's
#: models, whose groups have 2-8 members, ran 10% slower stacked).
MIN_GROUP = 8


def stack_operators(step_order: list, toposort, protected=frozenset(), min_group=None):
    """Replace groups of stackable operators by `StackedOps`.

    Parameters
    ----------
    step_order : list
        The operators in step order.
    toposort : callable
        ``toposort(dg, operators)`` orders a dependency graph.
    protected : set
        Bases that no stacked operator may write (outputs of input Nodes,
        which run-time data replaces operator by operator).
    min_group : int, optional
        Smallest group worth stacking (default `MIN_GROUP`).
    """
    min_group = MIN_GROUP if min_group is None else min_group
    dg = operator_dependency_graph(step_order)
    depth = _depths(step_order, dg)
    groups: dict[tuple, list] = {}
    for op in step_order:
        sig = _signature(op)
        if sig is None or any(s.size > SMALL_SIGNAL and not s.readonly for s in op.all_signals):
            continue
        if any(s.base in protected for s in op.sets + op.incs + op.updates):
            continue
        groups.setdefault((depth[op], sig), []).append(op)
    rank = base_ranks(step_order)
    stacked = {}
    for members in groups.values():
        if len(members) >= min_group:
            # in memory order of their largest signal: its parts then often
            # follow each other and stack as one slice
            largest = max(
                range(len(members[0].all_signals)), key=lambda p: members[0].all_signals[p].size
            )

            def place(op, p=largest):
                sig = op.all_signals[p]
                return (rank[sig.base], sig.elemoffset)

            group = StackedOps(sorted(members, key=place))
            for op in members:
                stacked[op] = group
    if not stacked:
        return list(step_order)
    ops, seen = [], set()
    for op in step_order:
        group = stacked.get(op, op)
        if id(group) not in seen:
            seen.add(id(group))
            ops.append(group)
    return toposort(operator_dependency_graph(ops), ops)
