"""What ``fit`` reports: `History`, the keys and values of an epoch's logs, the
progress line, and the finiteness check that stops a diverging fit."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from .. import distributed, training


class History:
    """What ``Simulator.fit`` returns (like Keras' ``History``).

    Attributes
    ----------
    history : dict
        ``history["loss"]`` (and ``"val_loss"``, ``"<probe>_loss"`` named by
        the probe's label, or its key where it has no unique label,
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


def epoch_logs(values, term_values, metric_values, name=str) -> dict:
    """An epoch's logs; ``name(probe_key)`` names a probe in them."""
    values, term_values, metric_values = distributed.to_host((values, term_values, metric_values))
    logs = {"loss": float(np.mean(np.concatenate(values)))}
    keys = term_values[0].keys() if term_values else []
    if len(keys) > 1:
        for k in keys:
            logs[f"{name(k)}_loss"] = float(np.mean(np.concatenate([t[k] for t in term_values])))
    for k, mets in (metric_values[0] if metric_values else {}).items():
        for metric in mets:
            logs[f"{name(k)}_{metric}"] = float(
                np.mean(np.concatenate([m[k][metric] for m in metric_values]))
            )
    return logs


def progress(epoch, epochs, done, total, loss, elapsed):
    sys.stdout.write(
        f"\rEpoch {epoch + 1}/{epochs} - {done}/{total} - {elapsed:.2f}s - loss: {loss:.6g}"
    )
    sys.stdout.flush()


def log_keys(terms: dict, metric_spec, y: dict, validation: bool, name=str) -> list[str]:
    """The keys of the logs ``fit`` gives its callbacks: ``"loss"``, the loss of
    each probe (with several), each metric, and the ``val_`` ones."""
    items = training.metric_items(metric_spec, y)
    metrics = {f"{name(k)}_{training.fn_name(fn)}" for k, fns in items for fn in fns}
    per_probe = {f"{name(k)}_loss" for k in terms}
    keys = {"loss"} | metrics | (per_probe if len(terms) > 1 else set())
    if validation:  # evaluate's logs, prefixed
        keys |= {f"val_{k}" for k in {"loss"} | per_probe | metrics}
    return sorted(keys)


@jax.jit
def _finite_tree(tree):
    # one isfinite over all the values concatenated: a reduction per leaf made
    # XLA compile for seconds (up to a minute) on models with thousands of params
    leaves = [jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.isfinite(jnp.concatenate(leaves))) if leaves else jnp.asarray(True)


def all_finite(tree) -> bool:
    """Whether every value of ``tree`` (losses, params) is finite."""
    return bool(distributed.to_host(_finite_tree(tree)))
