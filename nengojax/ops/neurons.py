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
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
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
        st = {n: np.array(s, dtype=np.float64) for n, s in zip(names, state)}
        st.update(op.state_extra)
        if "rng" in op.state_extra:
            st["rng"] = rngs[key]
        output = np.zeros(out_shape)
        neurons.step(ctx.dt, np.array(J, dtype=np.float64), output, **st)
        return (np.asarray(output, dtype),) + tuple(
            np.asarray(st[n], dtype=d) for n, d in zip(names, dtypes)
        )

    host = ctx.guard_callback(host)
    result_shape = (jax.ShapeDtypeStruct(out_shape, dtype),) + tuple(
        jax.ShapeDtypeStruct(s, d) for s, d in zip(shapes, dtypes)
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
        for n, v in zip(names, res[1:]):
            env.set(op.state[n], v)

    return apply


@register_lowering(SimNeurons)
def lower_sim_neurons(op, ctx):
    step = get_neuron_step(op.neurons)
    if step is None:
        return _host_neuron_step(op, ctx)
    names = list(op.state)
    salt = ctx.op_index(op)
    dt = ctx.dt
    neurons = op.neurons

    def apply(env):
        J = env.read(op.J)
        state = {n: env.read(op.state[n]) for n in names}
        output, new_state = step(neurons, dt, J, state, env.rng(salt))
        env.set(op.output, output)
        for n in names:
            env.set(op.state[n], new_state[n])

    return apply


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


@register_neuron_step(__import__("nengo").neurons.LIF)
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


@register_neuron_step(__import__("nengo").neurons.RectifiedLinear)
def relu_step(nt, dt, J, state, rng):
    return nt.amplitude * jnp.maximum(J, 0), state
