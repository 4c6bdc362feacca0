"""`nengojax.Simulator`: a drop-in replacement for `nengo.Simulator` on JAX."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import jax
import numpy as np
from nengo.exceptions import ReadonlyError, SimulationError, SimulatorClosed, ValidationError
from nengo.utils.progress import Progress, ProgressTracker

from . import distributed
from .compiler.network import CompiledNetwork
from .sharding import check_divisible, make_mesh, replicate, resolve_devices, shard_batch
from .simulator_training import TrainingMixin

#: Longest scan compiled for one call; longer runs loop over chunks of this size.
MAX_CHUNK = 4096


def _bucket(n: int) -> int:
    """Scan length compiled for a run of ``n`` steps: the next power of 8.

    Runs of any length then share at most five compiled scans (1, 8, 64, 512
    and 4096 steps); the steps past ``n`` are skipped inside the scan.
    """
    size = 1
    while size < n and size < MAX_CHUNK:
        size *= 8
    return size


class SimulationData(Mapping):
    """Probe data and built objects, like ``nengo.Simulator.data``.

    ``data[probe]`` is an array of shape ``(n_samples, *probe_shape)``, or
    ``(minibatch_size, n_samples, *probe_shape)`` with a minibatch.
    ``data[obj]`` for other objects is nengo's built object (``BuiltEnsemble``,
    ``BuiltConnection``, ...).
    """

    def __init__(self, sim: Simulator):
        self._sim = sim
        self._cache = {}

    def __getitem__(self, key):
        sim = self._sim
        if key in sim._probe_chunks:
            chunks = sim._probe_chunks[key]
            n = sum(c.shape[sim._time_axis] for c in chunks)
            cached = self._cache.get(key)
            if cached is None or cached.shape[sim._time_axis] != n:
                probe = key
                shape = tuple(sim.model.sig[probe]["in"].shape)
                if chunks:
                    arr = np.concatenate(chunks, axis=sim._time_axis)
                else:
                    lead = (sim.minibatch_size,) if sim.minibatch_size else ()
                    arr = np.zeros(lead + (0,) + shape)
                arr.setflags(write=False)
                self._cache[key] = cached = arr
            return cached
        return sim._built_data(key)  # nengo's built object, with trained values

    def __iter__(self):
        return iter(self._sim.model.params)

    def __len__(self):
        return len(self._sim.model.params)

    def reset(self):
        """Forget cached probe arrays."""
        self._cache.clear()


class Simulator(TrainingMixin):
    """Simulate a nengo network with JAX; behaves like `nengo.Simulator`.

    Parameters
    ----------
    network : nengo.Network or None
        The network to simulate (None if ``model`` is given).
    dt : float
        Time step in seconds.
    seed : int, optional
        Seed of the random streams (noise, input processes).
        Defaults to ``network.seed + 1``, as in nengo.
    model : nengo.builder.Model, optional
        A model to build into.
    minibatch_size : int, optional
        Run this many independent simulations at once. Probe data then has
        shape ``(minibatch_size, n_steps, *shape)``.
    progress_bar : bool or ProgressBar
        Show build and simulation progress.
    optimize : bool
        Merge operators with nengo's optimizer.
    dtype : str, optional
        ``"float32"`` (default) or ``"float64"`` (needs JAX's x64 mode).
    devices : None, "all", int or list of jax.Device
        Spread the minibatch over these devices (data parallelism; params are
        replicated). ``minibatch_size`` must be divisible by their number.
    """

    def __init__(
        self,
        network,
        dt: float = 0.001,
        seed: int | None = None,
        model=None,
        minibatch_size: int | None = None,
        progress_bar=True,
        optimize: bool = True,
        dtype=None,
        devices=None,
        key_network=None,
        _merge=None,
    ):
        self.closed = True  # until construction succeeds
        if minibatch_size is not None and int(minibatch_size) < 1:
            raise ValidationError(
                f"minibatch_size must be a positive integer (got {minibatch_size})",
                attr="minibatch_size",
                obj=self,
            )
        self.minibatch_size = None if minibatch_size is None else int(minibatch_size)
        devices = resolve_devices(devices)
        self.mesh = None if devices is None else make_mesh(devices)
        if self.mesh is not None:
            check_divisible(self.minibatch_size, self.mesh)
        self.progress_bar = progress_bar
        self.optimize = optimize
        self._init_args = dict(dt=dt, minibatch_size=minibatch_size, dtype=dtype)
        self._network = network
        with ProgressTracker(progress_bar, Progress("Building", "Build")):
            self.compiled = CompiledNetwork(
                network,
                dt=dt,
                seed=seed,
                model=model,
                dtype=dtype,
                optimize=optimize,
                key_network=key_network,
                merge=_merge,
            )
        self.params = self._place_params(self.compiled.init_params())
        self._time_axis = 0 if self.minibatch_size is None else 1
        self._probe_chunks = {p: [] for p in self.compiled.probes.values()}
        self._probe_key = {p: k for k, p in self.compiled.probes.items()}
        self._probe_key_by_id = {id(p): k for k, p in self.compiled.probes.items()}
        self.data = SimulationData(self)
        self.closed = False
        self.model = self.compiled.model  # nengo's built Model, as in nengo.Simulator
        self.reset(seed=self.compiled.seed)

    # --- nengo.Simulator API -------------------------------------------------------

    def __getstate__(self):
        return {
            "network": self._network,
            "model": self.model,
            "init_args": self._init_args,
            "seed": self._seed,
            "progress_bar": self.progress_bar,
            "optimize": self.optimize,
            "params": jax.device_get(self.params),
            "state": jax.device_get(self.state) if self.state is not None else None,
            "n_steps": self._n_steps,
            "probe_chunks": self._probe_chunks,
            "closed": self.closed,
        }

    def __setstate__(self, st):
        self.__init__(
            None,
            model=st["model"],
            key_network=st["network"],
            seed=st["seed"],
            progress_bar=st["progress_bar"],
            optimize=False,  # the pickled model is already optimized
            _merge=st["optimize"],
            **st["init_args"],
        )
        self.optimize = st["optimize"]
        self.params = st["params"]
        if st["state"] is not None:
            self.state = st["state"]
        self._n_steps = st["n_steps"]
        self._probe_chunks = st["probe_chunks"]
        self._probe_key = {p: self._probe_key_by_id[id(p)] for p in self._probe_chunks}
        if st["closed"]:
            self.close()

    @property
    def signals(self) -> dict:
        """Current value of every base signal (NumPy), keyed by nengo `.Signal`."""
        if self.closed:
            return None
        return self.compiled.signal_values(self.params, self.state)

    def __del__(self):
        if not getattr(self, "closed", True):
            warnings.warn(
                f"Simulator with model={self.compiled.model} was deallocated while open. "
                "Please close simulators manually to ensure resources are properly "
                "freed.",
                ResourceWarning,
            )

    def __enter__(self):
        if self.closed:
            raise SimulatorClosed("Cannot re-open after simulator is closed")
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    @property
    def dt(self) -> float:
        """The time step of the simulator."""
        return self.compiled.dt

    @dt.setter
    def dt(self, dummy):
        raise ReadonlyError(attr="dt", obj=self)

    @property
    def n_steps(self) -> int:
        """The number of steps simulated so far."""
        return self._n_steps

    @property
    def time(self) -> float:
        """The current simulation time."""
        return self._n_steps * self.dt

    @property
    def seed(self) -> int:
        """The seed of the current random streams."""
        return self._seed

    @property
    def step_order(self) -> list:
        """Operators in the order they run each step."""
        return self.compiled.step_order

    def close(self) -> None:
        """Close the simulator; running it afterwards raises `SimulatorClosed`."""
        self.closed = True
        self.state = None

    def clear_probes(self) -> None:
        """Clear all probe histories."""
        for probe in self._probe_chunks:
            self._probe_chunks[probe] = []
        self.data.reset()

    def reset(self, seed: int | None = None) -> None:
        """Reset the simulator state (and the random streams to ``seed``)."""
        if self.closed:
            raise SimulatorClosed("Cannot reset closed Simulator.")
        if seed is not None:
            self._seed = int(seed)
        self.compiled.clear_host_cache()
        self.state = self.compiled.init_state(self.minibatch_size, seed=self._seed)
        if self.mesh is not None:
            self.state = shard_batch(self.state, self.mesh)
        # set up the host sources now, so their errors surface here, as in nengo
        self.compiled.host_values(0, 0, self._seed, self._streams())
        self._n_steps = 0
        self.clear_probes()

    def trange(self, dt=None, sample_every=None) -> np.ndarray:
        """Times of the probed samples (starting at ``dt``)."""
        if dt is not None:
            if sample_every is not None:
                raise ValidationError(
                    "Cannot specify both `dt` and `sample_every`. Use `sample_every` only.",
                    attr="dt",
                    obj=self,
                )
            warnings.warn("`dt` is deprecated. Use `sample_every` instead.", DeprecationWarning)
            sample_every = dt
        period = 1 if sample_every is None else sample_every / self.dt
        steps = np.arange(1, self.n_steps + 1)
        return self.dt * steps[steps % period < 1]

    def run(self, time_in_seconds: float, data=None, progress_bar=None) -> None:
        """Simulate for ``time_in_seconds`` (rounded to whole steps, as nengo does).

        ``data`` maps input Nodes to arrays of shape
        ``(minibatch_size or 1, n_steps, node.size_out)`` that replace their output.
        """
        if not np.isfinite(time_in_seconds) or time_in_seconds < 0:
            raise ValidationError(
                f"Must be positive (got {time_in_seconds:g})", attr="time_in_seconds"
            )
        steps = int(np.round(float(time_in_seconds) / self.dt))
        if steps == 0:
            warnings.warn(
                f"{time_in_seconds} results in running for 0 timesteps. Simulator "
                f"still at time {self.time}."
            )
            return
        self.run_steps(steps, data=data, progress_bar=progress_bar)

    def step(self, data=None) -> None:
        """Advance one step."""
        self.run_steps(1, data=data, progress_bar=False)

    def run_steps(self, steps: int, data=None, progress_bar=None) -> None:
        """Simulate for ``steps`` steps (see `run` for ``data``)."""
        if self.closed:
            raise SimulatorClosed("Simulator cannot run because it is closed.")
        if int(steps) != steps or steps < 0:
            raise ValidationError(
                f"Must be a non-negative integer (got {steps})", attr="steps", obj=self
            )
        steps = int(steps)
        inputs = self._check_data(data, steps)
        if progress_bar is None:
            progress_bar = self.progress_bar
        with ProgressTracker(progress_bar, Progress("Simulating", "Simulation", steps)) as pt:
            done = 0
            while done < steps:
                n = min(steps - done, MAX_CHUNK)
                chunk_inputs = {k: v[..., done : done + n, :] for k, v in inputs.items()}
                self._run_chunk(n, chunk_inputs)
                done += n
                pt.total_progress.step(n)

    # --- internals --------------------------------------------------------------------

    def _check_data(self, data, steps):
        """``data`` of `run_steps`: ``{node key: array (minibatch or 1, steps, d)}``."""
        k = self.minibatch_size or 1
        inputs = {}
        for node, value in self._as_data(data, "data", None).items():
            key = self._node_key(node, "data")
            obj = self.compiled.input_nodes[key]
            value = self._finite_input(obj, np.asarray(value, dtype=np.float64), "data")
            want = (k, steps, obj.size_out)
            if value.shape != want:
                raise ValidationError(
                    f"data for {obj}: expected shape {want} (minibatch_size, n_steps, "
                    f"size_out), got {value.shape}",
                    attr="data",
                    obj=self,
                )
            inputs[key] = value if self.minibatch_size else value[0]
        return inputs

    def _place_params(self, params):
        """Params as the simulator keeps them: replicated over the mesh, if any."""
        return params if self.mesh is None else replicate(params, self.mesh)

    def _streams(self):
        return np.arange(self.minibatch_size) if self.minibatch_size else 0

    def _pad(self, arr, size, axis):
        pad = size - arr.shape[axis]
        if pad == 0:
            return arr
        widths = [(0, 0)] * arr.ndim
        widths[axis] = (0, pad)
        return np.pad(arr, widths)

    def _run_chunk(self, n, inputs):
        model = self.compiled
        size = _bucket(n)
        host = model.host_values(self._n_steps, n, self._seed, self._streams())
        tax = self._time_axis
        host = {
            s.key: self._pad(host[s.key], size, tax if s.per_item else 0)
            for s in model.host_sources
        }
        inputs = {k: self._pad(v, size, tax) for k, v in inputs.items()}
        inputs = {k: v.astype(model.float_dtype) for k, v in inputs.items()}
        if self.mesh is not None:
            inputs = shard_batch(inputs, self.mesh)
            host = {
                s.key: (shard_batch if s.per_item else replicate)(host[s.key], self.mesh)
                for s in model.host_sources
            }
        try:
            state, probes = model.run_chunk(self.params, self.state, size, n, inputs, host)
            probes = distributed.to_host(probes)  # gathers across processes too
        except Exception as e:
            err = model.pop_callback_error()
            if err is not None:
                raise err from None
            if isinstance(e, SimulationError):
                raise
            raise SimulationError(f"Simulation failed: {e}") from e
        self.state = state
        start = self._n_steps
        self._n_steps += n
        step_ids = np.arange(start + 1, start + n + 1)
        for probe, chunks in self._probe_chunks.items():
            values = np.asarray(probes[self._probe_key[probe]])
            values = values[:, :n] if tax == 1 else values[:n]
            period = 1 if probe.sample_every is None else probe.sample_every / self.dt
            keep = step_ids % period < 1
            if not keep.all():
                values = values[:, keep] if tax == 1 else values[keep]
            chunks.append(values)
