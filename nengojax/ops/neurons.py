"""Lowering of `.SimNeurons`: the registered JAX step of each neuron type.

Steps are registered per `nengo.neurons.NeuronType` with
`nengojax.register_neuron_step` (nengo's own types and nengojax's are in
`nengojax.ops.neuron_steps`). Neuron types with no registered step run their
own NumPy ``step`` on the host (with a warning).

Training modes (``ctx.neuron_mode``): in ``"rate"`` mode a spiking type runs
the step of its rate counterpart (`rate_counterpart`; extend with
`register_rate_counterpart`), in ``"spike_aware"`` mode its spiking step runs
forward with the counterpart's derivative as gradient (`spike_aware`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from nengo import neurons as nn
from nengo.builder.neurons import SimNeurons

from ..neurons import LeakyReLU, SoftLIFRate, SpikingLeakyReLU
from . import neuron_steps  # noqa: F401  (registers the JAX steps)
from .hostcall import host_call
from .inline import users_code_unless_ours
from .registry import (
    KEYLESS_STEPS,
    get_neuron_step,
    get_rate_counterpart,
    register_lowering,
    register_rate_counterpart,
)


def _host_neuron_step(op, ctx):
    """Run the neuron type's own NumPy ``step`` through a host callback."""
    neurons = op.neurons
    warning = (
        op,
        f"{type(neurons).__name__} has no JAX implementation in nengojax; its NumPy "
        "step runs on the host every time step (slow, and not differentiable)",
    )
    names = list(op.state)
    dtype = ctx.float_dtype
    out_shape = tuple(op.output.shape)
    shapes = [tuple(op.state[n].shape) for n in names]
    dtypes = [ctx.layout.cast_dtype(op.state[n].initial_value) for n in names]
    dt = ctx.dt

    def host(step, rng, J, *state):
        st = {n: np.array(s, dtype=np.float64) for n, s in zip(names, state, strict=True)}
        st.update(op.state_extra)
        if "rng" in op.state_extra:
            st["rng"] = rng
        output = np.zeros(out_shape)
        neurons.step(dt, np.array(J, dtype=np.float64), output, **st)
        return (np.asarray(output, dtype),) + tuple(
            np.asarray(st[n], dtype=d) for n, d in zip(names, dtypes, strict=True)
        )

    result_shape = (jax.ShapeDtypeStruct(out_shape, dtype),) + tuple(
        jax.ShapeDtypeStruct(s, d) for s, d in zip(shapes, dtypes, strict=True)
    )

    def make_rng(stream):
        return np.random.RandomState(ctx.seed_for_stream(stream))

    call = host_call(ctx, host, result_shape, per_stream=make_rng, warning=warning)

    def apply(env):
        res = call(env, env.read(op.J), *[env.read(op.state[n]) for n in names])
        env.set(op.output, res[0])
        for n, v in zip(names, res[1:], strict=True):
            env.set(op.state[n], v)

    return apply


@register_lowering(SimNeurons)
def lower_sim_neurons(op, ctx):
    """Lower a `.SimNeurons` operator for ``ctx.neuron_mode``.

    ``"simulate"`` runs the registered step of ``op.neurons``. For spiking types
    with a rate counterpart (see `rate_counterpart`), ``"rate"`` runs the
    counterpart's step instead (state signals the counterpart lacks, such as the
    LIF voltage, are left unchanged), and ``"spike_aware"`` runs the spiking step
    forward with the counterpart's derivative w.r.t. ``J`` as its gradient (see
    `spike_aware`). Non-spiking types are the same in every mode.
    """
    registered = get_neuron_step(op.neurons)
    if registered is None:
        return _host_neuron_step(op, ctx)
    step = users_code_unless_ours(registered)  # a user's, as they set jit
    names = list(op.state)
    salt = ctx.op_index(op)
    dt = ctx.dt
    neurons = op.neurons

    def spike_fn(J, state, key):
        return step(neurons, dt, J, state, key)

    fn = spike_fn
    mode = ctx.neuron_mode
    if mode != "simulate" and getattr(neurons, "spiking", False):
        rate_fn = _rate_fn(op, ctx, mode)
        if rate_fn is not None:
            fn = rate_fn if mode == "rate" else spike_aware(spike_fn, rate_fn)

    keyless = fn is spike_fn and registered in KEYLESS_STEPS  # draws no random numbers

    def apply(env):
        J = env.read(op.J)
        state = {n: env.read(op.state[n]) for n in names}
        output, new_state = fn(J, state, None if keyless else env.rng(salt))
        env.set(op.output, output)
        for n in names:
            env.set(op.state[n], new_state[n])

    return apply


# --- training modes: rate counterparts and spike-aware gradients -----------------


