"""`nengojax.Simulator`: a drop-in replacement for `nengo.Simulator` on JAX."""

from __future__ import annotations

import numbers
import threading
import time
import warnings
from collections.abc import Mapping
from contextlib import nullcontext

import jax
import nengo
import numpy as np
from nengo.exceptions import ReadonlyError, SimulationError, SimulatorClosed, ValidationError
from nengo.utils.progress import Progress, ProgressTracker

from .. import distributed
from ..config import get_setting
from ..runtime import CompiledNetwork
from ..runtime.run import chunk_length
from ..runtime.state import check_seed, drop_batch_axis, is_batched, state_step
from ..sharding import check_divisible, make_mesh, resolve_devices
from ..validation import integer
from . import checkpoint, freeze, gradcheck
from .data import keep_last_steps, pad_time, resolve_stateful, run_data, sample_rows
from .history import History
from .lookahead import Lookahead
from .pickling import Pickling
from .placement import Placement
from .trainer import Trainer

#: Longest scan compiled for one call; longer runs loop over chunks of this size.
MAX_CHUNK = 4096


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
            if len(chunks) == 1 and chunks[0] is self._cache.get(key):
                return chunks[0]
            if not chunks:
                lead = (sim.minibatch_size,) if sim.minibatch_size else ()
                return np.zeros(lead + (0,) + tuple(sim.model.sig[key]["in"].shape))
            arr = np.concatenate(chunks, axis=sim._time_axis) if len(chunks) > 1 else chunks[0]
            arr.setflags(write=False)
            # one part from now on: a loop of step() calls reading the data after
            # each one joins one new row to it, not every row again
            chunks[:] = [arr]
            self._cache[key] = arr
            return arr
        return freeze.built_data(sim, key)  # nengo's built object, with trained values

    def __iter__(self):
        return iter(self._sim.model.params)

    def __len__(self):
        return len(self._sim.model.params)

    def reset(self):
        """Forget cached probe arrays."""
        self._cache.clear()


