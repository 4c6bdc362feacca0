"""Callbacks for `nengojax.Simulator.fit`: `EarlyStopping`, `ModelCheckpoint`, `MetricsLogger`.

A callback is any object with some of the methods of `Callback`; ``fit`` sets
its ``sim`` attribute to the simulator before training and calls
``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``,
``on_epoch_end(epoch, logs)`` (``logs`` holds this epoch's ``"loss"``,
``"val_loss"``, ... as floats) and ``on_train_end(logs)``. Setting
``sim.stop_training = True`` ends training after the current epoch.

A monitored key (``monitor``) or a ``{key}`` in a `ModelCheckpoint` path that
is not in the logs raises `nengo.exceptions.ValidationError` after the first
epoch (not a warning each epoch, which would silently never stop or never
save). A trainer that knows the keys it will log can find this out before
training by calling ``check_log_keys(keys)`` on callbacks that have it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import string

import numpy as np
from nengo.exceptions import ValidationError

__all__ = ["Callback", "EarlyStopping", "MetricsLogger", "ModelCheckpoint"]


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


def _fspath(value, name: str, obj) -> str:
    """``value`` as a path string, or a `ValidationError` naming ``name``."""
    try:
        return os.fspath(value)
    except TypeError:
        raise ValidationError(
            f"{name} must be a str or os.PathLike (got {type(value).__name__})",
            attr=name,
            obj=obj,
        ) from None


def _monitor_mode(monitor: str, mode: str) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise ValidationError(f"monitor must be a non-empty str (got {monitor!r})", attr="monitor")
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
        Log key to watch (``"loss"``, ``"val_loss"``, ``"<probe>_loss"``, ...).
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
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)):
            raise ValidationError(
                f"patience must be an integer (got {patience!r})", attr="patience", obj=self
            )
        if patience < 0:
            raise ValidationError(
                f"patience must be >= 0 (got {patience})", attr="patience", obj=self
            )
        self.patience = int(patience)
        try:
            min_delta = float(min_delta)
        except (TypeError, ValueError):
            min_delta = np.nan
        if not np.isfinite(min_delta):
            raise ValidationError("min_delta must be a finite number", attr="min_delta", obj=self)
        self.min_delta = abs(min_delta)
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

    def check_log_keys(self, keys) -> None:
        """Raise `nengo.exceptions.ValidationError` if ``monitor`` is not in ``keys``.

        Parameters
        ----------
        keys : iterable of str
            The keys the logs of each epoch will have.
        """
        _check_keys("EarlyStopping", [self.monitor], keys, "monitor", self)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        _check_keys("EarlyStopping", [self.monitor], logs, "monitor", self, epoch)
        value = logs[self.monitor]
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

    The ``{...}`` fields of ``path`` are checked when it is created (named
    fields only, with format specs that suit numbers). At the start of
    ``fit`` (``on_train_begin``) the directory of ``path`` is created if
    missing (as Keras does) and checked to be writable; a problem raises
    `nengo.exceptions.ValidationError` before any training. A field other
    than ``epoch`` that is not a key of the logs (e.g. ``{val_loss}`` without
    validation data) raises a ValidationError after the first epoch, as
    does ``save_best_only`` with a ``monitor`` not in the logs.

    Parameters
    ----------
    path : str or os.PathLike
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
        self.path = _fspath(path, "path", self)
        self._fields = _path_fields(self.path, self)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _monitor_mode(monitor, mode)
        self.verbose = verbose
        self.best = np.inf if self.mode == "min" else -np.inf
        self.saved = []

    def _needed_keys(self) -> list:
        return sorted(set(self._fields) - {"epoch"})

    def check_log_keys(self, keys) -> None:
        """Raise `nengo.exceptions.ValidationError` if the path's fields (or, with
        ``save_best_only``, ``monitor``) are not all in ``keys``.

        Parameters
        ----------
        keys : iterable of str
            The keys the logs of each epoch will have.
        """
        _check_keys("ModelCheckpoint", self._needed_keys(), keys, "path", self)
        if self.save_best_only:
            _check_keys("ModelCheckpoint", [self.monitor], keys, "monitor", self)

    def on_train_begin(self, logs=None):
        """Create the directory of ``path`` if needed and check it is writable."""
        directory = os.path.dirname(self.path)
        if "{" in directory:  # the directory depends on the logs: made when saving
            return
        directory = directory or os.curdir
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise ValidationError(
                f"ModelCheckpoint cannot create the directory {directory!r} of {self.path!r}: {e}",
                attr="path",
                obj=self,
            ) from e
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ValidationError(
                f"ModelCheckpoint cannot write into the directory {directory!r} of {self.path!r}",
                attr="path",
                obj=self,
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        _check_keys("ModelCheckpoint", self._needed_keys(), logs, "path", self, epoch)
        if self.save_best_only:
            _check_keys("ModelCheckpoint", [self.monitor], logs, "monitor", self, epoch)
            value = logs[self.monitor]
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        path = self.path.format(**{**logs, "epoch": epoch + 1})
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise ValidationError(
                    f"ModelCheckpoint cannot create the directory {directory!r}: {e}",
                    attr="path",
                    obj=self,
                ) from e
        path = self.sim.save_params(path)
        self.saved.append(path)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")


def _path_fields(path: str, obj) -> list:
    """The names of the ``{...}`` fields of ``path``; checks that it formats."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(path) if f is not None]
    except ValueError as e:
        raise ValidationError(
            f"ModelCheckpoint path {path!r} is not a valid format string: {e}",
            attr="path",
            obj=obj,
        ) from None
    bad = [f for f in fields if not f.isidentifier()]
    if bad:
        raise ValidationError(
            f"ModelCheckpoint path {path!r} has fields {bad}; only named fields "
            "('{epoch}' or a log key such as '{loss}') are allowed",
            attr="path",
            obj=obj,
        )
    try:  # the format specs must suit numbers (epoch: int, log values: float)
        path.format(**{f: 1 if f == "epoch" else 0.5 for f in fields})
    except (ValueError, TypeError) as e:
        raise ValidationError(
            f"ModelCheckpoint path {path!r} does not format: {e}", attr="path", obj=obj
        ) from None
    return fields


