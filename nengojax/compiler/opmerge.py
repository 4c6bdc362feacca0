"""nengo's operator merger, making nengo's merges in a fraction of its time.

nengo's `~nengo.builder.optimizer.OpMergePass` decides which operators may
merge from, for every operator, the set of all operators that depend on it:
a transitive closure of Python sets, rebuilt and hashed on every pass, and
scanned element by element for each candidate. On models with thousands of
operators that is most of the build (a chain of 1000 ensembles: ~12 s of
nengo's ~19 s). Here the same sets are Python integers used as bit sets
(bit ``i`` is operator ``i`` of the pass), so a closure is one OR per edge
and each dependency check one AND; the dependency graph keeps plain sets, so
merging vertices is a C-level set difference.

The decisions are nengo's: the same candidates in the same order, the same
tests (nengo's mergers check the signals), the same merged operators and
signals, with one addition: a signal of a neuron operator that is a view of
its whole, small (`SMALL_SIGNAL`) base counts as that base, so that the
neurons of separate small networks, whose signals nengo's first merges make
whole views of separate bases, can merge too (nengo never merges them;
``whole_views_as_bases=False`` gives exactly nengo's merges).
The stopping rule differs too: nengo may stop early when a pass
merges too little per second of wall time, which depends on the machine;
this one always runs until a pass merges nothing, so every build of a network
merges the same way. Graphs whose bit sets would take more than
`MAX_BITSET_BYTES` (up to ``n_ops**2 / 8`` bytes; the order of
`_compact_order` keeps them far below that on chains of modules) get nengo's
own sets instead, which are sized by the
number of dependents but several times slower (that chain: a 500 s build
instead of 130 s).

One rule is added: operators writing or reading a non-constant signal of
`LARGE_SIGNAL` elements or more (a layer of a deep network, a conv feature
map, a big ensemble) never merge. Large constant signals (the decoders of
nengo_spa's 16-dimensional ensembles) do not count: merging their products
into block-sparse ones saves a kernel per ensemble, and a constant is read
whole.
Merging saves a kernel per operator, which matters for many small ensembles
and not for a few big layers; merged, big layers share one concatenated base,
and every read of a part of it becomes, in a gradient, a zero-padded copy of
the whole base (NengoDL's spiking-MNIST net: 28 such copies of 200 x 103,715
floats per training step). Unmerged, each lives as its own array.
"""

from __future__ import annotations

import ctypes

import numpy as np
from nengo.builder.neurons import SimNeurons
from nengo.builder.optimizer import OpInfo, OpMergePass, OpMerger, OpsToMerge
from nengo.rc import rc

from .schedule import OrderedOps, cycle_error, readonly_signals_apart

__all__ = ["optimize"]

#: Most bytes the dependency bit sets of one merge pass may take.
MAX_BITSET_BYTES = 2 * 2**30

#: Operators with a non-constant signal of this many elements or more are not merged.
LARGE_SIGNAL = 8192

#: Neurons of separate networks merge (`_SkipLarge.unview_whole_views`), and
#: operators stack (`.stack`), only with signals of at most this many elements:
#: for bigger ones the step's work, not its number of operators, dominates,
#: and gathering their parts costs more than it saves (nengo_spa's 6800-neuron
#: state networks: 30% fewer steps/s).
SMALL_SIGNAL = 1024


def has_large_signal(op) -> bool:
    """Whether ``op`` touches a non-constant signal of `LARGE_SIGNAL` elements or more."""
    return any(sig.size >= LARGE_SIGNAL and not sig.readonly for sig in op.all_signals)


