"""Callbacks for `nengojax.Simulator.fit`: `EarlyStopping`, `ModelCheckpoint`.

A callback is any object with some of the methods of `Callback`; ``fit`` sets
its ``sim`` attribute to the simulator before training and calls
``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``,
``on_epoch_end(epoch, logs)`` (``logs`` holds this epoch's ``"loss"``,
``"val_loss"``, ... as floats) and ``on_train_end(logs)``. Setting
``sim.stop_training = True`` ends training after the current epoch.
"""

from __future__ import annotations

import warnings

import numpy as np
from nengo.exceptions import ValidationError

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint"]


class Callback:
    """Base class of fit callbacks (every hook does nothing)."""

    sim = None

    def set_sim(self, sim) -> None:
        """Called by ``fit`` with the simulator being trained."""
        self.sim = sim

    def on_train_begin(self, logs=None):
        """Called once before the first epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called before each epoch (``epoch`` counts from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after each epoch with that epoch's logs."""

    def on_train_end(self, logs=None):
        """Called once after the last epoch."""


def _monitor_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValidationError(f"mode must be 'auto', 'min' or 'max' (got {mode!r})", attr="mode")
    if mode != "auto":
        return mode
    return "max" if ("acc" in monitor or "accuracy" in monitor) else "min"


class EarlyStopping(Callback):
    """Stop training when a monitored quantity stops improving.

    Parameters
    ----------
    monitor : str
        Log key to watch (``"loss"``, ``"val_loss"``, ``"<probe_key>_loss"``, ...).
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        Smallest change that counts as an improvement.
    mode : str
        ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, else min).
    restore_best_params : bool
        When stopping (or at the end), put back the parameters of the best epoch.
    verbose : int
        Print a line when stopping.

    Attributes
    ----------
    stopped_epoch : int or None
        Epoch (from 0) after which training stopped.
    best : float
        Best value seen.
    """

    def __init__(
        self,
        monitor="val_loss",
        patience=0,
        min_delta=0.0,
        mode="auto",
        restore_best_params=False,
        verbose=0,
    ):
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        self.mode = _monitor_mode(monitor, mode)
        self.restore_best_params = restore_best_params
        self.verbose = verbose
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = None
        self.best = np.inf if self.mode == "min" else -np.inf
        self.best_params = None

    def _improved(self, value) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"EarlyStopping: {self.monitor!r} is not in the logs "
                f"(available: {sorted(logs or {})}); not stopping",
                UserWarning,
            )
            return
        if self._improved(value):
            self.best = value
            self.wait = 0
            if self.restore_best_params:
                self.best_params = dict(self.sim.params)
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.sim.stop_training = True
            if self.verbose:
                print(f"EarlyStopping: stopped after epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        if self.restore_best_params and self.best_params is not None:
            self.sim.params = dict(self.best_params)


class ModelCheckpoint(Callback):
    """Save the parameters (`Simulator.save_params`) after each epoch.

    Parameters
    ----------
    path : str
        File to write; may contain ``{epoch}`` (from 1) and log keys, e.g.
        ``"ckpt-{epoch:02d}-{loss:.4f}.npz"``.
    monitor : str
        Log key deciding what "best" means with ``save_best_only``.
    save_best_only : bool
        Only save when ``monitor`` improved.
    mode : str
        ``"min"``, ``"max"`` or ``"auto"``.
    verbose : int
        Print a line on each save.

    Attributes
    ----------
    saved : list of str
        Paths written so far.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto", verbose=0):
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.mode = _monitor_mode(monitor, mode)
        self.verbose = verbose
        self.best = np.inf if self.mode == "min" else -np.inf
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                warnings.warn(
                    f"ModelCheckpoint: {self.monitor!r} is not in the logs; not saving",
                    UserWarning,
                )
                return
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        path = self.path.format(epoch=epoch + 1, **logs)
        path = self.sim.save_params(path)
        self.saved.append(path)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")
