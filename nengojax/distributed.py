"""Several hosts: one JAX process per host, one global device mesh.

Start every process the same way, with `initialize` as the first JAX call::

    import nengojax
    nengojax.distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=i)

    with nengojax.Simulator(net, minibatch_size=64, devices="all") as sim:
        sim.compile(optax.adam(1e-3), loss=nengojax.losses.mse)
        sim.fit(x, y, epochs=10)          # the same x, y on every process
        sim.save_params("trained")        # written once, by process 0

``devices="all"`` is then the devices of *all* processes (``jax.devices()``),
so the minibatch is split across hosts. Every process runs the same program
(SPMD): the same network, the same seeds and the same calls in the same order.
The simulator checks that the processes built the same program before it
trains or predicts (operator merging is deterministic, so the same network
gets the same layout in every process).
`~nengojax.Simulator.fit`, ``evaluate`` and ``predict`` take the same full data
on every process and transfer only the process's own part of each minibatch to
its devices (`local_part` + `global_batch`); results that are gathered to the
host (losses, predictions, parameters) are the same on every process.

For a data set too large for one host, the functional API takes a batch from
per-process pieces: each process loads its own items and calls `global_batch`.
"""

from __future__ import annotations

import socket
import time

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from nengo.exceptions import SimulationError, ValidationError

from .sharding import BATCH_AXIS

__all__ = [
    "barrier",
    "broadcast_from_main",
    "global_batch",
    "initialize",
    "is_initialized",
    "is_main_process",
    "local_part",
    "process_count",
    "process_index",
    "put_global",
    "spans_processes",
    "to_host",
]


def _backends_initialized() -> bool:
    try:
        from jax._src import xla_bridge  # no public equivalent

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # then jax.distributed.initialize tells
        return False


def is_initialized() -> bool:
    """Whether `initialize` (or ``jax.distributed.initialize``) has run in this process."""
    return bool(jax.distributed.is_initialized())


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids=None,
    cpu_collectives: str | None = "gloo",
    **kwargs,
) -> None:
    """Join this process to a multi-process JAX job (``jax.distributed.initialize``).

    Call it once, in every process, before anything else uses JAX (before
    building a Simulator, creating an array or asking for ``jax.devices()``).
    Afterwards ``jax.devices()`` lists the devices of all processes, and
    ``nengojax.Simulator(..., devices="all")`` spreads its minibatch over them.

    Parameters
    ----------
    coordinator_address : str, optional
        ``"host:port"`` of process 0, where it starts the coordinator service
        (any free port that all processes agree on). May be omitted where JAX
        detects the cluster itself (Slurm, Open MPI, TPU pods; ``mpi4py`` with
        ``cluster_detection_method="mpi4py"``) or from the environment
        variable ``JAX_COORDINATOR_ADDRESS``.
    num_processes : int, optional
        Number of processes in the job (auto-detected where supported).
    process_id : int, optional
        This process's index, ``0 <= process_id < num_processes``
        (auto-detected where supported).
    local_device_ids : int or list of int, optional
        Restrict this process to these local (GPU) devices.
    cpu_collectives : str or None
        The implementation of cross-process collectives for JAX's CPU backend
        (``jax_cpu_collectives_implementation``): ``"gloo"`` (default; needed
        for CPU-only jobs) or ``"mpi"``. None leaves JAX's setting alone.
        Accelerator backends use their own collectives either way.
    **kwargs
        Passed on to ``jax.distributed.initialize`` (e.g.
        ``initialization_timeout``, ``cluster_detection_method``).

    Raises
    ------
    nengo.exceptions.ValidationError
        For impossible arguments (``process_id`` out of range, ...).
    nengo.exceptions.SimulationError
        When called a second time, after JAX has started computing (its
        backend is already up, so the devices of other processes can no
        longer be added), when JAX cannot connect the processes, or when the
        job has another number of processes than ``num_processes``.
    """
    if num_processes is not None:
        if int(num_processes) != num_processes or num_processes < 1:
            raise ValidationError(
                f"num_processes must be a positive integer (got {num_processes!r})",
                attr="num_processes",
            )
        num_processes = int(num_processes)
    if process_id is not None:
        if int(process_id) != process_id or process_id < 0:
            raise ValidationError(
                f"process_id must be a non-negative integer (got {process_id!r})",
                attr="process_id",
            )
        process_id = int(process_id)
        if num_processes is not None and process_id >= num_processes:
            raise ValidationError(
                f"process_id={process_id} is not below num_processes={num_processes} "
                "(process ids are 0 .. num_processes - 1)",
                attr="process_id",
            )
    if is_initialized():
        raise SimulationError(
            "nengojax.distributed.initialize was already called in this process "
            f"(process {jax.process_index()} of {jax.process_count()}); call it only once"
        )
    if _backends_initialized():
        raise SimulationError(
            "nengojax.distributed.initialize must come before any other use of JAX in "
            "this process: JAX's backend is already running (something created an "
            "array, ran a computation or asked for jax.devices()), so the devices of "
            "other processes cannot be added. Call it first thing, before importing "
            "code that computes with JAX."
        )
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    if coordinator_address and num_processes and num_processes > 1 and process_id is not None:
        # JAX aborts the process (SIGABRT) when a peer never comes: meet first
        rendezvous(
            coordinator_address,
            num_processes,
            process_id,
            float(kwargs.get("initialization_timeout", 300)),
        )
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
            **kwargs,
        )
    except (ValueError, TypeError) as e:
        raise ValidationError(
            f"jax.distributed.initialize: {e}", attr="coordinator_address"
        ) from e
    except RuntimeError as e:
        text = str(e)
        if "only be called once" in text:
            raise SimulationError(
                "nengojax.distributed.initialize was already called in this process"
            ) from e
        if "before any JAX" in text:
            raise SimulationError(
                "nengojax.distributed.initialize must come before any other use of JAX "
                f"in this process ({text})"
            ) from e
        raise SimulationError(
            f"jax.distributed.initialize failed ({type(e).__name__}: {e}); check that "
            "every process uses the same coordinator_address and num_processes and a "
            "distinct process_id, and that the coordinator's port is reachable"
        ) from e
    except Exception as e:  # XlaRuntimeError and friends: connection failures
        raise SimulationError(
            f"jax.distributed.initialize failed ({type(e).__name__}: {e}); check that "
            "every process uses the same coordinator_address and num_processes and a "
            "distinct process_id, and that the coordinator's port is reachable"
        ) from e
    count = jax.process_count()
    if num_processes is not None and count != num_processes:
        raise SimulationError(
            f"num_processes={num_processes}, but the job has {count} processes: give "
            "every process the same num_processes"
        )


