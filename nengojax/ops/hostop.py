"""Operators with no JAX lowering: their own NumPy ``make_step``, on the host.

An operator type nengojax does not know (one of your own, with its own nengo
builder) still runs, as ``nengo.Simulator`` runs it: each step the current
values of the bases of its signals go to the host, its ``make_step`` function
(made once per minibatch item, on NumPy copies of those bases) runs, and the
bases it writes come back. Correct, but slow (a host callback every step) and
not differentiable: register a JAX lowering (`nengojax.register_lowering`) to
make it fast.
"""

from __future__ import annotations

import jax
import numpy as np
from nengo.builder.operator import Operator
from nengo.builder.signal import SignalDict
from nengo.exceptions import BuildError

from .hostcall import host_call


def has_numpy_step(op) -> bool:
    """Whether ``op``'s class implements nengo's ``make_step``."""
    return type(op).make_step is not Operator.make_step


def lower_host_operator(op, ctx):
    """Lower ``op`` to a host callback running its NumPy ``make_step``."""
    layout = ctx.layout
    written = {id(s.base) for s in op.sets + op.incs + op.updates}
    bases, seen = [], set()
    for sig in op.all_signals:
        if id(sig.base) not in seen:
            seen.add(id(sig.base))
            bases.append(sig.base)
    if any(b.sparse for b in bases):
        raise BuildError(
            f"{op} ({type(op).__name__}) has no JAX lowering and uses sparse signals, "
            "which its NumPy step cannot get on the host; register a lowering for it "
            "(nengojax.register_lowering)"
        )
    views = [layout.view(b) for b in bases]  # each whole base (maybe part of an array)
    out = [i for i, b in enumerate(bases) if id(b) in written]
    dtypes = [layout.bases[v.base].init.dtype for v in views]
    result = tuple(jax.ShapeDtypeStruct((bases[i].size,), dtypes[i]) for i in out)
    dt = ctx.dt

    def make(stream):
        signals = SignalDict()
        for b in bases:
            signals.init(b)
        rng = np.random.RandomState(ctx.seed_for_stream(stream))
        return signals, op.make_step(signals, dt, rng)

    def host(step, made, *values):
        signals, step_fn = made
        for b, v in zip(bases, values, strict=True):
            arr = dict.__getitem__(signals, b)
            arr[...] = np.asarray(v).reshape(arr.shape)
        step_fn()
        return tuple(
            np.asarray(dict.__getitem__(signals, bases[i]), dtypes[i]).ravel() for i in out
        )

    warning = (
        op,
        f"{type(op).__name__} ({op.tag or op}) has no JAX lowering; its NumPy make_step "
        "runs on the host every time step (slow, and not differentiable; see "
        "nengojax.register_lowering)",
    )
    call = host_call(ctx, host, result, per_stream=make, warning=warning)

    def apply(env):
        new = call(env, *[env.read(v).reshape(-1) for v in views])
        for i, value in zip(out, new, strict=True):
            env.set(views[i], value.reshape(views[i].shape))

    return apply
