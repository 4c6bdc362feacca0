"""The lowering of `.StackedOps`: one member's lowering, vmapped over all.

The members' signals are gathered into stacked arrays (a slice when they lie
one after another in one base, a gather otherwise), the first member's own
lowering runs once under `jax.vmap` on them, and its writes are scattered
back (a slice update, or a scatter). The step then holds one product, copy or
neuron update per group instead of one per member, and XLA compiles a step
whose size follows the number of groups.

A group is stacked only where that cannot change the result: the lowering
must touch nothing but the signals of its operator (`MemberEnv`), no member
may read what another writes, and members may write the same elements only
by increments. Otherwise the members run one after another, as they would
unstacked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler.layout import View
from ..compiler.stack import StackedOps
from .access import MergedAccess, flat_indices, is_contiguous
from .inline import users_lowering
from .registry import get_lowering, register_lowering

#: Most members whose slices of one base are copied one by one (more: a gather).
MAX_SLICES = 8


class NotStackable(Exception):
    """The member's lowering asked for more than its own signals."""


class MemberEnv:
    """The environment one member's lowering sees under `jax.vmap`.

    Parameters
    ----------
    values : dict
        Signal position -> this member's value of the signal (positions read).
    position : dict
        ``id(signal)`` of the first member -> position.
    shapes, dtypes : list
        Shape and dtype of the signal at each position.
    rng : callable
        ``rng(salt)``: this member's PRNG key.
    dt : float
        The time step.
    float_dtype : numpy.dtype
        The compute dtype of float signals.
    stream : jax.Array
        The minibatch item being simulated.
    """

    def __init__(self, values, position, shapes, dtypes, rng, dt, float_dtype, stream):
        self.values = values
        self.position = position
        self.shapes = shapes
        self.dtypes = dtypes
        self._rng = rng
        self.dt = dt
        self.float_dtype = float_dtype
        self.stream = stream
        self.reads: set[int] = set()
        self.writes: dict[int, tuple] = {}  # position -> (value, is an increment)

    def _position(self, sig) -> int:
        p = None if isinstance(sig, View) else self.position.get(id(sig))
        if p is None:
            raise NotStackable(f"{sig} is not a signal of the operator")
        return p

    def read(self, sig):
        p = self._position(sig)
        if p in self.writes:
            value, inc = self.writes[p]
            if not inc:
                return value
            self.reads.add(p)
            return self.values[p] + value
        self.reads.add(p)
        return self.values[p]

    def _write(self, sig, value, inc: bool) -> None:
        p = self._position(sig)
        value = jnp.broadcast_to(jnp.asarray(value, self.dtypes[p]), self.shapes[p])
        if inc and p in self.writes:
            old, old_inc = self.writes[p]
            self.writes[p] = (old + value, old_inc)
        else:
            self.writes[p] = (value, inc)

    def set(self, sig, value) -> None:
        self._write(sig, value, False)

    def inc(self, sig, value) -> None:
        self._write(sig, value, True)

    def write(self, sig, value, mode: str) -> None:
        self._write(sig, value, mode == "inc")

    def rng(self, salt: int):
        return self._rng(salt)

    def __getattr__(self, name):
        # reads of whole bases, host values, run-time inputs, checks: the
        # lowering needs the full environment and the members run one by one
        raise NotStackable(f"stacked lowerings cannot use env.{name}")


def _sequential(applies):
    applies = [a for a in applies if a is not None]

    def apply(env):
        for a in applies:
            a(env)

    return apply if applies else None


class _Slot:
    """One signal position of every member: where it lives, read and written
    as one stacked array where it can be."""

    def __init__(self, layout, views: list, shape: tuple):
        self.views = views
        self.shape = shape
        self.invariant = None  # key of the stacked value in env.invariants, if any
        bases = {v.base for v in views}
        self.base = bases.pop() if len(bases) == 1 else None
        self.index = np.concatenate([flat_indices(v) for v in views])
        self.contiguous = self.base is not None and is_contiguous(self.index)
        # a few members apart from each other: read and written part by part
        # (copies of slices are faster than a gather); many: one slice or
        # gather per base (a step program that does not grow with the number
        # of members)
        slices = self.base is None or all(v.index is None for v in views)
        self.per_view = slices and not self.contiguous and len(views) <= MAX_SLICES
        self.access = None if self.per_view else MergedAccess(layout, views)

    def read(self, env):
        if self.invariant is not None:
            return env.invariants[self.invariant]
        if self.per_view:
            return jnp.stack([env.read(v) for v in self.views])
        return self.access.read(env).reshape((len(self.views), *self.shape))

    def write(self, env, value, inc: bool) -> None:
        if self.per_view:
            for i, v in enumerate(self.views):
                env.write(v, value[i], "inc" if inc else "set")
        else:
            self.access.write(env, value.reshape(-1), inc)


