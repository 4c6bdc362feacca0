"""Where a Simulator's arrays live: one device, or a mesh (``devices=``).

With a mesh, the minibatch axis of states and data is split over the devices
and params and optimizer state are replicated; across processes
(`nengojax.distributed`) each process transfers only its own part.
"""

from __future__ import annotations

import hashlib

import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from nengo.exceptions import SimulationError

from .. import distributed
from ..sharding import BATCH_AXIS, batch_sharding, replicate, replicated, shard_batch


class Placement:
    """Places a Simulator's arrays on its devices.

    Parameters
    ----------
    mesh : jax.sharding.Mesh or None
        The 1-D device mesh, or None (one device, nothing to do).
    """

    def __init__(self, mesh: Mesh | None):
        self.mesh = mesh
        self._same_program_checked = False

    @property
    def spans_processes(self) -> bool:
        """Whether the mesh has devices of several processes."""
        return distributed.spans_processes(self.mesh)

    def state(self, state):
        """A batched state split over the mesh (unchanged without one)."""
        if self.mesh is None:
            return state
        if self.spans_processes:  # each process sends its own part, no check
            return distributed.put_global(distributed.to_host(state), batch_sharding(self.mesh))
        return shard_batch(state, self.mesh)

    def replicated(self, tree):
        """Params / optimizer state on every device of the mesh."""
        if self.mesh is None:
            return tree
        if self.spans_processes:
            return distributed.put_global(distributed.to_host(tree), replicated(self.mesh))
        return replicate(tree, self.mesh)

    def batch(self, tree):
        """Batch-leading arrays with axis 0 split over the mesh (one process)."""
        return tree if self.mesh is None else shard_batch(tree, self.mesh)

    def run_values(self, inputs: dict, host: dict, host_sources) -> tuple[dict, dict]:
        """A run's inputs (batch-leading) and host values (batch-leading when
        per item, else the same on every device) on the mesh."""
        if self.mesh is None:
            return inputs, host
        per_item = {s.key: s.per_item for s in host_sources}
        host = {k: (self.batch if per_item[k] else self.replicated)(v) for k, v in host.items()}
        return self.batch(inputs), host

    def data(self, tree, axis: int = 0):
        """Host data of the same value on every process -> arrays with ``axis``
        split over the mesh, each process transferring only its own part."""
        if self.mesh is None:
            return tree
        spec = PartitionSpec(*([None] * axis + [BATCH_AXIS]))
        return distributed.put_global(tree, NamedSharding(self.mesh, spec))

    def check_same_program(self, compiled, minibatch_size, seed) -> None:
        """With a mesh over several processes, every process must have built the
        same program (same signal layout, operators, params); otherwise the
        collectives would combine unrelated values. Checked once."""
        if not self.spans_processes or self._same_program_checked:
            return
        program = compiled.program
        desc = repr(
            (
                [
                    (b.key, b.kind, np.shape(b.init), str(np.asarray(b.init).dtype))
                    for b in program.layout.bases
                ],
                sorted((k, repr(p.view), np.shape(p.init)) for k, p in program.params.items()),
                [type(op).__name__ for op in program.step_order],
                sorted(program.probes),
                sorted(program.input_nodes),
                minibatch_size,
                seed,
            )
        )
        digest = np.frombuffer(hashlib.sha256(desc.encode()).digest(), np.uint8)
        from jax.experimental import multihost_utils

        every = np.asarray(multihost_utils.process_allgather(digest)).reshape(-1, digest.size)
        differ = [i for i, d in enumerate(every) if not np.array_equal(d, every[0])]
        if differ:
            raise SimulationError(
                f"processes {[0, *differ]} built different programs (signal layout, "
                "operators, params, minibatch_size or seed differ), so they cannot train "
                "or run together. Build the same network with the same arguments on "
                "every process."
            )
        self._same_program_checked = True