def rate_counterpart(neuron_type, lif_smoothing: float | None = None):
    """The rate neuron type standing in for ``neuron_type`` during training.

    ================================  ==============================================
    ``neuron_type``                   counterpart
    ================================  ==============================================
    `nengo.LIF`                       `nengo.LIFRate` (`.SoftLIFRate` with
                                      ``sigma=lif_smoothing`` if that is given)
    `nengo.AdaptiveLIF`               `nengo.AdaptiveLIFRate`
    `nengo.SpikingRectifiedLinear`    `nengo.RectifiedLinear`
    `.SpikingLeakyReLU`               `.LeakyReLU`
    `nengo.RegularSpiking`,           their ``base_type``
    `nengo.StochasticSpiking`,
    `nengo.PoissonSpiking`
    `nengo.Izhikevich`                None (no rate counterpart)
    non-spiking types                 the type itself
    ================================  ==============================================

    nengo builds rates-to-spikes types as two operators (the base type, then the
    spiking wrapper reading the base type's ``rate_out``); in ``"rate"`` mode the
    wrapper passes ``amplitude * rate_out`` through.

    Parameters
    ----------
    neuron_type : nengo.neurons.NeuronType
        The (spiking) neuron type.
    lif_smoothing : float, optional
        Smoothing of the LIF counterpart (see `.SoftLIFRate`).

    Returns
    -------
    nengo.neurons.NeuronType or None
        The counterpart, or None when the spiking type has none.
    """
    if not getattr(neuron_type, "spiking", False):
        return neuron_type
    if isinstance(neuron_type, nn.RatesToSpikesNeuronType):
        return neuron_type.base_type
    fn = get_rate_counterpart(neuron_type)
    return None if fn is None else fn(neuron_type, lif_smoothing=lif_smoothing)


@register_rate_counterpart(nn.LIF)
def _lif_counterpart(nt, lif_smoothing=None):
    if lif_smoothing is not None:
        return SoftLIFRate(
            sigma=lif_smoothing, tau_rc=nt.tau_rc, tau_ref=nt.tau_ref, amplitude=nt.amplitude
        )
    return nn.LIFRate(tau_rc=nt.tau_rc, tau_ref=nt.tau_ref, amplitude=nt.amplitude)


@register_rate_counterpart(nn.AdaptiveLIF)
def _adaptive_lif_counterpart(nt, lif_smoothing=None):
    return nn.AdaptiveLIFRate(
        tau_n=nt.tau_n,
        inc_n=nt.inc_n,
        tau_rc=nt.tau_rc,
        tau_ref=nt.tau_ref,
        amplitude=nt.amplitude,
    )


@register_rate_counterpart(nn.SpikingRectifiedLinear)
def _spiking_relu_counterpart(nt, lif_smoothing=None):
    return nn.RectifiedLinear(amplitude=nt.amplitude)


def _rate_fn(op, ctx, mode):
    """``fn(J, state, key) -> (output, new_state)`` computing the rate counterpart
    of ``op.neurons``, or None (with a warning) when there is none."""
    nt = op.neurons
    dt = ctx.dt
    if isinstance(nt, nn.RatesToSpikesNeuronType):
        amplitude = nt.amplitude

        def pass_rate(J, state, key):
            return (amplitude * J).astype(J.dtype), state

        return pass_rate

    cp = rate_counterpart(nt, lif_smoothing=ctx.lif_smoothing)
    cstep = None if cp is None else get_neuron_step(cp)
    if cstep is not None:
        cstep = users_code_unless_ours(cstep)
    missing = [] if cp is None else [n for n in cp.state if n not in op.state]
    if cp is None or cstep is None or missing:
        why = (
            "it has no rate counterpart"
            if cp is None
            else f"its rate counterpart {type(cp).__name__} "
            + ("has no JAX step" if cstep is None else f"has other state ({missing})")
        )
        warnings.warn(
            f"{type(nt).__name__} neurons stay spiking in {mode!r} mode: {why} "
            "(see nengojax.register_rate_counterpart); their spikes "
            "have zero gradient",
            UserWarning,
            stacklevel=2,
        )
        return None
    names = list(cp.state)

    def rate(J, state, key):
        out, new_sub = cstep(cp, dt, J, {n: state[n] for n in names}, key)
        return out, {**state, **{n: new_sub[n] for n in names}}

    return rate


def _zero_tangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


def spike_aware(spike_fn: Callable, rate_fn: Callable) -> Callable:
    """Spiking forward, rate-counterpart gradient backward.

    Both functions are ``fn(J, state, key) -> (output, new_state)``. The result
    computes exactly ``spike_fn`` (spikes and state), but its JVP (and hence its
    gradient) is that of ``rate_fn``'s output w.r.t. ``J``; the new state gets a
    zero tangent (gradients do not flow through voltages and the like).

    Parameters
    ----------
    spike_fn : callable
        The spiking step.
    rate_fn : callable
        The rate counterpart's step.

    Returns
    -------
    callable
        A `jax.custom_jvp` function with the signature of ``spike_fn``.
    """

    @jax.custom_jvp
    def step(J, state, key):
        return spike_fn(J, state, key)

    @step.defjvp
    def step_jvp(primals, tangents):
        J, state, key = primals
        out, new_state = spike_fn(J, state, key)
        _, out_dot = jax.jvp(lambda j: rate_fn(j, state, key)[0], (J,), (tangents[0],))
        new_state_dot = jax.tree_util.tree_map(_zero_tangent, new_state)
        return (out, new_state), (out_dot.astype(out.dtype), new_state_dot)

    return step


@register_rate_counterpart(SpikingLeakyReLU)
def _spiking_leaky_relu_counterpart(nt, lif_smoothing=None):
    return LeakyReLU(negative_slope=nt.negative_slope, amplitude=nt.amplitude)