class Simulator(Pickling):
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
    precision : str
        Matmul precision: ``"highest"`` (default, matches nengo), ``"high"``
        or ``"default"`` (TF32 on GPUs: faster, less exact).
    unroll : int
        Time steps per iteration of the compiled loop (``lax.scan``'s
        ``unroll``); results are identical. ``unroll_simulation`` (NengoDL's
        name) is the same.

    Attributes
    ----------
    params : dict
        The current parameters (trained by `fit`).
    compiled : CompiledNetwork
        The pure functions underneath.
    trainer : Trainer
        The training part (`compile`, `fit`, `evaluate` and `predict` call it).
    """

    stop_training = False

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
        precision: str = "highest",
        unroll: int = 1,
        unroll_simulation: int | None = None,
        key_network=None,
        _merge=None,
    ):
        self.closed = True  # until construction succeeds
        self._running = threading.Lock()
        self._state = None
        if unroll_simulation is not None:  # NengoDL's name
            unroll = unroll_simulation
        if dtype is None and isinstance(network, nengo.Network):
            dtype = get_setting(network, "dtype", None)
        if network is not None and not isinstance(network, nengo.Network):
            raise ValidationError(
                f"network must be a nengo.Network (got {type(network).__name__}: {network})",
                attr="network",
                obj=self,
            )
        if minibatch_size is not None:
            minibatch_size = integer(minibatch_size, "minibatch_size", 1, obj=self)
        if seed is not None:
            seed = check_seed(seed)
        if not (isinstance(dt, numbers.Real) and np.isfinite(dt) and dt > 0):
            raise ValidationError(f"dt must be a positive number (got {dt!r})", attr="dt")
        self.minibatch_size = minibatch_size
        self._lookahead = Lookahead(self)
        devices = resolve_devices(devices)
        mesh = None if devices is None else make_mesh(devices)
        if mesh is not None:
            check_divisible(self.minibatch_size, mesh)
            if self.minibatch_size is None:  # one device and nothing to split
                mesh = None
        self.placement = Placement(mesh)
        self.progress_bar = progress_bar
        self.optimize = optimize
        self._init_args = dict(
            dt=dt, minibatch_size=minibatch_size, dtype=dtype, precision=precision, unroll=unroll
        )
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
                precision=precision,
                unroll=unroll,
            )
        self.params = self.placement.replicated(self.compiled.init_params())
        self._time_axis = 0 if self.minibatch_size is None else 1
        self._probe_chunks = {p: [] for p in self.compiled.probes.values()}
        self._probe_key = {p: k for k, p in self.compiled.probes.items()}
        self._probe_key_by_id = {id(p): k for k, p in self.compiled.probes.items()}
        self.data = SimulationData(self)
        self.trainer = Trainer(self)
        self.closed = False
        self.model = self.compiled.model  # nengo's built Model, as in nengo.Simulator
        self.reset(seed=self.compiled.seed)

    # --- nengo.Simulator API -------------------------------------------------------

    @property
    def state(self) -> dict | None:
        """The simulation state (a pytree of JAX arrays; see `set_state`)."""
        if self._lookahead.chunk is not None:  # steps were run ahead of step() calls
            self._state = self._lookahead.settled_state()
        return self._state

    @state.setter
    def state(self, value) -> None:
        self._lookahead.drop()
        self._state = value

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

    @property
    def mesh(self):
        """The device mesh of ``devices=`` (None on one device)."""
        return self.placement.mesh

    def set_state(self, state) -> None:
        """Replace the simulation state (e.g. one returned by the functional API
        or by a stateful ``fit``); ``n_steps`` follows its step counter.

        A state with a minibatch axis of one is accepted without a minibatch.
        """
        if self.minibatch_size is None and is_batched(state):
            state = drop_batch_axis(state)
        self.state = state
        step = np.ravel(distributed.to_host(state_step(self.compiled.program, state)))[0]
        self._n_steps = int(step)

    def close(self) -> None:
        """Close the simulator; running it afterwards raises `SimulatorClosed`."""
        self.closed = True
        self.state = None

    def clear_probes(self) -> None:
        """Clear all probe histories."""
        for probe in self._probe_chunks:
            self._probe_chunks[probe] = []
        self.data.reset()

    def reset(
        self,
        seed: int | None = None,
        include_trainable: bool = False,
        include_probes: bool = True,
        include_processes: bool = True,
        include_trainables: bool = False,
    ) -> None:
        """Reset the simulator state (and the random streams to ``seed``).

        Parameters
        ----------
        seed : int, optional
            New seed of the random streams.
        include_trainable : bool
            Also set the params back to their built values (and forget the
            optimizer state), as NengoDL's default does; nengo has no params,
            so the default here keeps trained params. ``include_trainables``
            is the same (the spelling of earlier nengojax versions).
        include_probes : bool
            Clear the probe data (False keeps it, which then no longer lines up
            with `trange`, as in NengoDL).
        include_processes : bool
            Restart the random streams of processes (the only choice: a process
            cannot continue its stream from a state that was reset).
        """
        if self.closed:
            raise SimulatorClosed("Cannot reset closed Simulator.")
        if not include_processes:
            raise ValidationError(
                "include_processes=False is not supported: processes always restart "
                "with the state",
                attr="include_processes",
                obj=self,
            )
        if seed is not None:
            seed = check_seed(seed)  # checked before anything changes
        if include_trainable or include_trainables:
            self.params = self.placement.replicated(self.compiled.init_params())
            if self.trainer.spec is not None:
                self.trainer.spec.opt_state = None
        if seed is not None:
            self._seed = seed
        self.compiled.clear_host_cache()
        state = self.compiled.init_state(self.minibatch_size, seed=self._seed)
        self.state = self.placement.batch(state) if self.minibatch_size else state
        # set up the host sources now, so their errors surface here, as in nengo
        self.compiled.host_values(0, 0, self._seed, self._streams())
        self._n_steps = 0
        if include_probes:
            self.clear_probes()

    def soft_reset(
        self, include_trainable: bool = False, include_probes: bool = False, **kwargs
    ) -> None:
        """NengoDL's ``soft_reset``: `reset` keeping the seed (and, by default,
        the params and the probe data)."""
        self.reset(None, include_trainable, include_probes, **kwargs)

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

    def run(self, time_in_seconds: float, data=None, progress_bar=None, stateful=None) -> None:
        """Simulate for ``time_in_seconds`` (rounded to whole steps, as nengo does).

        ``data`` maps input Nodes to arrays of shape
        ``(minibatch_size or 1, n_steps, node.size_out)`` that replace their output;
        ``stateful`` as in `run_steps`.
        """
        ok = isinstance(time_in_seconds, numbers.Real) and not isinstance(time_in_seconds, bool)
        if not ok or not np.isfinite(time_in_seconds) or time_in_seconds < 0:
            raise ValidationError(
                f"Must be positive or zero, in seconds (got {time_in_seconds!r})",
                attr="time_in_seconds",
                obj=self,
            )
        steps = int(np.round(float(time_in_seconds) / self.dt))
        if steps == 0:
            warnings.warn(
                f"{time_in_seconds} results in running for 0 timesteps. Simulator "
                f"still at time {self.time}."
            )
            return
        self.run_steps(steps, data=data, progress_bar=progress_bar, stateful=stateful)

    def step(self, data=None, stateful=None) -> None:
        """Advance one step (``stateful`` as in `run_steps`).

        In a loop of ``step()`` calls, a model whose steps no user code could
        watch (see `.lookahead`) runs several steps per call of the compiled
        loop and shows them one per call.
        """
        ahead = self._lookahead
        if data is None and stateful is None and not self.closed:
            if self._running.acquire(blocking=False):
                try:
                    shown = ahead.next_step()
                    if shown is not None:
                        rows, final = shown
                        for probe, chunks in self._probe_chunks.items():
                            chunks.append(rows[probe])
                        self._n_steps += 1
                        if final is not None:
                            self._state = final
                        return
                finally:
                    self._running.release()
        before, t0 = self._n_steps, time.perf_counter()
        self.run_steps(1, data=data, progress_bar=False, stateful=stateful)
        if data is None and stateful is None:
            ahead.stepped(before, time.perf_counter() - t0)

    def run_steps(
        self, steps: int | None = None, data=None, progress_bar=None, stateful=None, n_steps=None
    ) -> None:
        """Simulate for ``steps`` steps (see `run` for ``data``; ``n_steps=`` is
        NengoDL's name for ``steps``).

        With ``stateful=False`` (as NengoDL's) the probe data of the run are
        added to ``sim.data`` as usual, but the state, the step counter and the
        time go back to where they were: the next run starts from the same
        state (``sim.data`` then holds more steps than ``sim.trange()``).
        ``None`` means the network's ``configure_settings(stateful=)``
        (default True). Probes that keep only their last step
        (``keep_history=False``) add one step per call.
        """
        if self.closed:
            raise SimulatorClosed("Simulator cannot run because it is closed.")
        if not self._running.acquire(blocking=False):
            raise SimulationError(
                "this Simulator is already running (in another thread): one Simulator "
                "runs one simulation at a time; use one Simulator per thread"
            )
        try:
            if (steps is None) == (n_steps is None):  # NengoDL's name: n_steps
                raise ValidationError("give steps (or n_steps) once", attr="steps", obj=self)
            steps = n_steps if steps is None else steps
            stateful = resolve_stateful(self, stateful, True)
            before = (self.state, self._n_steps)
            last_only = self.compiled.last_step_probes
            # only probes that keep their last step need to know what a run added
            kept = {p: len(c) for p, c in self._probe_chunks.items()} if last_only else None
            try:
                self._run_steps(steps, data, progress_bar)
            finally:
                if last_only:
                    keep_last_steps(
                        self._probe_chunks, kept, last_only, self._probe_key, tax=self._time_axis
                    )
                if not stateful:
                    self.state, self._n_steps = before
        finally:
            self._running.release()

    def _run_steps(self, steps, data, progress_bar) -> None:
        steps = integer(steps, "steps", 0, obj=self)
        inputs = run_data(self, data, steps)
        self.compiled.check_params(self.params)  # before any Node function is called
        if progress_bar is None:
            progress_bar = self.progress_bar
        progress = Progress("Simulating", "Simulation", steps)  # no bar: no tracker (~30 us)
        with (pt := progress_bar and ProgressTracker(progress_bar, progress)) or nullcontext():
            done = 0
            while done < steps:
                n = min(steps - done, MAX_CHUNK)
                chunk_inputs = {k: v[..., done : done + n, :] for k, v in inputs.items()}
                # The last, shorter chunk of a long run reuses the longest loop,
                # compiled for the chunks before it (the loop stops after n
                # steps), instead of compiling another.
                self._run_chunk(n, chunk_inputs, size=MAX_CHUNK if done else None)
                done += n
                pt and pt.total_progress.step(n)

    # --- training, parameters, back to nengo (parts of their own) -------------------

    def compile(self, optimizer=None, loss=None, metrics=None, loss_weights=None):  # noqa: A003
        """Set the optimizer and loss for `fit` and `evaluate` (see `.Trainer.compile`)."""
        self.trainer.compile(optimizer, loss, metrics, loss_weights)

    def fit(self, x=None, y=None, **kwargs) -> History:
        """Train on ``(x, y)`` with the compiled optimizer (see `.Trainer.fit`)."""
        return self.trainer.fit(x, y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs) -> dict:
        """The compiled loss of the real model on ``(x, y)`` (see `.Trainer.evaluate`)."""
        return self.trainer.evaluate(x, y, **kwargs)

    def predict(self, x=None, **kwargs) -> dict:
        """Every probe's output for inputs ``x`` (see `.Trainer.predict`)."""
        return self.trainer.predict(x, **kwargs)

    def predict_on_batch(self, x=None, **kwargs) -> dict:
        """`predict` for exactly one minibatch of items (as NengoDL's)."""
        values = [] if x is None else (x.values() if isinstance(x, Mapping) else [x])
        items = {np.shape(v)[0] if np.ndim(v) else None for v in values}
        if values and items != {self.minibatch_size or 1}:
            raise ValidationError(
                f"predict_on_batch takes one minibatch of {self.minibatch_size or 1} items "
                f"(got {sorted(items)}); use predict for more",
                attr="x",
                obj=self,
            )
        return self.trainer.predict(x, **kwargs)

    def save_params(self, path, include_state: bool = False) -> str:
        """Save all parameters (and optionally the state); see `.checkpoint.save_params`."""
        return checkpoint.save_params(self, path, include_state)

    def load_params(self, path, include_state: bool = False) -> None:
        """Load parameters saved by `save_params`; see `.checkpoint.load_params`."""
        checkpoint.load_params(self, path, include_state)

    def get_nengo_params(self, objs, as_dict: bool = False):
        """Constructor arguments reproducing the trained parameters; see
        `.freeze.get_nengo_params`."""
        return freeze.get_nengo_params(self, objs, as_dict)

    def freeze_params(self, objs=None) -> None:
        """Write the trained parameters into the nengo objects; see `.freeze.freeze_params`."""
        freeze.freeze_params(self, objs)

    def check_gradients(self, x=None, **kwargs) -> list:
        """Compare gradients with finite differences; see `.gradcheck.check_gradients`."""
        return gradcheck.check_gradients(self, x, **kwargs)

    # --- internals --------------------------------------------------------------------

    def _streams(self):
        return np.arange(self.minibatch_size) if self.minibatch_size else 0

    def _run_chunk(self, n, inputs, size=None):
        model = self.compiled
        size = chunk_length(n, MAX_CHUNK) if size is None else size
        tax = self._time_axis
        try:
            host = model.host_inputs(self.state, n, skip=inputs.keys(), pad_to=size)
        except BaseException:
            # a Node function failed at a later step: run the steps before it, as
            # nengo has run them when the error reaches the user
            done = model.host.computed() - self._n_steps
            if 0 < done < n:
                self._run_chunk(done, {k: v[..., :done, :] for k, v in inputs.items()})
            raise
        inputs = {k: pad_time(v, size, tax).astype(model.float_dtype) for k, v in inputs.items()}
        inputs, host = self.placement.run_values(inputs, host, model.host_sources)
        start = self._n_steps
        rows = sample_rows(self._probe_chunks, self.dt, start, n, size)
        slots = {self._probe_key[p]: (n_rows, slot) for p, (n_rows, slot, _) in rows.items()}
        try:
            state, probes = model.run_chunk(self.params, self.state, size, n, inputs, host, slots)
            probes = distributed.to_host(probes)  # gathers across processes too
        except Exception as e:
            err = model.pop_callback_error()
            if err is not None:
                raise err from None
            if isinstance(e, (SimulationError, ValidationError)):
                raise
            raise SimulationError(f"Simulation failed: {e}") from e
        self.state = state
        fault = np.asarray(distributed.to_host(state["fault"])).reshape(-1, 2)
        failed = fault[fault[:, 0] >= 0] if fault[:, 0].max() >= 0 else fault[:0]
        error = model.pop_callback_error()  # a host callback's, which stopped the loop
        if len(failed):  # keep the steps before the fault (the state is theirs)
            n = int(failed[:, 0].min()) - start
            # reported below; a next run starts again from the kept state
            self.state = {**state, "fault": jax.numpy.full_like(state["fault"], -1)}
        self._n_steps += n
        for probe, chunks in self._probe_chunks.items():
            # the rows of the run's first n steps (of those kept: sample_every),
            # as a copy the host owns: on a CPU backend np.asarray would be a
            # view that keeps every chunk's device buffer alive
            kept = n if probe not in rows else int(np.count_nonzero(rows[probe][2] < n))
            values = probes[self._probe_key[probe]]
            chunks.append(np.array(values[:, :kept] if tax == 1 else values[:kept]))
        if error is not None:
            raise error
        if len(failed):
            op = self.compiled.step_order[int(failed[0, 1])]
            what = getattr(op, "node", None) or getattr(op, "fn", None) or op
            raise SimulationError(
                f"{what} returned a non-finite value at t={(self._n_steps + 1) * self.dt:g} "
                f"(step {self._n_steps + 1}); the {self._n_steps} steps before it are kept"
            )
