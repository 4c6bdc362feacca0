"""What ``fit`` reports: `History`, the logs of an epoch, and the progress line."""

from __future__ import annotations

import sys

import numpy as np

from .. import distributed


class History:
    """What ``Simulator.fit`` returns (like Keras' ``History``).

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

    def append(self, epoch: int, logs: dict) -> None:
        """Record the logs of one epoch."""
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


def call_callbacks(callbacks, name: str, *args) -> None:
    """Call ``name(*args)`` on every callback that has it."""
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(*args)


def chunk_size(n_batches: int, target: int = 10) -> int:
    """Minibatches per scan call: a divisor of ``n_batches`` giving about
    ``target`` progress updates per epoch (one compiled scan length)."""
    best = n_batches
    for d in range(1, n_batches + 1):
        if n_batches % d == 0 and abs(n_batches // d - target) < abs(n_batches // best - target):
            best = d
    return best


def epoch_logs(values, term_values, metric_values) -> dict:
    values, term_values, metric_values = distributed.to_host((values, term_values, metric_values))
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


def progress(epoch, epochs, done, total, loss, elapsed):
    sys.stdout.write(
        f"\rEpoch {epoch + 1}/{epochs} - {done}/{total} - {elapsed:.2f}s - loss: {loss:.6g}"
    )
    sys.stdout.flush()