def _check_keys(who, needed, keys, attr, obj, epoch=None) -> None:
    """Raise a `ValidationError` if a key in ``needed`` is not in ``keys``."""
    keys = list(keys)
    missing = [k for k in needed if k not in keys]
    if not missing:
        return
    where = "the logs" if epoch is None else f"the logs of epoch {epoch + 1}"
    what = "path" if attr == "path" else "monitor"
    value = obj.path if attr == "path" else obj.monitor
    raise ValidationError(
        f"{who} {what} {value!r} needs log key(s) {missing}, but {where} have only "
        f"{sorted(keys)} (no validation data for a 'val_' key?)",
        attr=attr,
        obj=obj,
    )


class MetricsLogger(Callback):
    """Write each epoch's logs (``loss``, ``val_loss``, per-probe losses and
    metrics) to files in ``log_dir``, as NengoDL users got from Keras'
    ``CSVLogger`` and ``TensorBoard`` callbacks.

    Always written, after every epoch (so a crashed run keeps what it had):

    - ``metrics.csv``: one row per epoch, a column ``epoch`` (from 1) and one
      per log key (empty where an epoch lacks a key);
    - ``metrics.jsonl``: one JSON object per epoch (non-finite values as
      ``null``).

    With ``tensorboard=True`` (or ``"auto"`` and the optional ``tensorboardX``
    package installed: ``pip install nengojax[tensorboard]``) each value is
    also a TensorBoard scalar (tag = log key, step = epoch) in event files in
    ``log_dir``.

    Parameters
    ----------
    log_dir : str or os.PathLike
        Directory for the files; created at the start of ``fit`` if missing.
    append : bool
        Keep the epochs already in ``log_dir/metrics.jsonl`` and number new
        epochs after them (a ``fit`` that continues training); otherwise the
        files start over at each ``fit``.
    tensorboard : bool or "auto"
        Write TensorBoard event files (``True`` needs ``tensorboardX``).

    Attributes
    ----------
    rows : list of dict
        Every epoch logged so far (``{"epoch": n, key: value, ...}``).
    """

    def __init__(self, log_dir, append: bool = False, tensorboard="auto"):
        self.log_dir = _fspath(log_dir, "log_dir", self)
        if tensorboard not in (True, False, "auto"):
            raise ValidationError(
                f"tensorboard must be True, False or 'auto' (got {tensorboard!r})",
                attr="tensorboard",
                obj=self,
            )
        if tensorboard is True and _summary_writer() is None:
            raise ValidationError(
                "tensorboard=True needs the tensorboardX package "
                "(pip install nengojax[tensorboard]); use tensorboard='auto' to skip it",
                attr="tensorboard",
                obj=self,
            )
        self.append = bool(append)
        self.tensorboard = tensorboard
        self.rows: list[dict] = []
        self._writer = None

    @property
    def csv_path(self) -> str:
        """Path of the CSV log."""
        return os.path.join(self.log_dir, "metrics.csv")

    @property
    def jsonl_path(self) -> str:
        """Path of the JSON-lines log."""
        return os.path.join(self.log_dir, "metrics.jsonl")

    def on_train_begin(self, logs=None):
        if os.path.exists(self.log_dir) and not os.path.isdir(self.log_dir):
            raise ValidationError(
                f"MetricsLogger log_dir {self.log_dir!r} exists and is not a directory",
                attr="log_dir",
                obj=self,
            )
        try:
            os.makedirs(self.log_dir, exist_ok=True)
        except OSError as e:
            raise ValidationError(
                f"MetricsLogger cannot create log_dir {self.log_dir!r}: {e}",
                attr="log_dir",
                obj=self,
            ) from None
        if not os.access(self.log_dir, os.W_OK):
            raise ValidationError(
                f"MetricsLogger log_dir {self.log_dir!r} is not writable",
                attr="log_dir",
                obj=self,
            )
        self.rows = self._previous_rows() if self.append else []
        writer = _summary_writer() if self.tensorboard else None
        self._writer = writer(self.log_dir) if writer is not None else None
        self._write_files()  # headers now: a bad directory shows before training

    def on_epoch_end(self, epoch, logs=None):
        number = (self.rows[-1]["epoch"] if self.rows else 0) + 1
        row = {"epoch": number}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.rows.append(row)
        self._write_files()
        if self._writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    self._writer.add_scalar(key, value, number)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _previous_rows(self) -> list[dict]:
        if not os.path.exists(self.jsonl_path):
            return []
        rows = []
        with open(self.jsonl_path) as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    rows.append({k: math.nan if v is None else v for k, v in row.items()})
        return rows

    def _write_files(self) -> None:
        keys = ["epoch"]
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        with open(self.csv_path, "w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=keys, restval="")
            out.writeheader()
            out.writerows(self.rows)
        with open(self.jsonl_path, "w") as f:
            for row in self.rows:
                clean = {
                    k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                    for k, v in row.items()
                }
                f.write(json.dumps(clean) + "\n")


def _summary_writer():
    """tensorboardX's ``SummaryWriter``, or None when it is not installed."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter
