"""Lowering of `.SimNeurons`: one pure JAX step per neuron type.

A neuron step is registered per `nengo.neurons.NeuronType` subclass with
`register_neuron_step`:

.. code-block:: python

    @register_neuron_step(MyNeuron)
    def my_neuron_step(neuron_type, dt, J, state, rng):
        ...
        return output, new_state

``state`` maps the neuron type's state names (``"voltage"``, ...) to arrays;
``rng`` is a JAX PRNG key (used by stochastic types). Neuron types with no
registered step run their own NumPy ``step`` on the host (with a warning).

All of nengo's built-in neuron types have JAX steps here, computing what their
NumPy ``step`` computes, element for element, in the dtype of ``J``. Rate
types keep finite values and gradients for every ``J`` (e.g. ``LIFRate`` at
``J <= 1``), so they can be trained through.

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
from jax.experimental import io_callback
from nengo import neurons as nn
from nengo.builder.neurons import SimNeurons

from ..compiler.registry import register_lowering

_NEURON_STEPS: dict[type, Callable] = {}


def register_neuron_step(neuron_cls: type) -> Callable:
    """Decorator registering the JAX step of ``neuron_cls`` (exact type match)."""

    def decorator(fn: Callable) -> Callable:
        _NEURON_STEPS[neuron_cls] = fn
        return fn

    return decorator


def get_neuron_step(neuron_type) -> Callable | None:
    """The JAX step registered for exactly ``type(neuron_type)``, or None."""
    return _NEURON_STEPS.get(type(neuron_type))


def _host_neuron_step(op, ctx):
    """Run the neuron type's own NumPy ``step`` through a host callback."""
    neurons = op.neurons
    warnings.warn(
        f"{type(neurons).__name__} has no JAX implementation in nengojax; its NumPy "
        "step runs on the host every time step (slow, and not differentiable)",
        UserWarning,
        stacklevel=2,
    )
    names = list(op.state)
    dtype = ctx.layout.float_dtype
    out_shape = tuple(op.output.shape)
    shapes = [tuple(op.state[n].shape) for n in names]
    dtypes = [ctx.layout.cast(op.state[n].initial_value).dtype for n in names]
    rngs = {}

    def host(stream, J, *state):
        key = int(stream)
        if key not in rngs:
            rngs[key] = np.random.RandomState(ctx.seed_for_stream(key))
        st = {n: np.array(s, dtype=np.float64) for n, s in zip(names, state, strict=True)}
        st.update(op.state_extra)
        if "rng" in op.state_extra:
            st["rng"] = rngs[key]
        output = np.zeros(out_shape)
        neurons.step(ctx.dt, np.array(J, dtype=np.float64), output, **st)
        return (np.asarray(output, dtype),) + tuple(
            np.asarray(st[n], dtype=d) for n, d in zip(names, dtypes, strict=True)
        )

    host = ctx.guard_callback(host)
    result_shape = (jax.ShapeDtypeStruct(out_shape, dtype),) + tuple(
        jax.ShapeDtypeStruct(s, d) for s, d in zip(shapes, dtypes, strict=True)
    )

    def apply(env):
        res = io_callback(
            host,
            result_shape,
            env.stream,
            env.read(op.J),
            *[env.read(op.state[n]) for n in names],
            ordered=False,
        )
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
    step = get_neuron_step(op.neurons)
    if step is None:
        return _host_neuron_step(op, ctx)
    names = list(op.state)
    salt = ctx.op_index(op)
    dt = ctx.dt
    neurons = op.neurons

    def spike_fn(J, state, key):
        return step(neurons, dt, J, state, key)

    fn = spike_fn
    mode = getattr(ctx, "neuron_mode", "simulate")
    if mode not in ("simulate", "rate", "spike_aware"):
        raise ValueError(f"unknown neuron mode {mode!r}")
    if mode != "simulate" and getattr(neurons, "spiking", False):
        rate_fn = _rate_fn(op, ctx, mode)
        if rate_fn is not None:
            fn = rate_fn if mode == "rate" else spike_aware(spike_fn, rate_fn)

    def apply(env):
        J = env.read(op.J)
        state = {n: env.read(op.state[n]) for n in names}
        output, new_state = fn(J, state, env.rng(salt))
        env.set(op.output, output)
        for n in names:
            env.set(op.state[n], new_state[n])

    return apply


# --- training modes: rate counterparts and spike-aware gradients -----------------

_RATE_COUNTERPARTS: dict[type, Callable] = {}