def optimize(model, dg: dict, whole_views_as_bases: bool = True) -> None:
    """Merge the operators of ``model`` as nengo's optimizer does (in place).

    Parameters
    ----------
    model : nengo.builder.Model
        The built model; its operators and signal dict are replaced by the
        merged ones.
    dg : dict
        Operator -> operators depending on it; merged in place.
    whole_views_as_bases : bool
        Before each pass, put in each operator the base of every small
        neuron signal that is a view of its whole base (see
        `_SkipLarge.unview_whole_views`): then the neurons (and what they
        read and write) of separate networks merge too. False makes exactly
        nengo's merges.
    """
    with readonly_signals_apart():
        merge_pass = _merge_pass(dg)
        views_only = True
        while True:
            before = len(merge_pass.dg.forward)
            if whole_views_as_bases:
                merge_pass.unview_whole_views()
            merge_pass(views_only)
            merged_some = len(merge_pass.dg.forward) < before
            # Merging views first fixes the memory order that later merges
            # follow; once views stop merging, try the rest, and go back to
            # views whenever that made new ones.
            if views_only and not merged_some:
                views_only = False
            elif not views_only and not merged_some:
                break
            elif not views_only:
                views_only = True

    merge_pass.__dict__.pop("dependents", None)  # the bit sets: up to n_ops**2 / 16 bytes
    _release_freed_memory()
    replacements = merge_pass.sig_replacements
    for signals in model.sig.values():
        for name, sig in signals.items():
            while sig in replacements:
                sig = replacements[sig]
            signals[name] = sig
    del model.operators[:]
    for op in dg:
        model.add_op(op)


def _merge_pass(dg: dict):
    """`BitsetMergePass` if its first bit sets fit `MAX_BITSET_BYTES` (later
    passes have fewer operators), else nengo's sets (`OrderedMergePass`)."""
    merge_pass = BitsetMergePass(dg)
    try:
        merge_pass.dependents = _Closure(merge_pass.dg.forward, MAX_BITSET_BYTES)
    except MemoryError:
        del merge_pass
        _release_freed_memory()
        return OrderedMergePass(dg)
    merge_pass.closure_ready = True
    return merge_pass


def _release_freed_memory() -> None:
    """Hand memory freed by the bit sets back to the operating system.

    The bit sets are many Python ints of a few kB, allocated from the C heap;
    once freed, glibc keeps the heap for later allocations, so XLA's compile
    would otherwise add its peak on top of theirs (a 10,240-ensemble model:
    7.7 GB instead of 5.6 GB). ``malloc_trim`` is glibc's; elsewhere nothing.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _post_order(graph: dict, roots) -> list:
    """Post-order of a depth-first search of ``graph`` (node -> next nodes)
    from each of ``roots`` in turn; raises nengo's cycle error on a cycle."""
    done: set = set()
    on_path: set = set()
    order = []
    for root in roots:
        if root in done:
            continue
        stack = [(root, iter(graph[root]))]
        on_path.add(root)
        while stack:
            node, nexts = stack[-1]
            for nxt in nexts:
                if nxt in on_path:
                    raise cycle_error()
                if nxt not in done:
                    on_path.add(nxt)
                    stack.append((nxt, iter(graph[nxt])))
                    break
            else:
                stack.pop()
                on_path.discard(node)
                done.add(node)
                order.append(node)
    return order


def _depth_first_order(forward: dict) -> list:
    """A topological order in which each operator's dependents follow it closely.

    Reverse post-order of a depth-first search: the operators a search reaches
    from one operator come right after it, so the bit sets of `_Closure`,
    stored relative to their operator, stay short.
    """
    return _post_order(forward, forward)[::-1]


def _depth_first_order_back(forward: dict) -> list:
    """A topological order in which each operator follows its dependencies closely.

    Post-order of a depth-first search through dependencies, from the
    operators nothing depends on: an operator comes right after what it
    depends on, where in `_depth_first_order` an operator depending on
    several others (the synapse of a connection between two ensembles) comes
    wherever the first search reached it, far from the rest.
    """
    backward: dict = {op: [] for op in forward}
    for op, succs in forward.items():
        for succ in succs:
            backward[succ].append(op)
    return _post_order(backward, [op for op, succs in forward.items() if not succs])


def _span_bits(order: list, forward: dict) -> int:
    """The bits `_Closure` takes in ``order``: for each operator, the distance
    to the last operator depending on it."""
    index = {op: i for i, op in enumerate(order)}
    last: dict = {}
    total = 0
    for op in reversed(order):
        i = index[op]
        end = i
        for succ in forward[op]:
            end = max(end, last[succ])
        last[op] = end
        total += end - i
    return total


