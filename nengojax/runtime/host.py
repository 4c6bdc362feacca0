"""Host-source values for a run, in the one place the runtime asks for them.

The NumPy values come from `nengojax.compiler.host.HostValues`; here they are
fetched for a run from a given state: directly when the state is concrete, or
through a ``jax.pure_callback`` when it is traced (under someone's jit/vmap).
"""

from __future__ import annotations

import jax
import numpy as np

from ..compiler.host import HostValues
from ..compiler.program import Program
from .state import batch_size, state_step


def host_structs(program: Program, n_steps: int, batch: int | None, skip=()) -> dict:
    """Shape and dtype of each host source's values for a run of ``n_steps``."""
    structs = {}
    for src in program.host_sources:
        if src.key in skip:
            continue
        shape = (n_steps, *src.shape)
        if src.per_item and batch is not None:
            shape = (batch, *shape)
        structs[src.key] = jax.ShapeDtypeStruct(shape, program.float_dtype)
    return structs


def host_axes(program: Program, host: dict) -> dict:
    """The minibatch axis of each host value (None: shared by all items)."""
    per_item = {s.key: s.per_item for s in program.host_sources}
    return {k: (0 if per_item[k] else None) for k in host}


def host_inputs(
    program: Program, values: HostValues, state, n_steps: int, skip=(), pad_to=None
) -> dict:
    """Host values for a run of ``n_steps`` from ``state``.

    Sources named in ``skip`` (Nodes given run-time data) are not computed, so
    their functions are not called. ``pad_to`` pads the time axis with zeros
    (a scan longer than the run, see `nengojax.runtime.run`).
    """
    skip = set(skip)
    if not any(s.key not in skip for s in program.host_sources):
        return {}
    step = state_step(program, state)
    batch = batch_size(state)
    traced = any(isinstance(x, jax.core.Tracer) for x in (step, state["stream"], state["seed"]))
    if not traced:
        start = int(np.ravel(np.asarray(step))[0])
        out = values.values(start, n_steps, np.asarray(state["seed"]), _streams(state), skip)
        return out if pad_to is None else _pad(program, out, pad_to, batch)

    def cb(step, stream, seed):
        out = values.values(int(np.ravel(step)[0]), n_steps, seed, stream, skip)
        return out if pad_to is None else _pad(program, out, pad_to, batch)

    # "sequential": under jax.vmap (e.g. over stacked states of several seeds)
    # each item's values come from its own seed and stream
    return jax.pure_callback(
        cb,
        host_structs(program, pad_to or n_steps, batch, skip),
        step,
        state["stream"],
        state["seed"],
        vmap_method="sequential",
    )


def _streams(state):
    stream = np.asarray(state["stream"])
    return stream if stream.ndim else int(stream)


def _pad(program: Program, out: dict, size: int, batch: int | None) -> dict:
    per_item = {s.key: s.per_item for s in program.host_sources}
    padded = {}
    for key, arr in out.items():
        axis = 1 if per_item[key] and batch is not None else 0
        pad = size - arr.shape[axis]
        if pad:
            widths = [(0, 0)] * arr.ndim
            widths[axis] = (0, pad)
            arr = np.pad(arr, widths)
        padded[key] = arr
    return padded