def register_rate_counterpart(spiking_cls: type) -> Callable:
    """Decorator registering the rate counterpart of a spiking neuron type.

    The decorated function is called as ``fn(neuron_type, lif_smoothing=None)``
    and returns the non-spiking `nengo.neurons.NeuronType` whose output is the
    mean output of ``neuron_type`` (with a registered JAX step, and state names
    that are a subset of the spiking type's). Matching is by exact type.

    .. code-block:: python

        @register_rate_counterpart(MySpikingType)
        def my_rate(nt, lif_smoothing=None):
            return MyRateType(amplitude=nt.amplitude)
    """

    def decorator(fn: Callable) -> Callable:
        _RATE_COUNTERPARTS[spiking_cls] = fn
        return fn

    return decorator


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
    fn = _RATE_COUNTERPARTS.get(type(neuron_type))
    return None if fn is None else fn(neuron_type, lif_smoothing=lif_smoothing)


@register_rate_counterpart(nn.LIF)
def _lif_counterpart(nt, lif_smoothing=None):
    if lif_smoothing is not None:
        from ..neurons import SoftLIFRate

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


def _lif_smoothing(ctx) -> float | None:
    """``lif_smoothing`` from `nengojax.configure_settings` on the built network."""
    from ..config import get_setting

    return get_setting(getattr(ctx.model, "toplevel", None), "lif_smoothing", None)


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

    cp = rate_counterpart(nt, lif_smoothing=_lif_smoothing(ctx))
    cstep = None if cp is None else get_neuron_step(cp)
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
            "(see nengojax.ops.neurons.register_rate_counterpart); their spikes "
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


# --- the common neuron types -------------------------------------------------


def _lif_spiking(tau_rc, tau_ref, min_voltage, amplitude, dt, J, voltage, ref):
    """nengo's LIF step, element for element."""
    ref = ref - dt
    delta_t = jnp.clip(dt - ref, 0, dt)
    voltage = voltage - (J - voltage) * jnp.expm1(-delta_t / tau_rc)
    spiked = voltage > 1
    output = jnp.where(spiked, amplitude / dt, 0).astype(J.dtype)
    safe = jnp.where(spiked, (voltage - 1) / jnp.where(spiked, J - 1, 1), 0)
    t_spike = dt + tau_rc * jnp.log1p(-safe)
    voltage = jnp.where(voltage < min_voltage, min_voltage, voltage)
    voltage = jnp.where(spiked, 0, voltage)
    ref = jnp.where(spiked, tau_ref + t_spike, ref)
    return output, voltage, ref


def _lif_rate(tau_rc, tau_ref, amplitude, J):
    """nengo's LIFRate rate, 0 where ``J <= 1``; finite values and gradients everywhere.

    The double ``where`` keeps the untaken branch (``J <= 1``) away from
    ``log1p(1 / 0)``, so neither the value nor the gradient is NaN/inf there.
    """
    j = J - 1
    pos = j > 0
    j_safe = jnp.where(pos, j, 1)
    rate = amplitude / (tau_ref + tau_rc * jnp.log1p(1 / j_safe))
    return jnp.where(pos, rate, 0).astype(J.dtype)


def _adapt(tau_n, inc_n, dt, output, n):
    """nengo's adaptation update ``n += (dt / tau_n) * (inc_n * output - n)``."""
    return n + (dt / tau_n) * (inc_n * output - n)


@register_neuron_step(nn.LIF)
def lif_step(nt, dt, J, state, rng):
    out, v, r = _lif_spiking(
        nt.tau_rc,
        nt.tau_ref,
        nt.min_voltage,
        nt.amplitude,
        dt,
        J,
        state["voltage"],
        state["refractory_time"],
    )
    return out, {"voltage": v, "refractory_time": r}


@register_neuron_step(nn.LIFRate)
def lif_rate_step(nt, dt, J, state, rng):
    return _lif_rate(nt.tau_rc, nt.tau_ref, nt.amplitude, J), state


@register_neuron_step(nn.AdaptiveLIFRate)
def adaptive_lif_rate_step(nt, dt, J, state, rng):
    n = state["adaptation"]
    out = _lif_rate(nt.tau_rc, nt.tau_ref, nt.amplitude, J - n)
    return out, {"adaptation": _adapt(nt.tau_n, nt.inc_n, dt, out, n)}


@register_neuron_step(nn.AdaptiveLIF)
def adaptive_lif_step(nt, dt, J, state, rng):
    n = state["adaptation"]
    out, v, r = _lif_spiking(
        nt.tau_rc,
        nt.tau_ref,
        nt.min_voltage,
        nt.amplitude,
        dt,
        J - n,
        state["voltage"],
        state["refractory_time"],
    )
    return out, {
        "voltage": v,
        "refractory_time": r,
        "adaptation": _adapt(nt.tau_n, nt.inc_n, dt, out, n),
    }


