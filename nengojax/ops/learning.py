"""Lowerings of nengo's learning-rule operators (PES, BCM, Oja, Voja, RLS).

Each lowering follows the operator's NumPy ``make_step`` in
``nengo/builder/learning_rules.py`` operation by operation; the rest of a learning
rule (the error ``Reset``, the encoder ``DotInc`` of PES on neurons, the
``Copy(delta, weights, inc=True)``) is made of basic operators lowered elsewhere.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from nengo.builder.learning_rules import SimBCM, SimOja, SimPES, SimRLS, SimVoja

from ..compiler.merge import MergedPES
from .access import MergedAccess
from .registry import OPERATORS, register_lowering


def _scalar(value, dtype):
    """A Python/NumPy scalar as a 0-d array of the compute dtype."""
    return jnp.asarray(np.asarray(value, dtype=dtype))


@register_lowering(SimPES)
def lower_sim_pes(op, ctx):
    dtype = ctx.layout.float_dtype
    n_neurons = op.pre_filtered.shape[0]
    alpha = _scalar(-op.learning_rate * ctx.dt / n_neurons, dtype)

    def apply(env):
        pre = env.read(op.pre_filtered)
        error = env.read(op.error)
        env.set_outer(op.delta, alpha * error, pre)

    return apply


@register_lowering(MergedPES)
def lower_merged_pes(op, ctx):
    """All PES rules at once: gather errors and activities, one product."""
    dtype = ctx.layout.float_dtype
    pre = MergedAccess(ctx.layout, op.pre_filtered)
    err = MergedAccess(ctx.layout, op.errors)
    deltas = MergedAccess(ctx.layout, op.deltas)
    e_idx, p_idx, alpha = [], [], []
    factored = []  # (delta, alpha, error slice, activities slice) of deltas carried as factors
    e_off = p_off = 0
    rules = zip(op.ops, op.errors, op.pre_filtered, op.deltas, strict=True)
    for rule, e_sig, p_sig, delta in rules:
        d, n = e_sig.size, p_sig.size
        a = -rule.learning_rate * ctx.dt / n
        e_idx.append(e_off + np.repeat(np.arange(d), n))  # delta[r, q] = a e[r] p[q]
        p_idx.append(p_off + np.tile(np.arange(n), d))
        alpha.append(np.full(d * n, a))
        if ctx.layout.bases[ctx.layout.base_index(delta)].factors is not None:
            factored.append((delta, _scalar(a, dtype), (e_off, e_off + d), (p_off, p_off + n)))
        e_off, p_off = e_off + d, p_off + n
    e_idx, p_idx = np.concatenate(e_idx), np.concatenate(p_idx)
    alpha = np.concatenate(alpha).astype(dtype)

    def apply(env):
        errors, activities = err.read(env), pre.read(env)
        deltas.write(env, alpha * errors[e_idx] * activities[p_idx])
        for delta, a, (e0, e1), (p0, p1) in factored:
            env.keep_factors(delta, a * errors[e0:e1], activities[p0:p1])

    return apply


@register_lowering(SimBCM)
def lower_sim_bcm(op, ctx):
    dtype = ctx.layout.float_dtype
    alpha = _scalar(op.learning_rate * ctx.dt, dtype)

    def apply(env):
        pre = env.read(op.pre_filtered)
        post = env.read(op.post_filtered)
        theta = env.read(op.theta)
        env.set_outer(op.delta, alpha * post * (post - theta), pre)

    return apply


@register_lowering(SimOja)
def lower_sim_oja(op, ctx):
    dtype = ctx.layout.float_dtype
    alpha = _scalar(op.learning_rate * ctx.dt, dtype)
    beta = _scalar(op.beta, dtype)

    def apply(env):
        weights = env.read(op.weights)
        pre = env.read(op.pre_filtered)
        post = env.read(op.post_filtered)
        # forgetting, then the Hebbian term (same order as nengo)
        post_squared = alpha * post * post
        delta = -beta * weights * post_squared[:, None]
        delta = delta + jnp.outer(alpha * post, pre)
        env.set(op.delta, delta)

    return apply


@register_lowering(SimVoja)
def lower_sim_voja(op, ctx):
    dtype = ctx.layout.float_dtype
    alpha = _scalar(op.learning_rate * ctx.dt, dtype)
    scale = jnp.asarray(np.asarray(op.scale, dtype=dtype)[:, None])

    def apply(env):
        pre = env.read(op.pre_decoded)
        post = env.read(op.post_filtered)
        encoders = env.read(op.scaled_encoders)
        learning = env.read(op.learning_signal)
        delta = alpha * learning * (scale * jnp.outer(post, pre) - post[:, None] * encoders)
        env.set(op.delta, delta)

    return apply


@register_lowering(SimRLS)
def lower_sim_rls(op, ctx):
    assert len(op.pre_filtered.shape) == len(op.error.shape) == 1
    assert len(op.delta.shape) == len(op.inv_gamma.shape) == 2
    one = _scalar(1.0, ctx.layout.float_dtype)

    def apply(env):
        r = env.read(op.pre_filtered)
        error = env.read(op.error)
        P = env.read(op.inv_gamma)
        # P is symmetric, so P r = (r^T P)^T (see nengo's SimRLS.make_step)
        Pr = jnp.dot(P, r, precision=ctx.precision)
        rPr1 = one / (one + jnp.dot(r, Pr, precision=ctx.precision))
        env.set(op.inv_gamma, P - Pr[:, None] * (Pr[None, :] * rPr1))
        env.set_outer(op.delta, error, -rPr1 * Pr)

    return apply


def rank_one_deltas(op, platform: str | None = None) -> list:
    """The deltas the lowering serving ``op`` on ``platform`` sets to an outer
    product and keeps the factors of (`.StepEnv.set_outer`,
    `.StepEnv.keep_factors`), so that they can be carried as factors
    (`.SignalLayout`): those of nengojax's own lowerings above; none for a
    lowering a user registers in their place."""
    lower = OPERATORS.lookup(type(op), platform)
    if lower is lower_merged_pes:
        return list(op.deltas)
    if lower in (lower_sim_pes, lower_sim_bcm, lower_sim_rls):
        return [op.delta]
    return []
