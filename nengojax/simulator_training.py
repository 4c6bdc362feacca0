"""`TrainingMixin`: NengoDL-style training methods of `nengojax.Simulator`.

``compile`` / ``fit`` / ``evaluate`` / ``predict`` train and test a nengo model
with optax, ``save_params`` / ``load_params`` store parameters, and
``get_nengo_params`` / ``freeze_params`` carry trained values back into nengo
objects so that ``nengo.Simulator`` reproduces the trained model.

.. code-block:: python

    with nengojax.Simulator(net, minibatch_size=32) as sim:
        sim.compile(optax.rmsprop(0.01), loss={probe: nengojax.losses.mse})
        sim.fit({inp: x}, {probe: y}, epochs=25)
        print(sim.evaluate({inp: x_test}, {probe: y_test})["loss"])
        sim.freeze_params(net)

Data are dicts ``{input_node: array}`` / ``{probe: array}`` of shape
``(n_items, n_steps, d)``; ``n_steps`` is taken from the data. ``fit`` runs
spiking neurons as their rate counterparts (or spike-aware, see
`nengojax.config.configure_settings`); ``evaluate`` and ``predict`` run the real
(spiking) model. The functions underneath are in `nengojax.training`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import nengo
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from nengo.builder.ensemble import BuiltEnsemble
from nengo.exceptions import SimulationError, SimulatorClosed, ValidationError
from nengo.solvers import NoSolver

from . import distributed as _dist
from . import losses as _losses
from . import training
from .config import get_setting
from .sharding import BATCH_AXIS, batch_sharding, replicate, replicated, shard_batch

__all__ = ["History", "TrainingMixin"]

_FORMAT = "nengojax-params-1"


class History:
    """What `TrainingMixin.fit` returns (like Keras' ``History``).

    Attributes
    ----------
    history : dict
        ``history["loss"]`` (and ``"val_loss"``, ``"<probe_key>_loss"``,
        metrics, ...) has one float per epoch.
    epoch : list of int
        The epochs run (from 0).
    params : dict
        ``epochs``, ``steps`` (minibatches per epoch), ``n_steps``, ``mode``.
    """

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.params: dict = {}

    def _append(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


class _ZeroFunction:
    """A connection function returning zeros (fixes ``size_mid`` for NoSolver)."""

    def __init__(self, size):
        self.size = int(size)

    def __call__(self, x):
        return np.zeros(self.size)

    def __repr__(self):
        return f"_ZeroFunction({self.size})"


class TrainingMixin:
    """Training methods of `nengojax.Simulator` (see the module docstring)."""

    stop_training = False

    # --- helpers ------------------------------------------------------------------

    def _check_open(self):
        if self.closed:
            raise SimulatorClosed("Simulator is closed")

    @property
    def _toplevel(self):
        return self.compiled.network or getattr(self.compiled.model, "toplevel", None)

    def _mb(self) -> int:
        return self.minibatch_size or 1

    def _initial_state(self):
        """The state every minibatch starts from when ``stateful=False``."""
        return self.compiled.init_state(self._mb(), seed=self.seed)

    # --- placement on the device mesh (``Simulator(devices=...)``) ---------------------

    def _mesh(self):
        return getattr(self, "mesh", None)

    def _place_state(self, state):
        """A batched state split over the mesh (unchanged without one)."""
        mesh = self._mesh()
        if mesh is None:
            return state
        if _dist.spans_processes(mesh):  # each process sends its own part, no check
            return _dist.put_global(_dist.to_host(state), batch_sharding(mesh))
        return shard_batch(state, mesh)

    def _place_replicated(self, tree):
        """Params / optimizer state on every device of the mesh."""
        mesh = self._mesh()
        if mesh is None:
            return tree
        if _dist.spans_processes(mesh):
            return _dist.put_global(_dist.to_host(tree), replicated(mesh))
        return replicate(tree, mesh)

    def _check_same_program(self):
        """With a mesh over several processes, every process must have built the
        same program (same signal layout, operators, params); otherwise the
        collectives would combine unrelated values. Checked once per simulator."""
        if not _dist.spans_processes(self._mesh()) or self.__dict__.get("_same_program"):
            return
        c = self.compiled
        desc = repr(
            (
                [
                    (b.key, b.kind, np.shape(b.init), str(np.asarray(b.init).dtype))
                    for b in c.layout.bases
                ],
                sorted((k, repr(v[0]), np.shape(v[1])) for k, v in c._params.items()),
                [type(op).__name__ for op in c.step_order],
                sorted(c.probes),
                sorted(c.input_nodes),
                self.minibatch_size,
                self.seed,
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
        self._same_program = True

    def _place_data(self, tree, axis=0):
        """Host data of the same value on every process -> arrays with ``axis``
        split over the mesh, each process transferring only its own part."""
        mesh = self._mesh()
        if mesh is None:
            return tree
        spec = PartitionSpec(*([None] * axis + [BATCH_AXIS]))
        return _dist.put_global(tree, NamedSharding(mesh, spec))

    def _training_mode(self) -> str:
        return "spike_aware" if get_setting(self._toplevel, "spike_aware", False) else "rate"

    def _remat(self) -> bool:
        return bool(get_setting(self._toplevel, "remat", False))

    def _node_key(self, node, what) -> str:
        key = node if isinstance(node, str) else None
        if key is None:
            try:
                key = self.compiled.key(node)
            except ValidationError:
                key = None
        if key is None or key not in self.compiled.input_nodes:
            raise ValidationError(
                f"{what}: {node} is not an input Node of this network (a Node with no "
                f"input; input Nodes: {sorted(self.compiled.input_nodes)})",
                attr=what,
                obj=self,
            )
        return key

    def _as_data(self, data, what, single_key):
        """``data`` as a dict; a bare array goes to ``single_key`` (if any)."""
        if data is None:
            return {}
        if isinstance(data, Mapping):
            return dict(data)
        if single_key is not None and hasattr(data, "shape"):
            return {single_key: data}
        raise ValidationError(
            f"{what} must be a dict mapping "
            + ("Probes" if what == "y" else "input Nodes")
            + f" to arrays (got {type(data).__name__})",
            attr=what,
            obj=self,
        )

    def _finite_input(self, obj, value, what):
        """``value`` for input Node ``obj``, which must hold no NaN or inf."""
        if not np.all(np.isfinite(value)):
            raise ValidationError(
                f"{what} for {obj} contains NaN or infinite values", attr=what, obj=self
            )
        return value

    def _prepare_x(self, x, n_steps=None):
        """Validated inputs ``{key: float array (n_items, n_steps, size_out)}``."""
        nodes = self.compiled.input_nodes
        single = next(iter(nodes)) if len(nodes) == 1 else None
        x = self._as_data(x, "x", single)
        out = {}
        for node, value in x.items():
            key = self._node_key(node, "x")
            obj = self.compiled.input_nodes[key]
            value = np.asarray(value)
            if value.ndim != 3 or value.shape[2] != obj.size_out:
                raise ValidationError(
                    f"x for {obj}: expected shape (n_items, n_steps, {obj.size_out}), got "
                    f"{value.shape}",
                    attr="x",
                    obj=self,
                )
            out[key] = self._finite_input(obj, value, "x").astype(self.compiled.float_dtype)
        return out

    def _prepare_y(self, y, loss_keys=None):
        """Validated targets ``{probe_key: float array (n_items, n_steps, *shape)}``."""
        single = None
        if loss_keys is not None and len(loss_keys) == 1:
            single = next(iter(loss_keys))
        y = self._as_data(y, "y", single)
        out = {}
        for probe, value in y.items():
            key = training._probe_key(self.compiled, probe)
            obj = self.compiled.probes[key]
            if obj.sample_every is not None and obj.sample_every != self.dt:
                raise ValidationError(
                    f"{obj} has sample_every={obj.sample_every}: probes used for training "
                    "or evaluation must record every step",
                    attr="y",
                    obj=self,
                )
            shape = tuple(self.model.sig[obj]["in"].shape)
            value = np.asarray(value)
            if value.ndim != 2 + len(shape) or value.shape[2:] != shape:
                raise ValidationError(
                    f"y for {obj}: expected shape (n_items, n_steps, "
                    f"{', '.join(map(str, shape))}), got {value.shape}",
                    attr="y",
                    obj=self,
                )
            out[key] = value.astype(self.compiled.float_dtype)
        return out

    def _check_sizes(self, x, y, n_steps=None):
        """The common ``(n_items, n_steps)`` of ``x`` and ``y``."""
        sizes = {}
        for what, data in (("x", x), ("y", y)):
            for key, value in data.items():
                sizes[f"{what}[{key!r}]"] = value.shape[:2]
        items = {s[0] for s in sizes.values()}
        steps = {s[1] for s in sizes.values()}
        if len(items) > 1:
            raise ValidationError(
                f"x and y must have the same number of items (axis 0); got {sizes}",
                attr="x",
                obj=self,
            )
        if len(steps) > 1:
            raise ValidationError(
                f"x and y must have the same number of steps (axis 1); got {sizes}",
                attr="x",
                obj=self,
            )
        if not sizes:
            if n_steps is None:
                raise ValidationError("no data: give x or y (or n_steps)", attr="x", obj=self)
            return self._mb(), int(n_steps)
        n_items, data_steps = items.pop(), steps.pop()
        if n_steps is not None and int(n_steps) != data_steps:
            raise ValidationError(
                f"n_steps={n_steps} but the data have {data_steps} steps", attr="n_steps", obj=self
            )
        if data_steps < 1 or n_items < 1:
            raise ValidationError(f"empty data {sizes}", attr="x", obj=self)
        return n_items, data_steps

    def _check_targets(self, terms, y):
        """Every loss has a target, every target a loss; NaN only with nan_mse."""
        for key, fn in terms.items():
            if key not in y and training._needs_target(fn):
                raise ValidationError(
                    f"no target in y for probe {key!r}, which has a loss", attr="y", obj=self
                )
        for key, value in y.items():
            if key not in terms:
                raise ValidationError(
                    f"y has targets for probe {key!r}, but the compiled loss has no term "
                    f"for it (loss probes: {sorted(terms)})",
                    attr="y",
                    obj=self,
                )
            if np.isnan(value).any() and terms[key] is not _losses.nan_mse:
                raise ValidationError(
                    f"targets for probe {key!r} contain NaN; use nengojax.losses.nan_mse "
                    "to ignore NaN targets",
                    attr="y",
                    obj=self,
                )
            if np.isinf(value).any():
                raise ValidationError(
                    f"targets for probe {key!r} contain infinite values", attr="y", obj=self
                )

    def _require_compiled(self, need_optimizer):
        spec = getattr(self, "_train_spec", None)
        if spec is None:
            raise SimulationError(
                "call sim.compile(optimizer, loss) before fit/evaluate (with a loss for evaluate)"
            )
        if need_optimizer and spec["optimizer"] is None:
            raise SimulationError("sim.compile was called without an optimizer: cannot fit")
        return spec

    # --- compile ----------------------------------------------------------------------

    def compile(self, optimizer=None, loss=None, metrics=None, loss_weights=None):  # noqa: A003
        """Set the optimizer and loss for `fit` and `evaluate`.

        Parameters
        ----------
        optimizer : optax.GradientTransformation, optional
            The optimizer (None: evaluation only). Its state starts afresh with
            every ``compile`` and carries over between ``fit`` calls.
        loss : callable or dict
            ``loss(y_true, y_pred) -> scalar`` (see `nengojax.losses`) applied
            to every probe given targets, or ``{probe: loss}``.
        metrics : callable, list or dict, optional
            Extra functions ``fn(y_true, y_pred)`` reported by fit/evaluate,
            for every probe or ``{probe: fn or [fns]}``.
        loss_weights : dict, optional
            ``{probe: weight}`` of the terms of the total loss (default 1).
        """
        self._check_open()
        if optimizer is not None:
            training.check_optimizer(optimizer)
        if loss is None:
            raise ValidationError("compile needs a loss", attr="loss", obj=self)
        loss = training.normalize_losses(self.compiled, loss)
        training.normalize_metrics(self.compiled, metrics)
        weights = {}
        for probe, w in (loss_weights or {}).items():
            weights[training._probe_key(self.compiled, probe)] = float(w)
        keys = training.trainable_keys(self.compiled, self._toplevel)
        self._warn_untrainable(keys)
        self._train_spec = {
            "optimizer": optimizer,
            "loss": loss,
            "metrics": metrics,
            "loss_weights": weights,
            "trainable": keys,
            "opt_state": None,
            "fns": {},
        }

    def _warn_untrainable(self, keys):
        """Warn about configured-trainable signals that are not params."""
        network = self._toplevel
        if network is None:
            return
        params = self.compiled._params
        chains = None
        missing = []
        for ens in network.all_ensembles:
            for obj, attr in ((ens, "encoders"), (ens.neurons, "bias")):
                sig = self.model.sig.get(obj, {}).get(attr)
                key = self.compiled.key(obj, attr)
                if sig is None or key in params:
                    continue
                if attr == "encoders" and _voja_target(network, ens):
                    continue
                from .config import _parents, resolve_trainable

                chains = _parents(network) if chains is None else chains
                if resolve_trainable(network, ens, chains)[0] is not False:
                    missing.append(key)
        for conn in network.all_connections:
            sig = self.model.sig.get(conn, {}).get("weights")
            key = self.compiled.key(conn, "weights")
            if sig is None or key in params or conn.learning_rule is not None:
                continue
            from .config import _parents, resolve_trainable

            chains = _parents(network) if chains is None else chains
            if resolve_trainable(network, conn, chains)[0] is not False:
                missing.append(key)
        if missing:
            warnings.warn(
                f"{missing} cannot be trained: nengo's operator merger put these signals in "
                "one array with simulation state, so they are not parameters. Build the "
                "Simulator with optimize=False to train them.",
                UserWarning,
                stacklevel=3,
            )

    # --- fit -------------------------------------------------------------------------------

    def _epoch_fn(self, spec, mode, remat, stateful):
        key = ("epoch", mode, remat, stateful)
        fns = spec["fns"]
        if key not in fns:
            step = training.make_train_step(
                self.compiled,
                spec["optimizer"],
                spec["loss"],
                spec["loss_weights"],
                mode=mode,
                remat=remat,
                metrics=spec["metrics"],
                jit=False,
            )

            def run_chunk(trainable, frozen, opt_state, state, xs, ys):
                def body(carry, xy):
                    trainable, opt_state, state = carry
                    xb, yb = xy
                    trainable, opt_state, value, aux = step(
                        trainable, frozen, opt_state, state, xb, yb
                    )
                    if stateful:
                        state = aux["state"]
                    return (trainable, opt_state, state), (value, aux["losses"], aux["metrics"])

                carry, outs = jax.lax.scan(body, (trainable, opt_state, state), (xs, ys))
                return carry, outs

            kwargs = {}
            mesh = self._mesh()
            if mesh is not None:  # params replicated, state and data split on the batch
                rep, bat = replicated(mesh), batch_sharding(mesh)
                kwargs["out_shardings"] = ((rep, rep, bat), rep)
            fns[key] = training._jit(run_chunk, **kwargs)
        return fns[key]

    def fit(
        self,
        x=None,
        y=None,
        epochs=1,
        validation_data=None,
        callbacks=None,
        shuffle=True,
        stateful=False,
        verbose=1,
        n_steps=None,
    ):
        """Train the trainable parameters on ``(x, y)`` with the compiled optimizer.

        Each epoch splits the items into minibatches of ``minibatch_size``
        (shuffled per epoch, reproducibly from the simulator seed; see
        `nengojax.training.minibatch_indices`) and runs one optax step per
        minibatch, as `nengojax.training.make_train_step` (the steps of an
        epoch run inside one ``lax.scan``; the result is the same as a Python
        loop over ``train_step``). Spiking neurons run in ``"rate"`` mode, or
        ``"spike_aware"`` if configured.

        Parameters
        ----------
        x : dict
            ``{input_node: (n_items, n_steps, size_out)}`` (a bare array when
            the network has one input node). Input nodes not given produce
            their usual output.
        y : dict
            ``{probe: (n_items, n_steps, *probe_shape)}`` targets (a bare array
            when the loss has one probe).
        epochs : int
            Number of passes over the data.
        validation_data : tuple, optional
            ``(x_val, y_val)`` evaluated (like `evaluate`) after each epoch.
        callbacks : list, optional
            E.g. `nengojax.callbacks.EarlyStopping`, `.ModelCheckpoint`.
        shuffle : bool
            Shuffle items each epoch.
        stateful : bool
            Carry the simulation state from minibatch to minibatch (and keep it
            in ``sim.state`` afterwards); otherwise every minibatch starts from
            the initial state.
        verbose : int
            0: silent; 1: a progress line per epoch with the running loss;
            2: one line per epoch.
        n_steps : int, optional
            Number of steps when neither x nor y gives it.

        Returns
        -------
        History
            ``history.history["loss"]`` has one value per epoch.
        """
        self._check_open()
        spec = self._require_compiled(need_optimizer=True)
        self._check_same_program()
        xs_all = self._prepare_x(x)
        loss_keys = spec["loss"] if isinstance(spec["loss"], Mapping) else None
        ys_all = self._prepare_y(y, loss_keys)
        n_items, n_steps = self._check_sizes(xs_all, ys_all, n_steps)
        terms = training.loss_terms(self.compiled, spec["loss"], ys_all.keys())
        self._check_targets(terms, ys_all)
        if int(epochs) != epochs or epochs < 0:
            raise ValidationError(
                f"epochs must be a non-negative integer (got {epochs})", attr="epochs"
            )
        epochs = int(epochs)
        mb = self._mb()
        if n_items < mb:
            raise ValidationError(
                f"{n_items} items are fewer than minibatch_size={mb}: nothing to train on",
                attr="x",
                obj=self,
            )
        if n_items % mb:
            warnings.warn(
                f"{n_items} items is not a multiple of minibatch_size={mb}: the last "
                f"{n_items % mb} item(s) of each epoch's order are dropped",
                UserWarning,
                stacklevel=2,
            )
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValidationError(
                    "validation_data must be a tuple (x_val, y_val)", attr="validation_data"
                )
            vx = self._prepare_x(validation_data[0])
            vy = self._prepare_y(validation_data[1], loss_keys)
            self._check_sizes(vx, vy)
            self._check_targets(training.loss_terms(self.compiled, spec["loss"], vy.keys()), vy)
            val = (vx, vy)
        callbacks = list(callbacks or [])

        mode, remat = self._training_mode(), self._remat()
        trainable, frozen = training.split_params(self.params, spec["trainable"])
        if spec["opt_state"] is None:
            spec["opt_state"] = self._place_replicated(spec["optimizer"].init(trainable))
        opt_state = spec["opt_state"]
        state0 = self._place_state(
            self._initial_state() if not stateful else self._batched_state()
        )
        state = state0
        run_chunk = self._epoch_fn(spec, mode, remat, bool(stateful))
        n_batches = n_items // mb
        chunk = _chunk_size(n_batches) if verbose == 1 else n_batches
        # several processes run the same steps; process 0 alone prints
        show = verbose if _dist.is_main_process() else 0
        multi = _dist.spans_processes(self._mesh())

        history = History()
        history.params = {"epochs": epochs, "steps": n_batches, "n_steps": n_steps, "mode": mode}
        self.stop_training = False
        for cb in callbacks:
            if hasattr(cb, "set_sim"):
                cb.set_sim(self)
            else:
                cb.sim = self
            _call(cb, "on_train_begin", {})
        for epoch in range(epochs):
            for cb in callbacks:
                _call(cb, "on_epoch_begin", epoch, {})
            t0 = time.perf_counter()
            batches = training.minibatch_indices(n_items, mb, epoch, self.seed, shuffle)
            order = np.concatenate(batches)
            ex = {k: v[order].reshape((n_batches, mb) + v.shape[1:]) for k, v in xs_all.items()}
            ey = {k: v[order].reshape((n_batches, mb) + v.shape[1:]) for k, v in ys_all.items()}
            values, term_values, metric_values = [], [], []
            for start in range(0, n_batches, chunk):
                cx = self._place_data({k: v[start : start + chunk] for k, v in ex.items()}, 1)
                cy = self._place_data({k: v[start : start + chunk] for k, v in ey.items()}, 1)
                try:
                    (trainable, opt_state, state), (v, tv, mv) = run_chunk(
                        trainable, frozen, opt_state, state, cx, cy
                    )
                except Exception as e:
                    self._raise_run_error(e)
                values.append(v)
                term_values.append(tv)
                metric_values.append(mv)
                if show == 1:
                    done = start + chunk
                    running = float(np.mean(np.concatenate(_dist.to_host(values))))
                    _progress(epoch, epochs, done, n_batches, running, time.perf_counter() - t0)
            # the epoch is done: commit it
            if multi:  # replicas on other hosts may differ in rounding: take process 0's
                trainable, opt_state = _dist.put_global(
                    _dist.broadcast_from_main((trainable, opt_state)), replicated(self._mesh())
                )
            spec["opt_state"] = opt_state
            self.params = self._placed({**frozen, **trainable})
            if stateful:
                self._set_state(state)
            logs = _epoch_logs(values, term_values, metric_values)
            if val is not None:
                vlogs = self._evaluate_prepared(val[0], val[1], spec, stateful=False)
                logs.update({f"val_{k}": v for k, v in vlogs.items()})
            if multi:  # the same logs (so the same callback decisions) everywhere
                logs = {k: float(v) for k, v in _dist.broadcast_from_main(logs).items()}
            history._append(epoch, logs)
            if show:
                line = " - ".join(f"{k}: {v:.6g}" for k, v in logs.items())
                end = "\n"
                print(
                    f"\rEpoch {epoch + 1}/{epochs} - {n_batches}/{n_batches} - "
                    f"{time.perf_counter() - t0:.2f}s - {line}",
                    end=end,
                    flush=True,
                )
            for cb in callbacks:
                _call(cb, "on_epoch_end", epoch, dict(logs))
            if multi:
                self.stop_training = bool(
                    _dist.broadcast_from_main(np.asarray(self.stop_training))
                )
            if self.stop_training:
                break
        for cb in callbacks:
            _call(cb, "on_train_end", {})
        return history

    def _raise_run_error(self, e):
        err = self.compiled.pop_callback_error()
        if err is not None:
            raise err from None
        if isinstance(e, (SimulationError, ValidationError)):
            raise e
        raise SimulationError(f"Training failed: {type(e).__name__}: {e}") from e

    def _placed(self, params):
        place = getattr(self, "_place_params", None)
        return params if place is None else place(params)

    def _batched_state(self):
        """``sim.state`` with a minibatch axis (added when minibatch_size is None)."""
        if self.minibatch_size is not None:
            return self.state
        return jax.tree_util.tree_map(lambda v: jnp.asarray(v)[None], self.state)

    def _set_state(self, state):
        if self.minibatch_size is None:
            state = jax.tree_util.tree_map(lambda v: v[0], state)
        self.state = state
        step = np.ravel(_dist.to_host(self.compiled._state_step(state)))[0]
        self._n_steps = int(step)

    # --- evaluate / predict ------------------------------------------------------------------

    def _predict_prepared(self, x, n_items, n_steps, stateful):
        """Probe outputs ``{key: (n_items, n_steps, ...)}`` of the real model."""
        self._check_same_program()
        fns = self.__dict__.setdefault("_predict_fns", {})
        if "simulate" not in fns:
            fns["simulate"] = training.make_predict_fn(self.compiled, "simulate")
        predict_step = fns["simulate"]
        mb = self._mb()
        init = self._place_state(self._initial_state())
        state = self._place_state(self._batched_state()) if stateful else init
        outs = []
        for start in range(0, n_items, mb):
            xb = {}
            for k, v in x.items():
                part = v[start : start + mb]
                if part.shape[0] < mb:
                    pad = np.zeros((mb - part.shape[0],) + part.shape[1:], part.dtype)
                    part = np.concatenate([part, pad])
                xb[k] = part
            xb = self._place_data(xb)
            try:
                new_state, probes = predict_step(self.params, state, xb, n_steps)
            except Exception as e:
                self._raise_run_error(e)
            outs.append(probes)
            state = new_state if stateful else init
        if stateful:
            self._set_state(state)
        outs = _dist.to_host(outs)
        return {k: np.concatenate([o[k] for o in outs])[:n_items] for k in self.compiled.probes}

    def predict(self, x=None, n_steps=None, stateful=False, n_items=None):
        """Outputs of every probe for inputs ``x``, running the real (spiking) model.

        Parameters
        ----------
        x : dict, optional
            ``{input_node: (n_items, n_steps, size_out)}``.
        n_steps : int, optional
            Number of steps (needed when ``x`` is not given).
        stateful : bool
            Start from (and update) ``sim.state``; otherwise every minibatch
            starts from the initial state.
        n_items : int, optional
            Number of items when ``x`` is not given (default: minibatch size).

        Returns
        -------
        dict
            ``{probe: array (n_items, n_steps, *probe_shape)}``.
        """
        self._check_open()
        xp = self._prepare_x(x)
        items, steps = self._check_sizes(xp, {}, n_steps)
        if not xp and n_items is not None:
            items = int(n_items)
        if stateful and items > self._mb():
            warnings.warn(
                "stateful predict over several minibatches carries the state from "
                "one minibatch to the next",
                UserWarning,
                stacklevel=2,
            )
        out = self._predict_prepared(xp, items, steps, stateful)
        return {self.compiled.probes[k]: v for k, v in out.items()}

    def _evaluate_prepared(self, x, y, spec, stateful):
        n_items, n_steps = self._check_sizes(x, y)
        preds = self._predict_prepared(x, n_items, n_steps, stateful)
        terms = training.loss_terms(self.compiled, spec["loss"], y.keys())
        logs = {}
        total = 0.0
        for key, fn in terms.items():
            target = None if key not in y else jnp.asarray(y[key])
            value = float(fn(target, jnp.asarray(preds[key])))
            logs[f"{key}_loss"] = value
            total += spec["loss_weights"].get(key, 1.0) * value
        metric_spec = training.normalize_metrics(self.compiled, spec["metrics"])
        items = (
            metric_spec.items()
            if isinstance(metric_spec, Mapping)
            else [(k, metric_spec) for k in y]
        )
        for key, fns in items:
            if key in y:
                for fn in fns:
                    logs[f"{key}_{training._fn_name(fn)}"] = float(
                        fn(jnp.asarray(y[key]), jnp.asarray(preds[key]))
                    )
        return {"loss": total, **logs}

    def evaluate(self, x=None, y=None, stateful=False, verbose=0):
        """The compiled loss (and metrics) of the real (spiking) model on ``(x, y)``.

        The losses are computed once over all items (for mean losses such as
        `nengojax.losses.mse` this is the mean over minibatches).

        Parameters
        ----------
        x : dict
            ``{input_node: (n_items, n_steps, size_out)}``.
        y : dict
            ``{probe: (n_items, n_steps, *probe_shape)}``.
        stateful : bool
            Start from (and update) ``sim.state``.
        verbose : int
            Print the results.

        Returns
        -------
        dict
            ``"loss"`` (weighted total), ``"<probe_key>_loss"`` per probe and
            ``"<probe_key>_<metric>"`` per metric, as floats.
        """
        self._check_open()
        spec = self._require_compiled(need_optimizer=False)
        xp = self._prepare_x(x)
        yp = self._prepare_y(y, spec["loss"] if isinstance(spec["loss"], Mapping) else None)
        self._check_sizes(xp, yp)
        self._check_targets(training.loss_terms(self.compiled, spec["loss"], yp.keys()), yp)
        logs = self._evaluate_prepared(xp, yp, spec, stateful)
        if verbose and _dist.is_main_process():
            print(" - ".join(f"{k}: {v:.6g}" for k, v in logs.items()))
        return logs

    # --- parameters ------------------------------------------------------------------------

    def _fingerprint(self) -> dict:
        return {k: [list(np.shape(v)), str(np.dtype(v.dtype))] for k, v in self.params.items()}

    def save_params(self, path, include_state=False) -> str:
        """Save all parameters (and optionally the state) to an ``.npz`` file.

        In a multi-process job (`nengojax.distributed`) every process calls
        this and process 0 alone writes the file (the others wait until it is
        written); the file loads in any process, sharded or not.

        Parameters
        ----------
        path : str
            File name (``.npz`` is appended if missing).
        include_state : bool
            Also save the simulation state (restored by `load_params`).

        Returns
        -------
        str
            The path written.
        """
        self._check_open()
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        arrays = {f"param:{k}": np.asarray(v) for k, v in _dist.to_host(self.params).items()}
        meta = {"format": _FORMAT, "params": self._fingerprint(), "state": bool(include_state)}
        if include_state:
            leaves, _ = jax.tree_util.tree_flatten(_dist.to_host(self.state))
            for i, leaf in enumerate(leaves):
                arrays[f"state:{i}"] = np.asarray(leaf)
            meta["n_state"] = len(leaves)
            meta["n_steps"] = int(self._n_steps)
        if _dist.is_main_process():
            tmp = path + ".tmp.npz"
            np.savez(tmp, __meta__=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        _dist.barrier("nengojax.save_params")
        return path

    def load_params(self, path, include_state=False) -> None:
        """Load parameters saved by `save_params` (from the same model).

        Raises `nengo.exceptions.ValidationError`, loading nothing, when the file
        does not come from a model with the same parameters (names and shapes).

        Parameters
        ----------
        path : str
            File written by `save_params`.
        include_state : bool
            Also restore the saved simulation state.
        """
        self._check_open()
        path = os.fspath(path)
        if not os.path.exists(path) and os.path.exists(path + ".npz"):
            path += ".npz"
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise ValidationError(
                f"cannot read parameters from {path!r}: {e}", attr="path", obj=self
            ) from e
        try:
            meta = json.loads(str(data.pop("__meta__")))
            assert meta["format"] == _FORMAT
        except Exception:
            raise ValidationError(
                f"{path!r} is not a nengojax parameter file", attr="path", obj=self
            ) from None
        mine, theirs = self._fingerprint(), meta["params"]
        if {k: v[0] for k, v in mine.items()} != {k: v[0] for k, v in theirs.items()}:
            only_file = sorted(set(theirs) - set(mine))
            only_model = sorted(set(mine) - set(theirs))
            shapes = sorted(k for k in set(mine) & set(theirs) if mine[k][0] != theirs[k][0])
            raise ValidationError(
                f"{path!r} holds parameters of a different model (only in the file: "
                f"{only_file}; only in this model: {only_model}; different shapes: "
                f"{shapes}); nothing was loaded",
                attr="path",
                obj=self,
            )
        params = {
            k: jnp.asarray(data[f"param:{k}"], self.compiled.float_dtype) for k in self.params
        }
        state = None
        if include_state:
            if not meta.get("state"):
                raise ValidationError(
                    f"{path!r} holds no state (saved with include_state=False)",
                    attr="include_state",
                    obj=self,
                )
            leaves, treedef = jax.tree_util.tree_flatten(self.state)
            saved = [data[f"state:{i}"] for i in range(meta["n_state"])]
            if len(saved) != len(leaves) or any(
                s.shape != np.shape(leaf) for s, leaf in zip(saved, leaves, strict=False)
            ):
                raise ValidationError(
                    f"the state in {path!r} does not fit this simulator (different "
                    "minibatch_size?); nothing was loaded",
                    attr="include_state",
                    obj=self,
                )
            state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(s) for s in saved])
        self.params = self._placed(params)
        if state is not None:
            self.state = self._place_state(state) if self.minibatch_size else state
            self._n_steps = int(meta["n_steps"])

    # --- back to nengo ---------------------------------------------------------------------

    def _param_value(self, obj, attr):
        key = self.compiled.key(obj, attr)
        if key not in self.params:
            return None
        return np.asarray(_dist.to_host(self.params[key]), dtype=np.float64)

    def _trained_ensemble(self, ens):
        """(encoders, gain, bias, scaled_encoders) of ``ens`` with current params."""
        built = self.model.params[ens]
        gain = np.asarray(built.gain, dtype=np.float64)
        scaled = self._param_value(ens, "encoders")
        bias = self._param_value(ens.neurons, "bias")
        if scaled is None:
            scaled = np.asarray(built.scaled_encoders, dtype=np.float64)
        if bias is None:
            bias = np.asarray(built.bias, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            encoders = scaled * (ens.radius / gain)[:, None]
        encoders = np.where(np.isfinite(encoders), encoders, built.encoders)
        return encoders, gain, bias, scaled

    def _built_data(self, key):
        """``sim.data[key]``: nengo's built object, with trained values if any."""
        built = self.model.params[key]
        try:
            if isinstance(key, nengo.Ensemble) and isinstance(built, BuiltEnsemble):
                if built.scaled_encoders is None or self.closed:
                    return built
                dtype = self.compiled.float_dtype
                enc_k = self.compiled.key(key, "encoders")
                bias_k = self.compiled.key(key.neurons, "bias")
                same = all(
                    k not in self.params
                    or np.array_equal(_dist.to_host(self.params[k]), np.asarray(ref, dtype))
                    for k, ref in ((enc_k, built.scaled_encoders), (bias_k, built.bias))
                )
                if same:
                    return built
                encoders, _, bias, scaled = self._trained_ensemble(key)
                return built._replace(encoders=encoders, bias=bias, scaled_encoders=scaled)
            if isinstance(key, nengo.Connection) and built is not None:
                w_k = self.compiled.key(key, "weights")
                if w_k not in self.params or built.weights is None or self.closed:
                    return built
                ref = np.asarray(built.weights, self.compiled.float_dtype)
                value = _dist.to_host(self.params[w_k])
                if value.shape == ref.shape and np.array_equal(value, ref):
                    return built
                return built._replace(weights=value.astype(np.float64))
        except ValidationError:
            return built
        return built

    def _objects(self, objs):
        if objs is None:
            objs = self._toplevel
        if isinstance(objs, nengo.Network):
            net = objs
            return [*net.all_ensembles, *net.all_connections, *net.all_nodes]
        if isinstance(objs, (list, tuple, set)):
            out = []
            for o in objs:
                out.extend(self._objects(o) if isinstance(o, nengo.Network) else [o])
            return out
        return [objs]

    def get_nengo_params(self, objs, as_dict=False):
        """Constructor arguments reproducing the current (trained) parameters.

        For an Ensemble: ``encoders``, ``gain``, ``bias`` and
        ``normalize_encoders=False`` (nengo builds ``scaled_encoders =
        encoders * gain / radius``; the gains stay the built ones, the trained
        scaled encoders and biases are split accordingly). For a Connection
        from an Ensemble: ``solver=NoSolver(weights.T)``, ``transform=None``
        and a ``function`` of the right output size; from a Node or Neurons:
        ``transform=weights``. For a `nengojax.JaxNode`: ``params``.

        Parameters
        ----------
        objs : nengo object or list
            Ensembles, Connections and JaxNodes.
        as_dict : bool
            Return ``{obj: kwargs}`` instead of a list (or a single dict for a
            single object).

        Returns
        -------
        dict, list of dict, or dict of dict
        """
        self._check_open()
        single = not isinstance(objs, (list, tuple, set, nengo.Network))
        objs = self._objects(objs)
        out = {obj: self._nengo_params(obj) for obj in objs}
        if as_dict:
            return out
        if single:
            return out[objs[0]]
        return [out[o] for o in objs]

    def _nengo_params(self, obj):
        if isinstance(obj, nengo.Ensemble):
            built = self.model.params[obj]
            if built.scaled_encoders is None:  # Direct mode
                return {}
            encoders, gain, bias, _ = self._trained_ensemble(obj)
            return {
                "encoders": encoders,
                "normalize_encoders": False,
                "gain": gain,
                "bias": bias,
            }
        if isinstance(obj, nengo.Connection):
            return self._connection_params(obj)
        if isinstance(obj, nengo.Node):
            attrs = getattr(obj, "param_attrs", None)
            if not attrs:
                return {}
            leaves = [self._param_value(obj, a) for a in attrs]
            if any(v is None for v in leaves):
                return {}
            tree = jax.tree_util.tree_unflatten(obj._treedef, leaves)
            return {"params": tree}
        raise ValidationError(
            f"{obj} has no trainable parameters (expected an Ensemble, Connection or JaxNode)",
            attr="objs",
            obj=self,
        )

    def _connection_params(self, conn):
        weights = self._param_value(conn, "weights")
        if weights is None:
            built = self.model.params.get(conn)
            weights = None if built is None or built.weights is None else built.weights
            if weights is None:
                return {}
        pre = conn.pre_obj
        decoded = isinstance(pre, nengo.Ensemble) and not isinstance(pre.neuron_type, nengo.Direct)
        if decoded:
            if conn.solver.weights:
                raise ValidationError(
                    f"{conn} uses a full-weight solver; its trained weights cannot be "
                    "expressed as nengo Connection arguments",
                    attr="objs",
                    obj=self,
                )
            size = weights.shape[0]
            params = {"solver": NoSolver(weights.T.copy(), weights=False), "transform": None}
            if conn.size_mid != size:
                params["function"] = _ZeroFunction(size)
            return params
        transform = conn.transform
        if isinstance(transform, (nengo.transforms.Dense, nengo.transforms.NoTransform)):
            return {"transform": weights}
        if isinstance(transform, (nengo.Convolution, nengo.ConvolutionTranspose)):
            kwargs = {
                name: getattr(transform, name)
                for name in (
                    "n_filters",
                    "input_shape",
                    "kernel_size",
                    "strides",
                    "padding",
                    "channels_last",
                    "groups",
                )
                if hasattr(transform, name)
            }
            if isinstance(transform, nengo.ConvolutionTranspose):
                kwargs["output_shape"] = transform.output_shape
            kwargs["input_shape"] = transform.input_shape.shape
            return {"transform": type(transform)(init=weights, **kwargs)}
        raise ValidationError(
            f"{conn}: freezing {type(transform).__name__} transforms is not supported",
            attr="objs",
            obj=self,
        )

    def freeze_params(self, objs=None):
        """Write the current (trained) parameters into the nengo objects.

        Afterwards ``nengo.Simulator`` (or a new nengojax Simulator) builds the
        trained model. Objects are updated with the arguments of
        `get_nengo_params`; nothing is changed if any object fails.

        Parameters
        ----------
        objs : nengo.Network, object or list, optional
            What to freeze (default: the whole simulated network).
        """
        self._check_open()
        todo = self.get_nengo_params(self._objects(objs), as_dict=True)
        for obj, params in todo.items():
            if isinstance(obj, nengo.Connection):
                for name in ("function", "transform", "solver"):
                    if name in params:
                        setattr(obj, name, params[name])
            elif isinstance(obj, nengo.Node):
                if "params" in params:
                    obj._set_params(params["params"])
            else:
                for name, value in params.items():
                    setattr(obj, name, value)

    # --- gradient check -------------------------------------------------------------------

    def check_gradients(self, x=None, n_steps=5, rtol=2e-2, atol=1e-4, n_directions=4, seed=0):
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
        self._check_open()
        xp = self._prepare_x(x)
        if xp:
            n_items, n_steps = self._check_sizes(xp, {})
            xp = {k: v[: self._mb()] for k, v in xp.items()}
            if n_items < self._mb():
                raise ValidationError("x has fewer items than the minibatch", attr="x")
        params = {k: v for k, v in self.params.items() if np.size(v) > 0}
        rest = {k: v for k, v in self.params.items() if k not in params}
        state = self._initial_state()
        rng = np.random.default_rng(seed)
        weights = {k: float(rng.standard_normal()) for k in self.compiled.probes}
        compiled = self.compiled

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
                    self.compiled.float_dtype,
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


def _voja_target(network, ens) -> bool:
    for conn in network.all_connections:
        if conn.post_obj is ens and conn.learning_rule is not None:
            return True
    return False


def _call(cb, name, *args):
    fn = getattr(cb, name, None)
    if fn is not None:
        fn(*args)


def _chunk_size(n_batches: int, target: int = 10) -> int:
    """Minibatches per scan call: a divisor of ``n_batches`` giving about
    ``target`` progress updates per epoch (one compiled scan length)."""
    best = n_batches
    for d in range(1, n_batches + 1):
        if n_batches % d == 0 and abs(n_batches // d - target) < abs(n_batches // best - target):
            best = d
    return best


def _epoch_logs(values, term_values, metric_values) -> dict:
    values, term_values, metric_values = _dist.to_host((values, term_values, metric_values))
    logs = {"loss": float(np.mean(np.concatenate(values)))}
    keys = term_values[0].keys() if term_values else []
    if len(keys) > 1:
        for k in keys:
            logs[f"{k}_loss"] = float(np.mean(np.concatenate([t[k] for t in term_values])))
    for k, mets in (metric_values[0] if metric_values else {}).items():
        for name in mets:
            logs[f"{k}_{name}"] = float(
                np.mean(np.concatenate([m[k][name] for m in metric_values]))
            )
    return logs


def _progress(epoch, epochs, done, total, loss, elapsed):
    sys.stdout.write(
        f"\rEpoch {epoch + 1}/{epochs} - {done}/{total} - {elapsed:.2f}s - loss: {loss:.6g}"
    )
    sys.stdout.flush()
