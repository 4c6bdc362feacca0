"""Neuron types with the dynamics of NIR's neuron primitives.

Each type is a `nengo.neurons.NeuronType` with a NumPy ``step`` (so it runs in
``nengo.Simulator``) and a JAX step registered with
`nengojax.register_neuron_step`. Parameters are scalars (so nengo's optimizer
may merge ensembles of equal types); per-neuron resistances, leak voltages,
thresholds and reset voltages of a NIR node go into the ensemble's gains and
biases (see `nengojax.nir.from_nir`).

All states start at 0. With ``J = gain * x + bias`` the input current, a time
step of length ``dt`` computes:

- `ResetLIF`: ``v <- J + (v - J) * exp(-dt / tau)`` (the exact solution of
  ``tau dv/dt = J - v`` for ``J`` held over the step); if ``v > 1`` the neuron
  spikes and ``v <- 0``.
- `ResetIF`: ``v <- v + dt * J``; if ``v > 1`` it spikes and ``v <- 0``.
- `LeakyIntegrator`: outputs ``v``, then ``v <- J + (v - J) * exp(-dt / tau)``
  (so it equals a `nengo.Lowpass` synapse, whose output lags its input by a
  step; `from_nir` builds NIR ``LI`` nodes from such synapses).
- `Integrator`: ``v <- v + dt * J``; the output is ``v``.
- `Heaviside`: spikes whenever ``J > 0`` (no state).

A spike is an output of ``amplitude / dt`` for one step (unit area, nengo's
convention for spikes: a NIR Dirac spike).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from nengo.dists import Choice
from nengo.neurons import NeuronType
from nengo.params import NumberParam

from ..ops.registry import register_neuron_step

__all__ = ["Heaviside", "Integrator", "LeakyIntegrator", "ResetIF", "ResetLIF"]


class _NIRNeuron(NeuronType):
    """Shared parts: amplitude, cheap ``max_rates_intercepts``."""

    amplitude = NumberParam("amplitude", low=0, low_open=True)

    def __init__(self, amplitude=1.0, initial_state=None):
        super().__init__(initial_state=initial_state)
        self.amplitude = amplitude

    def max_rates_intercepts(self, gain, bias):
        """Not defined for these types (gain and bias are always given): NaN."""
        nan = np.full(np.shape(gain), np.nan)
        return nan, nan.copy()

    def gain_bias(self, max_rates, intercepts):
        """These types have no tuning curves: gain 1 and bias 0."""
        shape = np.shape(max_rates)
        return np.ones(shape), np.zeros(shape)

    def rates(self, x, gain, bias):
        """Firing rates (spiking types) or steady-state outputs for inputs ``x``."""
        J = np.asarray(self.current(x, gain, bias), dtype=float)
        return self._rate(J)


class ResetLIF(_NIRNeuron):
    """Leaky integrate-and-fire neurons with threshold 1 and reset to 0.

    ``v <- J + (v - J) exp(-dt / tau)``; a spike when ``v > 1``, then ``v <- 0``.
    No refractory period and no lower bound on ``v``.

    Parameters
    ----------
    tau : float
        Membrane time constant (s).
    amplitude : float
        Spike area (the output of a spiking step is ``amplitude / dt``).
    initial_state : dict, optional
        Initial ``"voltage"`` (default 0).
    """

    state = {"voltage": Choice([0.0])}
    spiking = True
    tau = NumberParam("tau", low=0, low_open=True)

    def __init__(self, tau=0.02, amplitude=1.0, initial_state=None):
        super().__init__(amplitude=amplitude, initial_state=initial_state)
        self.tau = tau

    def _rate(self, J):
        out = np.zeros_like(J)
        on = J > 1
        out[on] = self.amplitude / (self.tau * np.log(J[on] / (J[on] - 1)))
        return out

    def step(self, dt, J, output, voltage):
        """Integrate, spike above 1, reset to 0."""
        voltage[...] = J + (voltage - J) * np.exp(-dt / self.tau)
        spiked = voltage > 1
        output[...] = spiked * (self.amplitude / dt)
        voltage[spiked] = 0.0


class ResetIF(_NIRNeuron):
    """Integrate-and-fire neurons with threshold 1 and reset to 0.

    ``v <- v + dt J``; a spike when ``v > 1``, then ``v <- 0``.

    Parameters
    ----------
    amplitude : float
        Spike area (the output of a spiking step is ``amplitude / dt``).
    initial_state : dict, optional
        Initial ``"voltage"`` (default 0).
    """

    state = {"voltage": Choice([0.0])}
    spiking = True

    def _rate(self, J):
        return self.amplitude * np.maximum(J, 0.0)

    def step(self, dt, J, output, voltage):
        """Integrate, spike above 1, reset to 0."""
        voltage += dt * J
        spiked = voltage > 1
        output[...] = spiked * (self.amplitude / dt)
        voltage[spiked] = 0.0


class LeakyIntegrator(_NIRNeuron):
    """Leaky integrators: output ``amplitude * v``, then ``v <- J + (v - J) exp(-dt / tau)``.

    Equal to a `nengo.Lowpass` synapse of time constant ``tau`` on ``J`` (the
    output lags the input by one step).

    Parameters
    ----------
    tau : float
        Time constant (s).
    amplitude : float
        Scaling of the output.
    initial_state : dict, optional
        Initial ``"voltage"`` (default 0).
    """

    state = {"voltage": Choice([0.0])}
    spiking = False
    tau = NumberParam("tau", low=0, low_open=True)

    def __init__(self, tau=0.02, amplitude=1.0, initial_state=None):
        super().__init__(amplitude=amplitude, initial_state=initial_state)
        self.tau = tau

    def _rate(self, J):
        return self.amplitude * J

    def step(self, dt, J, output, voltage):
        """Output the state, then integrate (exact for J held over the step)."""
        output[...] = self.amplitude * voltage
        voltage[...] = J + (voltage - J) * np.exp(-dt / self.tau)


class Integrator(_NIRNeuron):
    """Integrators: ``v <- v + dt J``, output ``amplitude * v``.

    Parameters
    ----------
    amplitude : float
        Scaling of the output.
    initial_state : dict, optional
        Initial ``"voltage"`` (default 0).
    """

    state = {"voltage": Choice([0.0])}
    spiking = False

    def _rate(self, J):
        return np.full_like(J, np.nan)

    def step(self, dt, J, output, voltage):
        """Integrate the input."""
        voltage += dt * J
        output[...] = self.amplitude * voltage


class Heaviside(_NIRNeuron):
    """A spike (``amplitude / dt``) in every step where ``J > 0``; no state.

    Parameters
    ----------
    amplitude : float
        Spike area.
    initial_state : dict, optional
        Unused (this type has no state).
    """

    spiking = True

    def _rate(self, J):
        return np.where(J > 0, np.inf, 0.0)

    def step(self, dt, J, output):
        """Threshold the input at 0."""
        output[...] = (np.asarray(J) > 0) * (self.amplitude / dt)


# --- JAX steps -------------------------------------------------------------------


def _spike_reset(nt, dt, v, dtype):
    spiked = v > 1
    out = jnp.where(spiked, nt.amplitude / dt, 0.0).astype(dtype)
    return out, jnp.where(spiked, 0.0, v).astype(dtype)


@register_neuron_step(ResetLIF, random=False)
def reset_lif_step(
    nt: ResetLIF, dt: float, J: jax.Array, state: dict, rng: jax.Array
) -> tuple[jax.Array, dict]:
    """JAX step of `ResetLIF`."""
    v = J + (state["voltage"] - J) * np.exp(-dt / nt.tau)
    out, v = _spike_reset(nt, dt, v, J.dtype)
    return out, {"voltage": v}


@register_neuron_step(ResetIF, random=False)
def reset_if_step(
    nt: ResetIF, dt: float, J: jax.Array, state: dict, rng: jax.Array
) -> tuple[jax.Array, dict]:
    """JAX step of `ResetIF`."""
    out, v = _spike_reset(nt, dt, state["voltage"] + dt * J, J.dtype)
    return out, {"voltage": v}


@register_neuron_step(LeakyIntegrator, random=False)
def leaky_integrator_step(
    nt: LeakyIntegrator, dt: float, J: jax.Array, state: dict, rng: jax.Array
) -> tuple[jax.Array, dict]:
    """JAX step of `LeakyIntegrator`."""
    v_old = state["voltage"]
    v = (J + (v_old - J) * np.exp(-dt / nt.tau)).astype(J.dtype)
    return (nt.amplitude * v_old).astype(J.dtype), {"voltage": v}


@register_neuron_step(Integrator, random=False)
def integrator_step(
    nt: Integrator, dt: float, J: jax.Array, state: dict, rng: jax.Array
) -> tuple[jax.Array, dict]:
    """JAX step of `Integrator`."""
    v = (state["voltage"] + dt * J).astype(J.dtype)
    return (nt.amplitude * v).astype(J.dtype), {"voltage": v}


@register_neuron_step(Heaviside, random=False)
def heaviside_step(
    nt: Heaviside, dt: float, J: jax.Array, state: dict, rng: jax.Array
) -> tuple[jax.Array, dict]:
    """JAX step of `Heaviside`."""
    return jnp.where(J > 0, nt.amplitude / dt, 0.0).astype(J.dtype), state