def _compact_order(forward: dict) -> list:
    """Of the two depth-first topological orders, the one with shorter bit sets.

    Which is shorter depends on the network: operators with several
    dependencies favour `_depth_first_order_back` (a chain of 200 ensembles:
    100x fewer bits; 1,024 small memories: 20x; at 10,240 the build's peak
    fell from 4.9 to 1.9 GB), operators with many dependents
    `_depth_first_order`.
    """
    orders = [_depth_first_order(forward), _depth_first_order_back(forward)]
    return min(orders, key=lambda order: _span_bits(order, forward))


class _Closure:
    """For every operator, the bits of all operators that depend on it.

    Bit ``k`` of ``relative[op]`` is operator ``index[op] + 1 + k`` (dependents
    always come later in the order); ``closure[op]`` gives the absolute bits.
    """

    def __init__(self, forward: dict, max_bytes: float = float("inf")):
        order = _compact_order(forward)
        self.index = index = {op: i for i, op in enumerate(order)}
        self.relative = relative = {}
        max_bits, n_bits = 8 * max_bytes, 0
        for op in reversed(order):
            i = index[op]
            bits = 0
            for succ in forward[op]:
                bits |= (relative[succ] << 1 | 1) << (index[succ] - i - 1)
            relative[op] = bits
            n_bits += bits.bit_length()
            if n_bits > max_bits:
                raise MemoryError(f"the dependency bit sets exceed {max_bytes} bytes")

    def __getitem__(self, op) -> int:
        return self.relative[op] << (self.index[op] + 1)


class _OpBits:
    """A set of operators held as bits, plus any operators without a bit."""

    def __init__(self, index: dict):
        self.index = index
        self.bits = 0
        self.unindexed: set = set()

    def bit(self, op) -> int:
        i = self.index.get(op)
        return 0 if i is None else 1 << i

    def add(self, op) -> None:
        i = self.index.get(op)
        if i is None:
            self.unindexed.add(op)  # made by a merge in this pass
        else:
            self.bits |= 1 << i

    def update(self, ops) -> None:
        for op in ops:
            self.add(op)

    def __len__(self) -> int:
        return self.bits.bit_count() + len(self.unindexed)

    def __contains__(self, op) -> bool:
        i = self.index.get(op)
        return op in self.unindexed if i is None else bool(self.bits >> i & 1)


class _Group(OpsToMerge):
    """Operators about to merge, their signals and the bits of their dependents."""

    def __init__(self, initial_op, merge_pass: BitsetMergePass):
        self.merged = merge_pass.merged
        self.merged_dependents = merge_pass.merged_dependents
        self.dependents = merge_pass.dependents
        self.ops = [initial_op]
        self.optype = type(initial_op)
        self.opinfo = OpInfo()
        self.all_signals = set(initial_op.all_signals)
        self.all_dependents = merge_pass.dependents[initial_op]
        self.op_bits = merge_pass.merged.bit(initial_op)

    def add(self, op) -> None:
        self.ops.append(op)
        self.all_signals.update(op.all_signals)
        self.all_dependents |= self.dependents[op]
        self.op_bits |= self.merged.bit(op)

    def independent(self, op) -> bool:
        """Neither ``op`` nor these operators depend on each other or on a merge."""
        bit = self.merged.bit(op)
        deps = self.dependents[op]
        return not (
            bit & self.all_dependents
            or deps & self.op_bits
            or op in self.merged
            or bit & self.merged_dependents.bits
            or deps & self.merged.bits
        )

    def accepts(self, op) -> bool:
        """nengo's `OpMerger.is_mergeable`, with the dependency tests on bits."""
        merger = OpMerger.mergers.get(self.optype)
        return (
            type(op) is self.optype
            and merger is not None
            and self.independent(op)
            and self.check_signals(self.ops[-1], op)
            and merger.check_signals(op, self)
            and merger.is_mergeable(self.last_op, op)
        )


def _whole(sig) -> bool:
    """Whether ``sig`` is a view that is its whole base, in the base's order."""
    base = sig.base
    return (
        sig.is_view
        and sig.shape == base.shape
        and sig.elemoffset == 0
        and sig.strides == base.strides
        and sig.readonly == base.readonly
    )