@register_neuron_step(nn.RectifiedLinear)
def relu_step(nt, dt, J, state, rng):
    return (nt.amplitude * jnp.maximum(J, 0)).astype(J.dtype), state


def _integrate_and_fire_signed(amplitude, dt, rate, voltage):
    """Like `_integrate_and_fire` for signed rates: whole spikes towards zero
    (``trunc``), negative below zero."""
    voltage = voltage + rate * dt
    n_spikes = jnp.trunc(voltage)
    return ((amplitude / dt) * n_spikes).astype(rate.dtype), voltage - n_spikes


def _integrate_and_fire(amplitude, dt, rate, voltage):
    """``voltage += rate * dt``; emit ``floor(voltage)`` spikes and subtract them."""
    voltage = voltage + rate * dt
    n_spikes = jnp.floor(voltage)
    return ((amplitude / dt) * n_spikes).astype(rate.dtype), voltage - n_spikes


@register_neuron_step(nn.SpikingRectifiedLinear)
def spiking_relu_step(nt, dt, J, state, rng):
    out, v = _integrate_and_fire(nt.amplitude, dt, jnp.maximum(J, 0), state["voltage"])
    return out, {"voltage": v}


@register_neuron_step(nn.Sigmoid)
def sigmoid_step(nt, dt, J, state, rng):
    # == (1 / tau_ref) / (1 + exp(-J)), with a gradient that stays finite for J << 0
    return ((1.0 / nt.tau_ref) * jax.nn.sigmoid(J)).astype(J.dtype), state


@register_neuron_step(nn.Tanh)
def tanh_step(nt, dt, J, state, rng):
    return ((1.0 / nt.tau_ref) * jnp.tanh(J)).astype(J.dtype), state


@register_neuron_step(nn.Izhikevich)
def izhikevich_step(nt, dt, J, state, rng):
    """nengo's Izhikevich step (time constants in ms, hence the ``* 1000``)."""
    voltage, recovery = state["voltage"], state["recovery"]
    J = jnp.maximum(-30.0, J)
    dV = (0.04 * voltage**2 + 5 * voltage + 140 - recovery + J) * 1000
    voltage = voltage + dV * dt
    spiked = voltage >= 30
    output = jnp.where(spiked, 1.0 / dt, 0).astype(J.dtype)
    voltage = jnp.where(spiked, nt.reset_voltage, voltage).astype(J.dtype)
    dU = (nt.tau_recovery * (nt.coupling * voltage - recovery)) * 1000
    recovery = recovery + dU * dt
    recovery = jnp.where(spiked, recovery + nt.reset_recovery, recovery).astype(J.dtype)
    return output, {"voltage": voltage, "recovery": recovery}


# --- rates-to-spikes types -----------------------------------------------------
#
# nengo builds a `.RatesToSpikesNeuronType` as two `.SimNeurons` operators: one
# running ``base_type`` (input current -> ``rate_out``, lowered by the base
# type's own registered step, or the host fallback), and one running the
# wrapper type with ``J = rate_out``. The steps below are that second operator:
# their ``J`` is already the base type's rate, exactly as in nengo's NumPy steps.


@register_neuron_step(nn.RegularSpiking)
def regular_spiking_step(nt, dt, J, state, rng):
    out, v = _integrate_and_fire(nt.amplitude, dt, J, state["voltage"])
    return out, {**state, "voltage": v}


def _signed(nt, J, n_spikes_of):
    """Spike counts from ``|J|`` (negative types) or ``J``, signed like ``J``."""
    if nt.negative:
        return n_spikes_of(jnp.abs(J)) * jnp.sign(J)
    return n_spikes_of(J)


@register_neuron_step(nn.StochasticSpiking)
def stochastic_spiking_step(nt, dt, J, state, rng):
    """Stochastic rounding of ``dt * rate``: ``floor`` or ``floor + 1`` spikes."""

    def n_spikes(rate):
        e = dt * rate
        whole = jnp.trunc(e)
        frac = e - whole
        u = jax.random.uniform(rng, J.shape, dtype=J.dtype)
        return whole + (u < frac).astype(J.dtype)

    out = (nt.amplitude / dt) * _signed(nt, J, n_spikes)
    return out.astype(J.dtype), state


@register_neuron_step(nn.PoissonSpiking)
def poisson_spiking_step(nt, dt, J, state, rng):
    """Poisson spike counts with mean ``dt * rate``."""

    def n_spikes(rate):
        return jax.random.poisson(rng, rate * dt, J.shape).astype(J.dtype)

    out = (nt.amplitude / dt) * _signed(nt, J, n_spikes)
    return out.astype(J.dtype), state
