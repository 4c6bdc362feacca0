"""The order operators run in each step, and nengo's optimizer made deterministic."""

from __future__ import annotations

import contextlib
import heapq

from nengo.builder.optimizer import SigMerger
from nengo.exceptions import BuildError


def stable_toposort(dg: dict, operators: list) -> list:
    """Operators in dependency order, ties broken by build order.

    nengo's own toposort breaks ties by object hash, which changes between
    processes; this order is the same for every compile of the same network.

    Parameters
    ----------
    dg : dict
        Operator -> operators that depend on it (nengo's dependency graph).
    operators : list
        The operators in build order.

    Returns
    -------
    list
        The operators in step order.
    """
    rank = {id(op): i for i, op in enumerate(operators)}
    for op in dg:
        rank.setdefault(id(op), len(rank))
    indegree = {op: 0 for op in dg}
    for succs in dg.values():
        for succ in succs:
            indegree[succ] = indegree.get(succ, 0) + 1
    ready = [(rank[id(op)], id(op), op) for op, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, op = heapq.heappop(ready)
        order.append(op)
        for succ in dg.get(op, ()):
            indegree[succ] -= 1
            if indegree[succ] == 0:
                heapq.heappush(ready, (rank.setdefault(id(succ), len(rank)), id(succ), succ))
    if len(order) != len(indegree):
        raise cycle_error()
    return order


def cycle_error() -> BuildError:
    """nengo's error for a dependency graph with cycles."""
    return BuildError(
        "Input graph has cycles. This usually occurs because too many connections "
        "have no synapses. Try setting more synapses to '0' instead of 'None'."
    )


class OrderedOps(dict):
    """The set operations nengo's merge pass uses, iterating in insertion order.

    nengo keeps the operators that may still merge in a set ordered by object
    identity, which differs between processes; in build order, every build of
    a network gets the same layout (the same state and param layout in every
    process of a multi-host run).
    """

    def __init__(self, items=()):
        super().__init__((x, None) for x in items)

    def add(self, x):
        self[x] = None

    def remove(self, x):
        del self[x]

    def discard(self, x):
        self.pop(x, None)

    def difference_update(self, items):
        for x in items:
            self.pop(x, None)


@contextlib.contextmanager
def readonly_signals_apart():
    """Keep nengo's signal merger from merging read-only with written signals.

    Read-only signals (biases, encoders, weights) merged with written ones
    would make a base of state, and the constants in it would be lost as
    params.
    """
    original_check = SigMerger.check_signals

    def check_signals(signals, axis=0):
        if len({bool(s.readonly) for s in signals}) > 1:
            raise ValueError("Cannot merge read-only and writable signals.")
        return original_check(signals, axis=axis)

    SigMerger.check_signals = staticmethod(check_signals)
    try:
        yield
    finally:
        SigMerger.check_signals = staticmethod(original_check)


def base_ranks(operators) -> dict:
    """Base -> its rank by first use in ``operators``: a deterministic order
    of bases (their ids differ between runs)."""
    rank: dict = {}
    for op in operators:
        for sig in op.all_signals:
            rank.setdefault(sig.base, len(rank))
    return rank
