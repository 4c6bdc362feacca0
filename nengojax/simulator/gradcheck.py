"""``Simulator.check_gradients``: analytic gradients against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from nengo.exceptions import SimulationError, ValidationError

from .. import training
from .data import check_open, check_sizes, prepare_x


def check_gradients(
    sim, x=None, n_steps=5, rtol=2e-2, atol=1e-4, n_directions=4, seed=0
) -> list[tuple]:
    """Compare gradients with finite differences (``"rate"`` mode).

    The objective is a random linear combination of the means of all probe
    outputs over ``n_steps`` steps from the initial state, as a function of
    all float parameters. Its analytic directional derivative along random
    directions is compared with central finite differences (several step
    sizes; the best agreement counts).

    Parameters
    ----------
    x : dict, optional
        Inputs (default: the input nodes' own output).
    n_steps : int
        Number of steps (when ``x`` is not given).
    rtol, atol : float
        Tolerance of ``|analytic - numeric| <= atol + rtol * |analytic|``.
    n_directions : int
        Number of random directions.
    seed : int
        Seed of the directions.

    Returns
    -------
    list of tuple
        ``(analytic, numeric)`` per direction.

    Raises
    ------
    nengo.exceptions.SimulationError
        If they disagree.
    """
    check_open(sim)
    mb = sim.minibatch_size or 1
    xp = prepare_x(sim, x)
    if xp:
        n_items, n_steps = check_sizes(sim, xp, {})
        xp = {k: v[:mb] for k, v in xp.items()}
        if n_items < mb:
            raise ValidationError("x has fewer items than the minibatch", attr="x")
    params = {k: v for k, v in sim.params.items() if np.size(v) > 0}
    rest = {k: v for k, v in sim.params.items() if k not in params}
    state = sim.compiled.init_state(mb, seed=sim.seed)
    rng = np.random.default_rng(seed)
    weights = {k: float(rng.standard_normal()) for k in sim.compiled.probes}
    compiled = sim.compiled

    @jax.jit
    def objective(p):
        _, probes = training.run_model(compiled, {**rest, **p}, state, xp, n_steps, "rate")
        return sum(weights[k] * jnp.mean(v) for k, v in probes.items())

    grad = jax.jit(jax.grad(objective))(params)
    results = []
    for _ in range(n_directions):
        direction = {
            k: jnp.asarray(
                rng.standard_normal(np.shape(v)) * (np.sqrt(np.mean(np.square(v))) + 1e-3),
                sim.compiled.float_dtype,
            )
            for k, v in params.items()
        }
        analytic = float(sum(jnp.vdot(grad[k], direction[k]) for k in params))
        best = None
        for eps in (1e-2, 3e-3, 1e-3, 3e-4):
            plus = {k: params[k] + eps * direction[k] for k in params}
            minus = {k: params[k] - eps * direction[k] for k in params}
            numeric = (float(objective(plus)) - float(objective(minus))) / (2 * eps)
            err = abs(numeric - analytic)
            if best is None or err < best[1]:
                best = (numeric, err)
        results.append((analytic, best[0]))
        if not best[1] <= atol + rtol * abs(analytic):
            raise SimulationError(
                f"gradient check failed: analytic directional derivative {analytic:.6g} "
                f"vs finite differences {best[0]:.6g}"
            )
    return results
