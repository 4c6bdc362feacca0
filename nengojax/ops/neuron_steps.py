"""JAX steps of the neuron types: nengo's built-in ones and nengojax's own.

Each computes what the type's NumPy ``step`` computes, element for element, in
the dtype of ``J``. Rate types keep finite values and gradients for every ``J``
(e.g. ``LIFRate`` at ``J <= 1``), so they can be trained through.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from nengo import neurons as nn

from ..neurons import LeakyReLU, SoftLIFRate, SpikingLeakyReLU, soft_lif_rate
from .registry import register_neuron_step

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


@register_neuron_step(nn.LIF, random=False)
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


@register_neuron_step(nn.LIFRate, random=False)
def lif_rate_step(nt, dt, J, state, rng):
    return _lif_rate(nt.tau_rc, nt.tau_ref, nt.amplitude, J), state


@register_neuron_step(nn.AdaptiveLIFRate, random=False)
def adaptive_lif_rate_step(nt, dt, J, state, rng):
    n = state["adaptation"]
    out = _lif_rate(nt.tau_rc, nt.tau_ref, nt.amplitude, J - n)
    return out, {"adaptation": _adapt(nt.tau_n, nt.inc_n, dt, out, n)}


@register_neuron_step(nn.AdaptiveLIF, random=False)
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


@register_neuron_step(nn.RectifiedLinear, random=False)
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


@register_neuron_step(nn.SpikingRectifiedLinear, random=False)
def spiking_relu_step(nt, dt, J, state, rng):
    out, v = _integrate_and_fire(nt.amplitude, dt, jnp.maximum(J, 0), state["voltage"])
    return out, {"voltage": v}


@register_neuron_step(nn.Sigmoid, random=False)
def sigmoid_step(nt, dt, J, state, rng):
    # == (1 / tau_ref) / (1 + exp(-J)), with a gradient that stays finite for J << 0
    return ((1.0 / nt.tau_ref) * jax.nn.sigmoid(J)).astype(J.dtype), state


@register_neuron_step(nn.Tanh, random=False)
def tanh_step(nt, dt, J, state, rng):
    return ((1.0 / nt.tau_ref) * jnp.tanh(J)).astype(J.dtype), state


@register_neuron_step(nn.Izhikevich, random=False)
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


@register_neuron_step(nn.RegularSpiking, random=False)
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


# --- nengojax's neuron types ---------------------------------------------------


@register_neuron_step(SoftLIFRate, random=False)
def soft_lif_rate_step(nt, dt, J, state, rng):
    """JAX step of `SoftLIFRate`."""
    out = soft_lif_rate(jnp, nt.sigma, nt.tau_rc, nt.tau_ref, nt.amplitude, J)
    return out.astype(J.dtype), state


def _leaky(nt, J):
    return jnp.where(J > 0, J, nt.negative_slope * J)


@register_neuron_step(LeakyReLU, random=False)
def leaky_relu_step(nt, dt, J, state, rng):
    """JAX step of `LeakyReLU`."""
    return (nt.amplitude * _leaky(nt, J)).astype(J.dtype), state


@register_neuron_step(SpikingLeakyReLU, random=False)
def spiking_leaky_relu_step(nt, dt, J, state, rng):
    """JAX step of `SpikingLeakyReLU`."""
    out, v = _integrate_and_fire_signed(nt.amplitude, dt, _leaky(nt, J), state["voltage"])
    return out, {"voltage": v}
