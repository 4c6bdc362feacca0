"""`Trainer`: NengoDL-style ``compile`` / ``fit`` / ``evaluate`` / ``predict`` on optax.

.. code-block:: python

    with nengojax.Simulator(net, minibatch_size=32) as sim:
        sim.compile(optax.rmsprop(0.01), loss={probe: nengojax.losses.mse})
        sim.fit({inp: x}, {probe: y}, epochs=25)
        print(sim.evaluate({inp: x_test}, {probe: y_test})["loss"])

Data are dicts ``{input_node: array}`` / ``{probe: array}`` of shape
``(n_items, n_steps, d)``; ``n_steps`` is taken from the data. ``fit`` runs
spiking neurons as their rate counterparts (or spike-aware, see
`nengojax.config.configure_settings`); ``evaluate`` and ``predict`` run the real
(spiking) model. The pure functions underneath are in `nengojax.training`;
the Simulator holds one `Trainer` and forwards these methods to it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from nengo.exceptions import SimulationError, ValidationError

from .. import distributed, training
from ..config import get_setting, untrainable
from ..runtime.state import add_batch_axis
from ..sharding import batch_sharding, replicated
from . import data
from .history import (
    History,
    all_finite,
    call_callbacks,
    chunk_size,
    epoch_logs,
    log_keys,
    progress,
)


@dataclasses.dataclass
class TrainSpec:
    """What ``compile`` set: the optimizer, the losses and the optimizer state."""

    optimizer: object
    loss: Callable | dict
    metrics: object
    loss_weights: dict
    trainable: list
    opt_state: object = None
    fns: dict = dataclasses.field(default_factory=dict)


class Trainer:
    """The training part of a `nengojax.Simulator` (see the module docstring).

    Parameters
    ----------
    sim : nengojax.Simulator
        The simulator whose params and state it trains and runs.
    """

    def __init__(self, sim):
        self.sim = sim
        self.spec: TrainSpec | None = None
        self._predict_fn = None
        self._convolves = None

    # --- helpers ------------------------------------------------------------------------

    @property
    def _mb(self) -> int:
        return self.sim.minibatch_size or 1

    def _initial_state(self):
        """The state every minibatch starts from when ``stateful=False``."""
        return self.sim.compiled.init_state(self._mb, seed=self.sim.seed)

    def _settings(self) -> tuple[str, bool]:
        top = self.sim.compiled.program.toplevel
        mode = "spike_aware" if get_setting(top, "spike_aware", False) else "rate"
        return mode, bool(get_setting(top, "remat", False))

    def _require(self, need_optimizer: bool) -> TrainSpec:
        if self.spec is None:
            raise SimulationError(
                "call sim.compile(optimizer, loss) before fit/evaluate (with a loss for evaluate)"
            )
        if need_optimizer and self.spec.optimizer is None:
            raise SimulationError("sim.compile was called without an optimizer: cannot fit")
        return self.spec

    def _raise_run_error(self, e: Exception):
        compiled = self.sim.compiled
        err = compiled.pop_callback_error()
        if err is not None:
            raise err from None
        if isinstance(e, (SimulationError, ValidationError)):
            raise e
        host = compiled.host_objects()
        if host and "JVP" in str(e):
            raise SimulationError(
                f"cannot train through {host}: they run on the host (NumPy code through a "
                "callback), which JAX cannot differentiate. Give such Nodes as inputs (x), "
                "or write them as nengojax.JaxNode / register a JAX step for the neuron type"
            ) from None
        raise SimulationError(f"Training failed: {type(e).__name__}: {e}") from e

    def _terms(self, spec: TrainSpec, y: dict) -> dict:
        return training.loss_terms(self.sim.compiled, spec.loss, y.keys())

    # --- compile -------------------------------------------------------------------------

    def compile(self, optimizer=None, loss=None, metrics=None, loss_weights=None) -> None:
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
        loss_weights : dict or list, optional
            ``{probe: weight}`` of the terms of the total loss (default 1), or
            a list of weights in the order of the ``loss`` dict.
        """
        sim = self.sim
        data.check_open(sim)
        compiled = sim.compiled
        if optimizer is not None:
            training.check_optimizer(optimizer)
            if get_setting(compiled.program.toplevel, "inference_only", False):
                raise ValidationError(
                    "the network is configured inference_only=True (configure_settings): "
                    "it cannot be trained; compile without an optimizer to evaluate",
                    attr="optimizer",
                    obj=sim,
                )
        if loss is None:
            raise ValidationError("compile needs a loss", attr="loss", obj=sim)
        loss = training.normalize_losses(compiled, loss)
        training.normalize_metrics(compiled, metrics)
        if isinstance(loss_weights, (list, tuple)):  # Keras style: in the loss dict's order
            if not isinstance(loss, Mapping) or len(loss_weights) != len(loss):
                raise ValidationError(
                    f"a list of {len(loss_weights)} loss_weights needs a loss dict with as "
                    "many probes (weights in the dict's order)",
                    attr="loss_weights",
                    obj=sim,
                )
            loss_weights = dict(zip(loss, loss_weights, strict=True))
        weights = {}
        for probe, w in (loss_weights or {}).items():
            key = training.probe_key(compiled, probe)
            if isinstance(loss, Mapping) and key not in loss:
                raise ValidationError(
                    f"loss_weights has a weight for {probe}, which has no loss (loss "
                    f"probes: {sorted(loss)})",
                    attr="loss_weights",
                    obj=sim,
                )
            if not (isinstance(w, (int, float, np.number)) and np.isfinite(w)):
                raise ValidationError(
                    f"loss_weights[{probe}] must be a finite number (got {w!r})",
                    attr="loss_weights",
                    obj=sim,
                )
            weights[key] = float(w)
        keys = training.trainable_keys(compiled, compiled.program.toplevel)
        if optimizer is not None:  # evaluation alone trains nothing: nothing to warn about
            self._warn_untrainable()
        self.spec = TrainSpec(optimizer, loss, metrics, weights, keys)

    def _warn_untrainable(self) -> None:
        """Warn about configured-trainable signals that are not params."""
        compiled = self.sim.compiled
        missing = untrainable(compiled, compiled.program.toplevel)
        state = [k for k, why in missing.items() if why == "state"]
        tied = [f"{k} (as {why})" for k, why in missing.items() if why != "state"]
        if state:
            warnings.warn(
                f"{state} cannot be trained: nengo's operator merger put these signals in "
                "one array with simulation state, so they are not parameters. Build the "
                "Simulator with optimize=False to train them.",
                UserWarning,
                stacklevel=4,
            )
        if tied:
            warnings.warn(
                f"{tied} are trained tied: nengo's operator merger stored each with an equal "
                "signal of another object, trained as one value. Build the Simulator with "
                "optimize=False to train them apart.",
                UserWarning,
                stacklevel=4,
            )

    # --- fit -------------------------------------------------------------------------------

    def _one_minibatch_per_call(self) -> bool:
        """CPU: convolving nets fit 1 minibatch per call (`training.holds_convolutions`)."""
        if self._convolves is None:
            cpu = jax.default_backend() == "cpu"
            self._convolves = cpu and training.holds_convolutions(self.sim.compiled)
        return self._convolves

    def _epoch_fn(self, spec: TrainSpec, mode: str, remat: bool, stateful: bool):
        """The jitted `nengojax.training.make_train_epoch` for these settings."""
        key = ("epoch", mode, remat, stateful)
        if key not in spec.fns:
            kwargs = {}
            mesh = self.sim.placement.mesh
            if mesh is not None:  # params replicated, state and data split on the batch
                rep, bat = replicated(mesh), batch_sharding(mesh)
                kwargs["out_shardings"] = ((rep, rep, bat), rep)
            spec.fns[key] = training.make_train_epoch(
                self.sim.compiled,
                spec.optimizer,
                spec.loss,
                spec.loss_weights,
                mode=mode,
                remat=remat,
                metrics=spec.metrics,
                stateful=stateful,
                **kwargs,
            )
        return spec.fns[key]

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
        validation_split=0.0,
        batch_size=None,
        steps_per_epoch=None,
    ) -> History:
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
        validation_split : float
            As Keras': the last fraction of the items validates (``val_loss``).
        batch_size : int, optional
            As Keras': must equal the Simulator's ``minibatch_size``.
        steps_per_epoch : int, optional
            With ``x`` an iterable of ``(x, y)`` minibatches instead of arrays
            (see `.data.prepare_xy`): the minibatches of an epoch.

        Returns
        -------
        History
            ``history.history["loss"]`` has one value per epoch.
        """
        sim = self.sim
        data.check_open(sim)
        spec = self._require(need_optimizer=True)
        stateful = data.resolve_stateful(sim, stateful, False)
        sim.placement.check_same_program(sim.compiled, sim.minibatch_size, sim.seed)
        xs_all, ys_all, plan = data.prepare_xy(sim, x, y, spec.loss, steps_per_epoch, epochs)
        data.check_sizes(sim, xs_all, ys_all, n_steps)
        data.check_targets(sim, self._terms(spec, ys_all), ys_all)
        xs_all, ys_all, val = data.split_validation(
            sim, xs_all, ys_all, validation_split, validation_data, plan
        )
        n_items, n_steps = data.check_sizes(sim, xs_all, ys_all, n_steps)
        n_items = plan.items if plan else n_items
        mb = self._mb
        epochs = data.check_epochs(sim, epochs, n_items, batch_size)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValidationError(
                    "validation_data must be a tuple (x_val, y_val)", attr="validation_data"
                )
            vx = data.prepare_x(sim, validation_data[0])
            vy = data.prepare_y(sim, validation_data[1], spec.loss)
            data.check_sizes(sim, vx, vy)
            data.check_targets(sim, self._terms(spec, vy), vy)
            val = (vx, vy)
        callbacks = list(callbacks or [])
        if n_steps == 1:
            filtered = [
                str(sim.compiled.probes[k])
                for k in self._terms(spec, ys_all)
                if sim.compiled.probes[k].synapse is not None
            ]
            if filtered:
                warnings.warn(
                    f"the data have one step, but {filtered} filter their values with a "
                    "synapse: after one step a filtered probe has barely moved from 0, so "
                    "the loss can hardly improve. Probe with synapse=None for one-step "
                    "training, or give more steps",
                    UserWarning,
                    stacklevel=3,
                )

        placement = sim.placement
        mode, remat = self._settings()
        trainable, frozen = training.split_params(sim.params, spec.trainable)
        if spec.opt_state is None:
            spec.opt_state = placement.replicated(spec.optimizer.init(trainable))
        opt_state = spec.opt_state
        state = placement.state(
            self._initial_state() if not stateful else add_batch_axis(sim.state)
        )
        run_batches = self._epoch_fn(spec, mode, remat, bool(stateful))
        n_batches = n_items // mb
        chunk = 1 if self._one_minibatch_per_call() else n_batches
        chunk = min(chunk, chunk_size(n_batches)) if verbose == 1 else chunk
        # several processes run the same steps; process 0 alone prints
        show = verbose if distributed.is_main_process() else 0
        multi = placement.spans_processes

        history = History()
        history.params = {"epochs": epochs, "steps": n_batches, "n_steps": n_steps, "mode": mode}
        sim.stop_training = False
        for cb in callbacks:
            if hasattr(cb, "set_sim"):
                cb.set_sim(sim)
            else:
                cb.sim = sim
        metric_spec = training.normalize_metrics(sim.compiled, spec.metrics)
        name = functools.partial(training.log_name, sim.compiled)
        keys = log_keys(self._terms(spec, ys_all), metric_spec, ys_all, val is not None, name)
        for cb in callbacks:  # a path or monitor naming no log key fails now, not after epoch 1
            if hasattr(cb, "check_log_keys"):
                cb.check_log_keys(keys)
        call_callbacks(callbacks, "on_train_begin", {})
        for epoch in range(epochs):
            call_callbacks(callbacks, "on_epoch_begin", epoch, {})
            t0 = time.perf_counter()
            order = data.epoch_order(n_items, mb, epoch, sim.seed, shuffle, plan)
            ex = {k: v[order].reshape((n_batches, mb) + v.shape[1:]) for k, v in xs_all.items()}
            ey = {k: v[order].reshape((n_batches, mb) + v.shape[1:]) for k, v in ys_all.items()}
            values, term_values, metric_values = [], [], []
            for start in range(0, n_batches, chunk):
                cx = placement.data({k: v[start : start + chunk] for k, v in ex.items()}, 1)
                cy = placement.data({k: v[start : start + chunk] for k, v in ey.items()}, 1)
                before = (trainable, opt_state)
                try:
                    (trainable, opt_state, state), (v, tv, mv) = run_batches(
                        trainable, frozen, opt_state, state, cx, cy
                    )
                except Exception as e:
                    self._raise_run_error(e)
                if not all_finite((v, trainable)):
                    self._stop_non_finite(spec, history, epoch, start, v, frozen, *before)
                values.append(v)
                term_values.append(tv)
                metric_values.append(mv)
                if show == 1 and start + chunk < n_batches:
                    running = float(np.mean(np.concatenate(distributed.to_host(values))))
                    elapsed = time.perf_counter() - t0
                    progress(epoch, epochs, start + chunk, n_batches, running, elapsed)
            # the epoch is done: commit it
            if multi:  # replicas on other hosts may differ in rounding: take process 0's
                trainable, opt_state = distributed.put_global(
                    distributed.broadcast_from_main((trainable, opt_state)),
                    replicated(placement.mesh),
                )
            spec.opt_state = opt_state
            sim.params = placement.replicated({**frozen, **trainable})
            if stateful:
                sim.set_state(state)
            logs = epoch_logs(values, term_values, metric_values, name)
            if val is not None:
                vlogs = self._evaluate_prepared(val[0], val[1], spec, stateful=False)
                logs.update({f"val_{k}": v for k, v in vlogs.items()})
            if multi:  # the same logs (so the same callback decisions) everywhere
                logs = {k: float(v) for k, v in distributed.broadcast_from_main(logs).items()}
            history.append(epoch, logs)
            if show:
                line = " - ".join(f"{k}: {v:.6g}" for k, v in logs.items())
                print(
                    f"\rEpoch {epoch + 1}/{epochs} - {n_batches}/{n_batches} - "
                    f"{time.perf_counter() - t0:.2f}s - {line}",
                    flush=True,
                )
            call_callbacks(callbacks, "on_epoch_end", epoch, dict(logs))
            if multi:
                sim.stop_training = bool(
                    distributed.broadcast_from_main(np.asarray(sim.stop_training))
                )
            if sim.stop_training:
                break
        call_callbacks(callbacks, "on_train_end", {})
        return history

    def _stop_non_finite(self, spec, history, epoch, start, values, frozen, trainable, opt):
        """A loss or an update went NaN/inf: keep the params and optimizer state
        from before this chunk of minibatches (the last finite ones), record it in
        the History, and raise."""
        sim = self.sim
        spec.opt_state = opt
        sim.params = sim.placement.replicated({**frozen, **trainable})
        losses = np.asarray(distributed.to_host(values))
        bad = int(np.argmax(~np.isfinite(losses))) if not np.isfinite(losses).all() else None
        where = (
            f"the loss of minibatch {start + bad} was {losses[bad]}"
            if bad is not None
            else f"an update of the minibatches from {start} on made a parameter NaN/inf"
        )
        history.params["stopped"] = (
            f"epoch {epoch}: {where}; the params from before minibatch {start} are kept"
        )
        err = SimulationError(
            f"fit stopped in epoch {epoch}: {where} (a bad loss, or too large a "
            f"learning rate?). The last finite params (from before minibatch {start}) "
            "are kept; see the exception's .history."
        )
        err.history = history
        raise err

    # --- evaluate / predict -----------------------------------------------------------------

    def _predict_prepared(self, x: dict, n_items: int, n_steps: int, stateful: bool) -> dict:
        """Probe outputs ``{key: (n_items, n_steps, ...)}`` of the real model."""
        sim = self.sim
        placement = sim.placement
        placement.check_same_program(sim.compiled, sim.minibatch_size, sim.seed)
        if self._predict_fn is None:
            self._predict_fn = training.make_predict_fn(sim.compiled, "simulate")
        mb = self._mb
        init = placement.state(self._initial_state())
        state = placement.state(add_batch_axis(sim.state)) if stateful else init
        outs = []
        for start in range(0, n_items, mb):
            xb = {}
            for k, v in x.items():
                part = v[start : start + mb]
                if part.shape[0] < mb:
                    pad = np.zeros((mb - part.shape[0],) + part.shape[1:], part.dtype)
                    part = np.concatenate([part, pad])
                xb[k] = part
            try:
                new_state, probes = self._predict_fn(
                    sim.params, state, placement.data(xb), n_steps
                )
            except Exception as e:
                self._raise_run_error(e)
            outs.append(probes)
            state = new_state if stateful else init
        if stateful:
            sim.set_state(state)
        outs = distributed.to_host(outs)
        return {k: np.concatenate([o[k] for o in outs])[:n_items] for k in sim.compiled.probes}

    def predict(self, x=None, n_steps=None, stateful=False, n_items=None) -> dict:
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
        stateful = data.resolve_stateful(self.sim, stateful, False)
        sim = self.sim
        data.check_open(sim)
        xp = data.prepare_x(sim, x)
        items, steps = data.check_sizes(sim, xp, {}, n_steps)
        if not xp and n_items is not None:
            items = int(n_items)
        if stateful and items > self._mb:
            warnings.warn(
                "stateful predict over several minibatches carries the state from "
                "one minibatch to the next",
                UserWarning,
                stacklevel=3,
            )
        out = self._predict_prepared(xp, items, steps, stateful)
        return {sim.compiled.probes[k]: v for k, v in out.items()}

    def _evaluate_prepared(self, x: dict, y: dict, spec: TrainSpec, stateful: bool) -> dict:
        compiled = self.sim.compiled
        n_items, n_steps = data.check_sizes(self.sim, x, y)
        preds = self._predict_prepared(x, n_items, n_steps, stateful)
        metric_spec = training.normalize_metrics(compiled, spec.metrics)
        total, per_probe, metrics = training.compute_losses(
            compiled,
            spec.loss,
            spec.loss_weights,
            metric_spec,
            {k: jnp.asarray(v) for k, v in y.items()},
            {k: jnp.asarray(v) for k, v in preds.items()},
        )
        logs = {"loss": float(total)}
        name = functools.partial(training.log_name, compiled)
        logs.update({f"{name(k)}_loss": float(v) for k, v in per_probe.items()})
        for key, values in metrics.items():
            logs.update({f"{name(key)}_{metric}": float(v) for metric, v in values.items()})
        return logs

    def evaluate(self, x=None, y=None, stateful=False, verbose=0) -> dict:
        """The compiled loss (and metrics) of the real (spiking) model on ``(x, y)``.

        The losses are computed once over all items (for mean losses such as
        `nengojax.losses.mse` this is the mean over minibatches), by the same
        function as in `fit` (`nengojax.training.compute_losses`).

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
            ``"loss"`` (weighted total), ``"<probe>_loss"`` per probe and
            ``"<probe>_<metric>"`` per metric, as floats; ``<probe>`` is the
            probe's label where no other probe has it, else its key.
        """
        stateful = data.resolve_stateful(self.sim, stateful, False)
        sim = self.sim
        data.check_open(sim)
        spec = self._require(need_optimizer=False)
        xp = data.prepare_x(sim, x)
        yp = data.prepare_y(sim, y, spec.loss)
        data.check_sizes(sim, xp, yp)
        data.check_targets(sim, self._terms(spec, yp), yp)
        logs = self._evaluate_prepared(xp, yp, spec, stateful)
        if verbose and distributed.is_main_process():
            print(" - ".join(f"{k}: {v:.6g}" for k, v in logs.items()))
        return logs