class _SkipLarge:
    """Leave operators with large signals out of every merge (`LARGE_SIGNAL`);
    signals that are views of their whole base count as that base."""

    def unview_whole_views(self) -> None:
        """Put each whole-base view's base in its place in every operator.

        nengo merges operators on views only when the views follow each other
        in one base; after one merge each ensemble's signals are whole views
        of their own merged base, so ensembles of different networks never
        merge. As bases, they merge like any other signals. Only signals of
        neuron operators, of at most `SMALL_SIGNAL` elements, are taken: the
        neurons of many small networks then update as one, and the products
        reading and writing them follow (merging everything, or big networks,
        slowed nengo_spa's models by 10-30%).
        """
        whole = {
            sig: sig.base
            for op in self.dg.forward
            if isinstance(op, SimNeurons)
            for sig in op.all_signals
            if sig.size <= SMALL_SIGNAL and _whole(sig)
        }
        if not whole:
            return
        self.replace_op_signals(whole)
        for view, base in whole.items():
            ops = self.sig2ops[base]
            for op in self.sig2ops.pop(view):
                ops.add(op)
        self.sig_replacements.update(whole)

    def perform_merges_for_subset(self, subset: list) -> None:
        large = [op for op in subset if has_large_signal(op)]
        self.might_merge.difference_update(large)
        if large:
            subset = [op for op in subset if not has_large_signal(op)]
        super().perform_merges_for_subset(subset)


class OrderedMergePass(_SkipLarge, OpMergePass):
    """nengo's merge pass, with the candidates in build order."""

    def __init__(self, dg: dict):
        super().__init__(dg)
        self.might_merge = OrderedOps(dg)  # not ordered by object identity


class BitsetMergePass(_SkipLarge, OpMergePass):
    """One pass of nengo's operator merger, with dependents held as bits."""

    def __init__(self, dg: dict):
        for op, succs in dg.items():
            dg[op] = set(succs)
        super().__init__(dg)
        self.dg.backward = {op: set(preds) for op, preds in self.dg.backward.items()}
        self.might_merge = OrderedOps(dg)  # build order, not object identity

    def __call__(self, only_merge_ops_with_view: bool) -> None:
        if not self.__dict__.pop("closure_ready", False):  # `_merge_pass` made the first
            self.dependents = _Closure(self.dg.forward)
        index = self.dependents.index
        self.only_merge_ops_with_view = only_merge_ops_with_view
        self.merged = _OpBits(index)
        self.merged_dependents = _OpBits(index)
        self.opinfo.clear()
        self.perform_merges()

    def perform_merges_for_view_subset(self, subset: list) -> None:
        """Merge runs of operators whose first views follow each other in memory."""
        info = [self.opinfo.get(op) for op in subset]
        offsets = np.array([i.v_offset for i in info], dtype=rc.float_dtype)
        order = np.argsort(offsets)
        offsets = offsets[order]
        ops = [subset[i] for i in order]
        for i, op in enumerate(ops):
            if op in self.merged:
                continue  # its signals change with that merge: wait for the next pass
            if self.merged_dependents.bit(op) & self.merged_dependents.bits or (
                self.dependents[op] & self.merged.bits
            ):
                continue
            group = _Group(op, self)
            # Sorted by offset: candidates start where this view ends, and
            # the first gap ends the run.
            first = np.searchsorted(offsets, offsets[i] + self.opinfo.get(op).v_size)
            for other in ops[first:]:
                if group.not_sequential(other):
                    break
                if other not in self.merged and group.accepts(other):
                    group.add(other)
            if len(group.ops) > 1:
                self.merge(group)
            elif self.only_merge_ops_with_view:
                self.might_merge.remove(op)

    def merge(self, tomerge: _Group) -> None:
        merged_op, merged_sig = OpMerger.merge(tomerge.ops)
        self.dg.merge(tomerge.ops, merged_op)
        self.might_merge.difference_update(tomerge.ops)
        self.might_merge.add(merged_op)
        self.merged.update(tomerge.ops)
        self.merged_dependents.bits |= tomerge.all_dependents
        # Operators sharing a signal with the merged ones wait for the next
        # pass too: their signals are about to be replaced.
        for op in tomerge.ops:
            for sig in op.all_signals:
                self.merged.update(self.sig2ops[sig])
        self.resolve_views_on_replaced_signals(merged_sig)
        self.sig_replacements.update(merged_sig)
        self.replace_op_signals(merged_sig)
        self.update_signal_indexing(merged_op, merged_sig)
