"""The only ``lax.scan`` over time.

Every way of running a network (`.CompiledNetwork.run`, `Simulator.run_steps`,
``fit``, ``evaluate``, ``predict``, the functional training layer) enters
`scan_steps`. A minibatch is a ``jax.vmap`` of the same scan over items.
`scan_or_call` is the scan itself (also over the minibatches of a training
epoch): one without a loop when it has a single step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .state import batch_size


def scan_or_call(body, init, xs, length: int, unroll: int = 1):
    """``lax.scan(body, init, xs, length)``, but a length of 1 calls ``body`` once,
    without a loop.

    XLA's CPU backend runs the convolutions that a loop holds (even a loop it
    later removes) without its fast kernels: a conv net's training step on
    one-step examples, or on one minibatch, was ~15x slower in a loop.
    """
    if length != 1:
        return jax.lax.scan(body, init, xs, length=length, unroll=unroll)
    carry, out = body(init, jax.tree_util.tree_map(lambda v: v[0], xs))
    return carry, jax.tree_util.tree_map(lambda v: v[None], out)


def scan_steps(
    step,
    packed: dict,
    consts: dict,
    state: dict,
    inputs: dict,
    host: dict,
    n_steps: int,
    probe_struct: dict,
    batched: bool,
    host_axes: dict,
    n_active=None,
    remat: bool = False,
    unroll: int = 1,
    stop_at_fault: bool = False,
    undo_faulty_step: bool = False,
    time_major: bool = False,
    early_exit: bool = False,
    sampled: dict | None = None,
    slots: dict | None = None,
):
    """Run ``n_steps`` steps of ``step`` from ``state``.

    Parameters
    ----------
    step : callable
        ``step(packed, consts, state, host_row, input_row) -> (state, probes)``
        (a `.StepFunction`).
    packed, consts : dict
        Packed param/const base arrays and the scratch initial values.
    state : dict
        The state to start from (with a minibatch axis when ``batched``).
    inputs : dict
        Input Node key -> ``(n_steps, d)`` (``(batch, n_steps, d)`` batched).
    host : dict
        Host source key -> values over time (per-item sources batched).
    n_steps : int
        Length of the scan (static).
    probe_struct : dict
        Shape and dtype of each probe's value in one step.
    batched : bool
        Whether ``state`` and ``inputs`` have a minibatch axis (vmapped).
    host_axes : dict
        The minibatch axis of each host value (0) or None (shared).
    n_active : int or jax.Array, optional
        Only the first ``n_active`` steps run; the rest leave the state and
        give zeros (so runs of many lengths share one compiled scan).
    stop_at_fault : bool
        With ``n_active``, steps after a fault (the state's ``"fault"``) do not
        run either (with ``time_major``, those of every item).
    undo_faulty_step : bool
        With ``stop_at_fault``, the step that faults leaves the state as it
        was (but for the fault): for host callbacks, whose user code may raise.
    time_major : bool
        With a minibatch, scan over time once with the step vmapped over the
        items (needed when the step calls the host), instead of vmapping a scan
        per item.
    early_exit : bool
        With ``n_active`` (and ``unroll`` 1), loop only over the active steps
        (a ``lax.while_loop`` writing each step's probes into rows of zeros)
        instead of a scan whose idle steps a ``lax.cond`` skips: no branch in
        the step, so a smaller program and faster steps, but not
        reverse-differentiable (the Simulator's runs use it).
    remat : bool
        Recompute each step in the backward pass (``jax.checkpoint``).
    unroll : int
        Steps per iteration of the compiled loop (``lax.scan``'s ``unroll``).
    sampled, slots : dict, optional
        Probes that keep only some steps (``sample_every``): ``sampled[key]``
        is the number of rows their output has (static), ``slots[key]`` the
        row each step writes, ``(n_steps,)`` int32; a step that is not kept
        writes the last row, a spare one. A long run of a probe sampled every
        10th step then holds a tenth of the rows.

    Returns
    -------
    state, probes : dict
        The final state, and each probe's values ``(n_steps, ...)`` (with a
        leading minibatch axis when batched).
    """

    def one(carry, host_row, input_row):
        return step(packed, consts, carry, host_row, input_row)

    if batched and time_major:  # the items of a step side by side, inside the loop
        one = jax.vmap(one, in_axes=(0, host_axes, 0))
    if remat:  # memory-bounded backprop through time
        one = jax.checkpoint(one)
    zero = probe_struct
    if batched and time_major:
        zero = {
            k: jax.ShapeDtypeStruct((batch_size(state), *s.shape), s.dtype)
            for k, s in probe_struct.items()
        }

    def step_or_fault(carry, host_row, input_row):
        new, out = one(carry, host_row, input_row)
        if not (stop_at_fault and undo_faulty_step):
            return new, out
        # the step that faults leaves the state as it was, but for the fault: the
        # state then matches the steps kept (all items' with a minibatch). Only
        # where a fault is a user's exception: the select over the state every
        # step costs in-place updates (a learning model ran 2.3x slower)
        failed = jnp.any(new["fault"][..., 0] >= 0)
        kept = jax.tree_util.tree_map(lambda old, v: jnp.where(failed, old, v), carry, new)
        return {**kept, "fault": new["fault"]}, out

    def active(i, carry):
        go = i < n_active
        if stop_at_fault:
            go = go & jnp.all(carry["fault"][..., 0] < 0)
        return go

    sampled = sampled or {}
    slots = slots or {}

    def n_rows(k):
        return sampled.get(k, n_steps)

    def loop(item_state, item_inputs, item_host):
        def row(tree, i):
            return jax.tree_util.tree_map(
                lambda v: jax.lax.dynamic_index_in_dim(v, i, 0, keepdims=False), tree
            )

        def body(c):
            i, carry, rows = c
            carry, out = step_or_fault(carry, row(item_host, i), row(item_inputs, i))
            rows = {
                k: jax.lax.dynamic_update_index_in_dim(
                    rows[k], out[k], slots[k][i] if k in slots else i, 0
                )
                for k in rows
            }
            return i + 1, carry, rows

        rows = {k: jnp.zeros((n_rows(k), *s.shape), s.dtype) for k, s in zero.items()}
        _, final, probes = jax.lax.while_loop(
            lambda c: active(c[0], c[1]), body, (jnp.int32(0), item_state, rows)
        )
        return final, probes

    def scan(item_state, item_inputs, item_host):
        if n_active is not None and early_exit and unroll == 1:
            return loop(item_state, item_inputs, item_host)

        def body(carry, xs):
            i, host_row, input_row = xs
            if n_active is None:
                return one(carry, host_row, input_row)

            def idle(c):
                return c, {k: jnp.zeros(s.shape, s.dtype) for k, s in zero.items()}

            return jax.lax.cond(
                active(i, carry), lambda c: step_or_fault(c, host_row, input_row), idle, carry
            )

        xs = (jnp.arange(n_steps), item_host, item_inputs)
        final, probes = scan_or_call(body, item_state, xs, n_steps, unroll)
        for k in sampled:  # every step's row, then only the kept ones
            every = probes[k]
            rows = jnp.zeros((n_rows(k), *every.shape[1:]), every.dtype)
            probes[k] = rows.at[slots[k]].set(every)
        return final, probes

    # the loop carries some state signals in their own shapes (`.StepFunction`)
    shapes = getattr(step, "carry_shapes", {})
    state = _reshape_signals(state, shapes, batched)
    if not batched:
        final, probes = scan(state, inputs, host)
    elif not time_major:  # a scan per item, vmapped: XLA's best layout for most networks
        final, probes = jax.vmap(scan, in_axes=(0, 0, host_axes))(state, inputs, host)
    else:
        final, probes = _time_major(scan, state, inputs, host, host_axes)
    return _reshape_signals(final, dict.fromkeys(shapes, (-1,)), batched), probes


def _reshape_signals(state: dict, shapes: dict, batched: bool) -> dict:
    """``state`` with the signals ``shapes`` names reshaped (per minibatch item)."""
    if not shapes:
        return state
    lead = 1 if batched else 0
    signals = dict(state["signals"])
    for key, shape in shapes.items():
        signals[key] = signals[key].reshape(signals[key].shape[:lead] + shape)
    return {**state, "signals": signals}


def _time_major(scan, state, inputs, host, host_axes):
    """One scan over time of the vmapped step: JAX cannot vmap a cond around
    host callbacks (their effects), so programs that call the host run this way."""

    def swap(tree, axes):
        return jax.tree_util.tree_map(
            lambda v, a: v if a is None else jnp.swapaxes(v, 0, 1), tree, axes
        )

    input_axes = {k: 0 for k in inputs}
    final, probes = scan(state, swap(inputs, input_axes), swap(host, host_axes))
    return final, {k: jnp.swapaxes(v, 0, 1) for k, v in probes.items()}


def chunk_length(n: int, longest: int) -> int:
    """Scan length compiled for a run of ``n`` steps: the next power of 8.

    Runs of any length then share at most a few compiled scans (1, 8, 64, 512
    and 4096 steps when ``longest`` is 4096); the loop stops after ``n``
    steps. A run longer than ``longest`` runs all its chunks, the last too, in
    the longest loop.
    """
    size = 1
    while size < n and size < longest:
        size *= 8
    return size