def _conflicts(slots, reads, writes) -> bool:
    """Whether running the members together could differ from one by one:
    a member reading what another writes, or members setting the same elements."""
    touched: dict[int, list] = {}  # base -> (member, flat indices, how) of each access
    for p in reads:
        for m, v in enumerate(slots[p].views):
            touched.setdefault(v.base, []).append((m, flat_indices(v), "read"))
    for p, inc in writes.items():
        for m, v in enumerate(slots[p].views):
            touched.setdefault(v.base, []).append((m, flat_indices(v), "inc" if inc else "set"))
    for accesses in touched.values():
        if all(how == "read" for _, _, how in accesses):
            continue
        size = max(int(idx.max()) + 1 for _, idx, _ in accesses if idx.size)
        owner = np.full(size, -1)  # the member writing each element (-2: several, by incs)
        setter = np.zeros(size, bool)
        for m, idx, how in accesses:
            if how == "read":
                continue
            other = (owner[idx] >= 0) & (owner[idx] != m) | (owner[idx] == -2)
            if other.any() and (how == "set" or setter[idx][other].any()):
                return True
            owner[idx] = np.where(other, -2, m)
            setter[idx] |= how == "set"
        for m, idx, how in accesses:
            if (
                how == "read"
                and ((owner[idx] == -2) | (owner[idx] >= 0) & (owner[idx] != m)).any()
            ):
                return True
    return False


@register_lowering(StackedOps)
def lower_stacked_ops(op, ctx):
    """Lower a `.StackedOps`: vmapped over its members where that gives the
    members' own results, one after another otherwise."""
    members = op.ops
    first = members[0]
    lower = users_lowering(get_lowering(first, ctx.platform))
    applies = [lower(m, ctx) for m in members]
    if applies[0] is None:
        return _sequential(applies)

    signals = first.all_signals
    pattern = [signals.index(s) for s in signals]
    if any([m.all_signals.index(s) for s in m.all_signals] != pattern for m in members):
        return _sequential(applies)  # a signal used twice in one member but not another
    positions = sorted(set(pattern))
    position = {id(signals[p]): p for p in positions}
    layout = ctx.layout
    slots, shapes, dtypes = {}, {}, {}
    for p in positions:
        views = [layout.view(m.all_signals[p]) for m in members]
        shapes[p] = tuple(signals[p].shape)
        dtypes[p] = layout.bases[views[0].base].init.dtype
        slots[p] = _Slot(layout, views, shapes[p])

    apply_first = applies[0]

    def run_member(values, rng, stream):
        env = MemberEnv(values, position, shapes, dtypes, rng, ctx.dt, ctx.float_dtype, stream)
        apply_first(env)
        return env

    # which signals the lowering reads and how it writes (traced abstractly)
    probe = {}

    def trace(values):
        env = run_member(values, lambda salt: jax.random.PRNGKey(0), 0)
        probe["reads"] = frozenset(env.reads)
        probe["writes"] = {p: inc for p, (_, inc) in env.writes.items()}
        return {p: v for p, (v, _) in env.writes.items()}

    spec = {p: jax.ShapeDtypeStruct(shapes[p], dtypes[p]) for p in positions}
    try:
        jax.eval_shape(trace, spec)
    except NotStackable:
        return _sequential(applies)
    reads, writes = sorted(probe["reads"]), probe["writes"]
    if _conflicts(slots, reads, writes):
        return _sequential(applies)
    for p in reads:
        # params and constants gathered from many bases: stacked once per
        # run, before the loop over steps, instead of copied every step
        slot = slots[p]
        kinds = {layout.bases[v.base].kind for v in slot.views}
        if kinds <= {"param", "const"} and not slot.contiguous:
            slot.invariant = ctx.add_invariant(slot.views, slot.shape)
    k = len(members)

    def apply(env):
        stacked = {p: slots[p].read(env) for p in reads}

        def one(values, m):
            member = run_member(
                values, lambda salt: jax.random.fold_in(env.rng(salt), m), env.stream
            )
            return {p: v for p, (v, _) in member.writes.items()}

        out = jax.vmap(one)(stacked, jnp.arange(k))
        for p, inc in writes.items():
            slots[p].write(env, out[p], inc)

    return apply