def rendezvous(address: str, num_processes: int, process_id: int, timeout: float) -> None:
    """Wait until every process of the job has started, or raise.

    Process 0 listens on the coordinator's port (before JAX's coordinator
    service takes it) until the other ``num_processes - 1`` processes have
    said hello, then tells them to go on; a process that is missing after
    ``timeout`` seconds makes every waiting process raise a `SimulationError`
    (instead of JAX's abort of the whole process).

    Parameters
    ----------
    address : str
        ``"host:port"`` of the coordinator (process 0).
    num_processes : int
        Number of processes in the job.
    process_id : int
        This process's index.
    timeout : float
        Seconds to wait.
    """
    host, _, port = address.rpartition(":")
    host, port = host.strip("[]") or "localhost", int(port)
    deadline = time.monotonic() + timeout
    if process_id == 0:
        _rendezvous_coordinator(port, num_processes, deadline, timeout)
    else:
        _rendezvous_peer(host, port, process_id, deadline, timeout, address)


def _rendezvous_coordinator(port, num_processes, deadline, timeout):
    peers = {}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("", port))
        server.listen(num_processes)
        try:
            while len(peers) < num_processes - 1:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(range(1, num_processes)) - set(peers))
                    raise SimulationError(
                        f"nengojax.distributed.initialize: processes {missing} did not "
                        f"start within {timeout:g} s (the coordinator, process 0, waited "
                        "for them); start every process of the job, or raise "
                        "initialization_timeout"
                    )
                server.settimeout(min(left, 1.0))
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                conn.settimeout(max(deadline - time.monotonic(), 0.1))
                try:
                    line = conn.makefile("r").readline().split()
                except OSError:
                    conn.close()
                    continue
                if len(line) == 2 and line[0] == "nengojax-hello" and line[1].isdigit():
                    peers[int(line[1])] = conn
                else:
                    conn.close()
            for conn in peers.values():
                conn.sendall(b"go\n")
            for conn in peers.values():  # let the peers close first (no TIME_WAIT here)
                conn.settimeout(5.0)
                try:
                    conn.recv(1)
                except OSError:
                    pass
        finally:
            for conn in peers.values():
                conn.close()


def _rendezvous_peer(host, port, process_id, deadline, timeout, address):
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=1.0)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SimulationError(
                    f"nengojax.distributed.initialize: process {process_id} could not reach "
                    f"the coordinator (process 0) at {address} within {timeout:g} s; start "
                    "process 0, and check the address and port"
                ) from None
            time.sleep(0.2)
    with conn:
        conn.sendall(f"nengojax-hello {process_id}\n".encode())
        conn.settimeout(max(deadline - time.monotonic(), 0.1))
        try:
            answer = conn.makefile("r").readline().strip()
        except OSError:
            answer = ""
    if answer != "go":
        raise SimulationError(
            f"nengojax.distributed.initialize: process {process_id} reached the "
            f"coordinator at {address}, but not every process of the job started within "
            f"{timeout:g} s"
        )


def process_index() -> int:
    """This process's index (0 without `initialize`)."""
    return jax.process_index()


