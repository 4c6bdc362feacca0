"""Extra neuron types for training: `SoftLIFRate`, `LeakyReLU`, `SpikingLeakyReLU`.

Each is a regular `nengo.neurons.NeuronType` with a NumPy ``step`` and ``rates``
(so it also runs in ``nengo.Simulator``, with gain and bias solved from
``max_rates`` and ``intercepts``), plus a JAX step registered with
`nengojax.register_neuron_step`.

`SoftLIFRate` is the LIF rate curve with a smoothed threshold (Hunsberger &
Eliasmith, 2015): the hard rectification ``max(J - 1, 0)`` becomes
``sigma * log(1 + exp((J - 1) / sigma))``, so the rate and its derivative are
nonzero everywhere. As ``sigma -> 0`` it tends to `nengo.LIFRate`. It is what
``configure_settings(lif_smoothing=sigma)`` trains `nengo.LIF` neurons with.
"""

from __future__ import annotations

import numpy as np
from nengo.dists import Uniform
from nengo.neurons import LIFRate, RectifiedLinear
from nengo.params import NumberParam

__all__ = ["LeakyReLU", "SoftLIFRate", "SpikingLeakyReLU", "soft_lif_rate"]

#: Below this value of ``(J - 1) / sigma``, ``log(softplus(x)) == x`` to float64
#: precision (``softplus(x) = exp(x) (1 - exp(x) / 2 + ...)``).
_SOFTPLUS_LINEAR = -36.0


class SoftLIFRate(LIFRate):
    """LIF rate neurons with a smoothed firing threshold.

    The rate is ``amplitude / (tau_ref + tau_rc * log(1 + 1 / p))`` with
    ``p = sigma * log(1 + exp((J - 1) / sigma))``, a smooth version of
    `nengo.LIFRate` (where ``p = max(J - 1, 0)``). Values and derivatives are
    finite for every input current.

    Gain and bias are solved as for `nengo.LIFRate` (the smoothing only changes
    the curve near the threshold), so an ensemble of SoftLIFRate neurons has the
    same gains and biases as the same ensemble of LIF neurons.

    Parameters
    ----------
    sigma : float
        Amount of smoothing, in units of input current (the threshold is 1).
    tau_rc : float
        Membrane RC time constant, in seconds.
    tau_ref : float
        Absolute refractory period, in seconds.
    amplitude : float
        Scaling factor on the neuron output.
    initial_state : dict, optional
        Initial values of state variables (this type has none).
    """

    sigma = NumberParam("sigma", low=0, low_open=True)

    def __init__(self, sigma=1.0, tau_rc=0.02, tau_ref=0.002, amplitude=1, initial_state=None):
        super().__init__(
            tau_rc=tau_rc, tau_ref=tau_ref, amplitude=amplitude, initial_state=initial_state
        )
        self.sigma = sigma

    def rates(self, x, gain, bias):
        """Rates for inputs ``x`` (the smoothed curve, not LIFRate's)."""
        J = self.current(x, gain, bias)
        out = np.zeros_like(J)
        self.step(dt=1.0, J=J, output=out)
        return out

    def step(self, dt, J, output):
        """Set ``output`` to the smoothed LIF rate of the currents ``J``."""
        output[...] = soft_lif_rate(
            np, self.sigma, self.tau_rc, self.tau_ref, self.amplitude, np.asarray(J)
        )


def soft_lif_rate(xp, sigma, tau_rc, tau_ref, amplitude, J):
    """The SoftLIFRate curve with NumPy or jax.numpy (``xp``).

    ``log(1 + 1/p) = log1p(p) - log(p)`` with ``log(p) = log(sigma) +
    log(softplus(x))``; far below the threshold ``log(softplus(x)) = x``, so
    neither the rate nor its gradient under- or overflows.
    """
    x = (J - 1) / sigma
    far = x < _SOFTPLUS_LINEAR
    x_safe = xp.where(far, 0.0, x)
    softplus = xp.logaddexp(0.0, x_safe)
    log_softplus = xp.where(far, x, xp.log(softplus))
    p = sigma * xp.where(far, xp.exp(xp.minimum(x, 0.0)), softplus)
    log_inv = xp.log1p(p) - (np.log(sigma) + log_softplus)
    return amplitude / (tau_ref + tau_rc * log_inv)


class LeakyReLU(RectifiedLinear):
    """Rectified linear neurons with a slope ``negative_slope`` below zero.

    The output is ``amplitude * J`` for ``J > 0`` and
    ``amplitude * negative_slope * J`` otherwise. Gain and bias are solved like
    `nengo.RectifiedLinear` (from the positive branch).

    Parameters
    ----------
    negative_slope : float
        Slope of the response for negative input currents.
    amplitude : float
        Scaling factor on the neuron output.
    initial_state : dict, optional
        Initial values of state variables (this type has none).
    """

    negative = True
    negative_slope = NumberParam("negative_slope", low=0)

    def __init__(self, negative_slope=0.3, amplitude=1, initial_state=None):
        super().__init__(amplitude=amplitude, initial_state=initial_state)
        self.negative_slope = negative_slope

    def step(self, dt, J, output):
        """Set ``output`` to the leaky rectified currents."""
        J = np.asarray(J)
        output[...] = self.amplitude * np.where(J > 0, J, self.negative_slope * J)


class SpikingLeakyReLU(LeakyReLU):
    """Spiking version of `LeakyReLU` (integrate and fire, with negative spikes).

    The voltage integrates the `LeakyReLU` rate (without ``amplitude``); each time
    it passes a whole number away from zero, the neuron emits a spike of height
    ``amplitude / dt`` (negative below zero) and the voltage steps back towards
    zero. The mean output equals the `LeakyReLU` output.

    Parameters
    ----------
    negative_slope : float
        Slope of the response for negative input currents.
    amplitude : float
        Scaling factor on the neuron output (spike height times ``dt``).
    initial_state : dict, optional
        Initial values of ``"voltage"`` (default: uniform in [0, 1), like
        `nengo.SpikingRectifiedLinear`).
    """

    state = {"voltage": Uniform(low=0, high=1)}
    spiking = True

    def rates(self, x, gain, bias):
        """Rates from the `LeakyReLU` curve."""
        J = self.current(x, gain, bias)
        out = np.zeros_like(J)
        LeakyReLU.step(self, dt=1.0, J=J, output=out)
        return out

    def step(self, dt, J, output, voltage):
        """Integrate the leaky rate and emit signed spikes."""
        J = np.asarray(J)
        voltage += np.where(J > 0, J, self.negative_slope * J) * dt
        n_spikes = np.trunc(voltage)
        output[...] = (self.amplitude / dt) * n_spikes
        voltage -= n_spikes
