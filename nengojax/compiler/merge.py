"""Merging operators that nengo's own optimizer leaves apart.

nengo's optimizer merges resets, copies, products and neurons, but not
synapses: a network with a thousand connections keeps a thousand
`.SimProcess` filters, and a step (and its compile time) that grows with them.
This pass replaces all update-mode `.LinearFilter` processes of one kind with a
single `MergedLinearFilter`: one filter update over one merged state array,
reading and writing each base signal once.
"""

from __future__ import annotations

import numpy as np
from nengo.builder.operator import Operator
from nengo.builder.processes import SimProcess
from nengo.builder.signal import Signal
from nengo.synapses import LinearFilter


class MergedLinearFilter(Operator):
    """Many update-mode linear filters of one kind, as one operator.

    Parameters
    ----------
    ops : list of SimProcess
        The merged operators (their filters share the discrete system kind).
    systems : list of tuple
        The discrete ``(A, B, C, D)`` of each operator.
    X : Signal
        The merged filter state, shape ``(order, total)``.
    """

    def __init__(self, ops, systems, X, tag=None):
        super().__init__(tag=tag or f"{len(ops)} merged linear filters")
        self.ops = ops
        self.systems = systems
        self.reads = [op.input for op in ops] + [X]
        self.sets = []
        self.incs = []
        self.updates = [op.output for op in ops] + [X]

    @property
    def inputs(self):
        return self.reads[:-1]

    @property
    def outputs(self):
        return self.updates[:-1]

    @property
    def X(self):
        return self.reads[-1]

    def make_step(self, signals, dt, rng):  # pragma: no cover (nengojax only)
        raise NotImplementedError("MergedLinearFilter only runs in nengojax")


def _system(op, dt):
    A, B, C, D = op.process._get_ss(dt)
    return tuple(np.asarray(m, dtype=np.float64) for m in (A, B, C, D))


def _kind(system):
    """Ops of one kind merge: same order and structure; first-order filters
    with no passthrough (Lowpass) merge whatever their time constants."""
    A, B, C, D = system
    if len(A) == 1 and (D == 0).all():
        return ("one_x",)
    return ("exact",) + tuple(m.tobytes() for m in system) + tuple(m.shape for m in system)


def _mergeable(op, updated_bases):
    if not isinstance(op, SimProcess) or op.mode != "update" or op.input is None:
        return False
    if type(op.process).make_step is not LinearFilter.make_step:
        return False
    if not isinstance(op.process, LinearFilter) or "X" not in op.state:
        return False
    if op.input.ndim != 1 or op.output.ndim != 1 or op.input.base in updated_bases:
        return False
    X = op.state["X"]
    return X.ndim == 2 and not X.is_view and op.input.size == op.output.size


def merge_linear_filters(step_order: list, dt: float, min_group: int = 2) -> list:
    """Replace groups of update-mode linear filters by `MergedLinearFilter` ops.

    Update-mode filters write nothing that is read later in the same step, and
    their inputs are not updated, so each group can run last in the step.
    """
    updated = {sig.base for op in step_order for sig in op.updates}
    groups: dict[tuple, list] = {}
    for op in step_order:
        if _mergeable(op, updated):
            system = _system(op, dt)
            if len(system[0]) == 0:
                continue
            groups.setdefault(_kind(system), []).append((op, system))
    # a deterministic rank for each base (ids differ between processes)
    base_rank = {}
    for op in step_order:
        for sig in op.all_signals:
            base_rank.setdefault(sig.base, len(base_rank))
    merged_ops = []
    removed = set()
    for group in groups.values():
        if len(group) < min_group:
            continue
        # order by input (base, offset) so merged reads are long contiguous runs
        group.sort(key=lambda g: (base_rank[g[0].input.base], g[0].input.elemoffset))
        ops = [g[0] for g in group]
        X = Signal(
            np.concatenate([op.state["X"].initial_value for op in ops], axis=1),
            name=f"merged_filter_state[{len(ops)}]",
        )
        merged_ops.append(MergedLinearFilter(ops, [g[1] for g in group], X))
        removed.update(id(op) for op in ops)
    if not merged_ops:
        return step_order
    return [op for op in step_order if id(op) not in removed] + merged_ops
