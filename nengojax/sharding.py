"""Data parallelism: the minibatch axis spread over a 1-D mesh of devices.

Simulation needs no communication between minibatch items, so sharding the
batch axis of state, inputs and probe outputs (and replicating params) lets XLA
run each device's items independently; in training, XLA adds the all-reduce of
gradients over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from nengo.exceptions import ValidationError

BATCH_AXIS = "batch"


def resolve_devices(devices) -> list | None:
    """``None`` (one default device, no sharding), ``"all"``, an int (the first
    n devices) or a list of `jax.Device` -> a list of devices (or None)."""
    if devices is None:
        return None
    available = jax.devices()
    if isinstance(devices, str):
        if devices != "all":
            raise ValidationError(
                f"devices must be None, 'all', a count or a list of jax devices (got {devices!r})",
                attr="devices",
            )
        return list(available)
    if isinstance(devices, int):
        if not 1 <= devices <= len(available):
            raise ValidationError(
                f"devices={devices}: only {len(available)} device(s) available "
                f"({[str(d) for d in available]})",
                attr="devices",
            )
        return list(available[:devices])
    if isinstance(devices, Sequence) and devices:
        known = {d.id: d for d in jax.devices()}
        out = []
        for d in devices:
            if not isinstance(d, jax.Device) or known.get(d.id) is not d:
                raise ValidationError(
                    f"devices: {d!r} is not one of this process's jax devices "
                    f"({[str(x) for x in available]})",
                    attr="devices",
                )
            out.append(d)
        if len({d.id for d in out}) != len(out):
            raise ValidationError("devices: a device is listed twice", attr="devices")
        return out
    raise ValidationError(
        f"devices must be None, 'all', a count or a list of jax devices (got {devices!r})",
        attr="devices",
    )


def make_mesh(devices: Sequence) -> Mesh:
    """A 1-D mesh named ``"batch"`` over ``devices``."""
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def check_divisible(minibatch_size: int | None, mesh: Mesh) -> None:
    """The minibatch must split evenly over the mesh."""
    n = mesh.size
    if minibatch_size is None:
        if n > 1:
            raise ValidationError(
                f"sharding over {n} devices needs a minibatch_size divisible by {n}",
                attr="minibatch_size",
            )
        return
    if minibatch_size % n:
        raise ValidationError(
            f"minibatch_size={minibatch_size} is not divisible by the {n} devices of the "
            "mesh; use a multiple of the device count",
            attr="minibatch_size",
        )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of arrays whose axis 0 is the minibatch."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of arrays every device holds whole (params)."""
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(tree, mesh: Mesh):
    """Place a pytree of batch-leading arrays with axis 0 split over the mesh."""
    sharding = batch_sharding(mesh)
    return jax.tree_util.tree_map(lambda x: jax.device_put(x, sharding), tree)


def replicate(tree, mesh: Mesh):
    """Place a pytree on every device of the mesh."""
    sharding = replicated(mesh)
    return jax.tree_util.tree_map(lambda x: jax.device_put(x, sharding), tree)