def process_count() -> int:
    """Number of processes in the job (1 without `initialize`)."""
    return jax.process_count()


def is_main_process() -> bool:
    """Whether this is process 0 (which writes checkpoints and logs)."""
    return jax.process_index() == 0


def barrier(name: str = "nengojax") -> None:
    """Wait until every process has reached a barrier of this ``name``
    (nothing to wait for in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _as_sharding(sharding, ndim: int, axis: int) -> NamedSharding:
    if isinstance(sharding, Mesh):
        spec = [None] * ndim
        spec[axis] = BATCH_AXIS
        return NamedSharding(sharding, PartitionSpec(*spec))
    return sharding


def _local_index(sharding, shape) -> tuple:
    """The slices of a global array of ``shape`` held by this process's devices
    (a box: with a 1-D mesh ordered by process, as `jax.devices()` is)."""
    index_map = sharding.addressable_devices_indices_map(tuple(shape))
    out = []
    for dim, size in enumerate(shape):
        starts, stops, blocks = [], [], set()
        for idx in index_map.values():
            start, stop, _ = idx[dim].indices(size)
            starts.append(start)
            stops.append(stop)
            blocks.add((start, stop))
        lo, hi = min(starts), max(stops)
        if sum(b - a for a, b in blocks) != hi - lo:
            raise ValidationError(
                "this process's devices do not hold one contiguous block of the batch; "
                "order the mesh devices by process (as jax.devices() is)",
                attr="devices",
            )
        out.append(slice(lo, hi))
    return tuple(out)


def local_part(x, sharding, axis: int = 0):
    """The part of the global array ``x`` that this process's devices hold.

    Parameters
    ----------
    x : array_like
        The whole (global) array, the same on every process.
    sharding : jax.sharding.Sharding or jax.sharding.Mesh
        Where the array goes; a mesh means axis ``axis`` split over its
        ``"batch"`` axis.
    axis : int
        The batch axis (with a mesh).

    Returns
    -------
    numpy.ndarray
        ``x`` cut to this process's block (all of ``x`` in a single process).
    """
    x = np.asarray(x)
    sharding = _as_sharding(sharding, x.ndim, axis)
    return x[_local_index(sharding, x.shape)]


def global_batch(local_data, sharding, global_shape=None, axis: int = 0):
    """A global `jax.Array` from each process's own part of it.

    Every process calls this with the items its devices hold (e.g. the files
    it loaded itself); no data crosses hosts. A thin wrapper over
    ``jax.make_array_from_process_local_data``.

    Parameters
    ----------
    local_data : array_like or pytree of arrays
        This process's block (see `local_part`); along ``axis`` the blocks of
        processes 0, 1, ... follow each other in the global array.
    sharding : jax.sharding.Sharding or jax.sharding.Mesh
        The sharding of the result (a mesh: axis ``axis`` split over ``"batch"``).
    global_shape : tuple, optional
        Shape of the global array (default: inferred, every process holding
        an equal block).
    axis : int
        The batch axis (with a mesh).

    Returns
    -------
    jax.Array or pytree of jax.Array
    """

    def one(x):
        x = np.asarray(x)
        s = _as_sharding(sharding, x.ndim, axis)
        return jax.make_array_from_process_local_data(s, x, global_shape)

    return jax.tree_util.tree_map(one, local_data)


def put_global(tree, sharding, axis: int = 0):
    """Place host arrays that are the same on every process as global arrays:
    each process transfers only its own part (`local_part` + `global_batch`)."""

    def one(x):
        x = np.asarray(x)
        s = _as_sharding(sharding, x.ndim, axis)
        return jax.make_array_from_process_local_data(s, x[_local_index(s, x.shape)], x.shape)

    return jax.tree_util.tree_map(one, tree)


def broadcast_from_main(tree):
    """Process 0's values of a pytree, as NumPy arrays, on every process (a
    collective; without other processes: the tree as NumPy arrays).

    Used by `~nengojax.Simulator.fit` after every epoch to keep replicated
    parameters and the logs identical on all processes: cross-process
    all-reduces on CPU (gloo) may round differently on different processes,
    and a decision such as early stopping must be the same everywhere.
    """
    tree = to_host(tree)
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return multihost_utils.broadcast_one_to_all(tree)


def spans_processes(mesh) -> bool:
    """Whether ``mesh`` (or a sharding's mesh) has devices of other processes."""
    if mesh is None:
        return False
    devices = getattr(mesh, "devices", None)
    devices = np.ravel(devices) if devices is not None else list(mesh.device_set)
    here = jax.process_index()
    return any(d.process_index != here for d in devices)


def to_host(tree):
    """A pytree of (possibly multi-process) arrays as NumPy arrays, whole.

    Arrays of this process only are fetched; replicated ones are read from a
    local copy; arrays split over processes are gathered from all of them (a
    collective: every process must make the same call).
    """

    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return np.asarray(x)
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree_util.tree_map(one, tree)
