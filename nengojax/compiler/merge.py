"""Merging operators that nengo's own optimizer leaves apart.

nengo's optimizer merges resets, copies, products and neurons, but not
synapses or learning rules: a network with a thousand connections keeps a
thousand `.SimProcess` filters, and a step (and a compile time) that grows with
them. This pass replaces

- all linear filters of one kind and mode with one `MergedLinearFilter` (one
  filter update over one merged state array), and
- all `.SimPES` operators with one `MergedPES` (one gathered outer product),

reading and writing each base signal once. A merged operator takes the place
the dependency graph allows; a group that would create a cycle stays unmerged.
"""

from __future__ import annotations

import numpy as np
from nengo.builder.learning_rules import SimPES
from nengo.builder.operator import Operator
from nengo.builder.processes import SimProcess
from nengo.builder.signal import Signal
from nengo.exceptions import BuildError
from nengo.synapses import LinearFilter
from nengo.utils.simulator import operator_dependency_graph

from .schedule import base_ranks


class MergedLinearFilter(Operator):
    """Many linear filters of one kind and one mode, as one operator.

    Parameters
    ----------
    ops : list of SimProcess
        The merged operators.
    systems : list of tuple
        The discrete ``(A, B, C, D)`` of each operator.
    X : Signal
        The merged filter state, shape ``(order, total)``.
    mode : str
        ``"set"``, ``"inc"`` or ``"update"``, as for `.SimProcess`.
    """

    def __init__(self, ops, systems, X, mode, tag=None):
        super().__init__(tag=tag or f"{len(ops)} merged linear filters")
        self.ops = ops
        self.systems = systems
        self.mode = mode
        outputs = [op.output for op in ops]
        # like SimProcess, the state is only listed as updated (also read, but
        # listing it twice would make the operator depend on itself)
        self.reads = [op.input for op in ops]
        self.sets = outputs if mode == "set" else []
        self.incs = outputs if mode == "inc" else []
        self.updates = (outputs if mode == "update" else []) + [X]

    @property
    def inputs(self):
        return self.reads

    @property
    def outputs(self):
        return {"set": self.sets, "inc": self.incs, "update": self.updates[:-1]}[self.mode]

    @property
    def X(self):
        return self.updates[-1]

    @property
    def pure_sets(self):
        """Set-mode outputs are overwritten without being read."""
        return list(self.sets)

    def make_step(self, signals, dt, rng):  # pragma: no cover (nengojax only)
        raise NotImplementedError("MergedLinearFilter only runs in nengojax")


class MergedPES(Operator):
    """Many `.SimPES` operators as one: each ``delta = alpha * outer(error, pre)``."""

    def __init__(self, ops, tag=None):
        super().__init__(tag=tag or f"{len(ops)} merged PES rules")
        self.ops = ops
        self.sets = []
        self.incs = []
        self.reads = [op.pre_filtered for op in ops] + [op.error for op in ops]
        self.updates = [op.delta for op in ops]

    @property
    def pre_filtered(self):
        return self.reads[: len(self.ops)]

    @property
    def errors(self):
        return self.reads[len(self.ops) :]

    @property
    def deltas(self):
        return self.updates

    def make_step(self, signals, dt, rng):  # pragma: no cover (nengojax only)
        raise NotImplementedError("MergedPES only runs in nengojax")


def _system(op, dt):
    A, B, C, D = op.process._get_ss(dt)
    return tuple(np.asarray(m, dtype=np.float64) for m in (A, B, C, D))


def _kind(system):
    """Filters of one kind merge: same structure; first-order filters with no
    passthrough (Lowpass) merge whatever their time constants."""
    A, B, C, D = system
    if len(A) == 1 and (D == 0).all():
        return ("one_x",)
    return ("exact",) + tuple(m.tobytes() for m in system) + tuple(m.shape for m in system)


def _mergeable_filter(op):
    if not isinstance(op, SimProcess) or op.input is None:
        return False
    if not isinstance(op.process, LinearFilter) or "X" not in op.state:
        return False
    if type(op.process).make_step is not LinearFilter.make_step:
        return False
    if op.input.ndim != 1 or op.output.ndim != 1 or op.input.size != op.output.size:
        return False
    X = op.state["X"]
    return X.ndim == 2 and not X.is_view


def _filter_groups(step_order, dt, base_rank):
    groups: dict[tuple, list] = {}
    for op in step_order:
        if _mergeable_filter(op):
            system = _system(op, dt)
            if len(system[0]) > 0:
                groups.setdefault((op.mode, *_kind(system)), []).append((op, system))
    for (mode, *_), group in groups.items():
        # by input (base, offset), so merged reads are long contiguous runs
        group.sort(key=lambda g: (base_rank[g[0].input.base], g[0].input.elemoffset))
        ops = [g[0] for g in group]
        X = Signal(
            np.concatenate([op.state["X"].initial_value for op in ops], axis=1),
            name=f"merged_filter_state[{len(ops)}]",
        )
        yield ops, MergedLinearFilter(ops, [g[1] for g in group], X, mode)


def _pes_groups(step_order):
    ops = [op for op in step_order if type(op) is SimPES and op.delta.ndim == 2]
    if ops:
        yield ops, MergedPES(ops)


def merge_operators(step_order: list, dt: float, toposort, min_group: int = 2) -> list:
    """Replace groups of filters and PES rules by merged operators.

    ``toposort(dg, operators)`` orders a dependency graph; a group whose merged
    operator would close a cycle is left as it was.
    """
    base_rank = base_ranks(step_order)
    ops = list(step_order)
    groups = [*_filter_groups(step_order, dt, base_rank), *_pes_groups(step_order)]
    for members, merged in groups:
        if len(members) < min_group:
            continue
        ids = {id(op) for op in members}
        trial = [op for op in ops if id(op) not in ids] + [merged]
        try:
            ops = toposort(operator_dependency_graph(trial), trial)
        except BuildError:  # the merged operator would close a cycle
            continue
    return ops
