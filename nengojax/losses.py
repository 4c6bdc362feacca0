"""Loss functions for training: ``loss(y_true, y_pred) -> scalar`` (Keras order).

``y_true`` and ``y_pred`` have shape ``(minibatch, n_steps, d)``; every function
here is a pure JAX function returning a scalar, so it can be used inside
``jax.jit``/``jax.grad`` and with `nengojax.training.make_loss_fn` or
`nengojax.Simulator.compile`. Any function with that signature works as a loss.

A loss may declare what it needs from the data with two attributes, read by
`nengojax.training` and ``Simulator.fit``/``evaluate``:

``needs_target`` (default True)
    False for a loss of the outputs alone (`Regularize`): no ``y`` is needed.
``ignores_nan`` (default False)
    True for a loss that skips NaN targets (`nan_mse`): NaN targets are then
    allowed; for other losses they are refused as bad data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from nengo.exceptions import ValidationError

__all__ = [
    "Regularize",
    "accuracy",
    "categorical_crossentropy",
    "get",
    "mae",
    "mse",
    "nan_mse",
    "sparse_categorical_crossentropy",
]


def mse(y_true, y_pred):
    """Mean squared error over all items, steps and dimensions.

    Parameters
    ----------
    y_true : array_like
        Targets, shape ``(minibatch, n_steps, d)``.
    y_pred : jax.Array
        Outputs, same shape.

    Returns
    -------
    jax.Array
        Scalar loss.
    """
    return jnp.mean(jnp.square(y_pred - y_true))


def nan_mse(y_true, y_pred):
    """Mean squared error ignoring NaN targets.

    Entries of ``y_true`` that are NaN contribute neither to the sum nor to the
    count (and give no gradient); with no valid target at all the loss is 0.

    Parameters
    ----------
    y_true : array_like
        Targets, shape ``(minibatch, n_steps, d)``, NaN where undefined.
    y_pred : jax.Array
        Outputs, same shape.

    Returns
    -------
    jax.Array
        Scalar loss.
    """
    valid = ~jnp.isnan(y_true)
    diff = jnp.where(valid, y_pred - jnp.where(valid, y_true, 0), 0)
    count = jnp.sum(valid)
    return jnp.sum(jnp.square(diff)) / jnp.maximum(count, 1).astype(diff.dtype)


nan_mse.ignores_nan = True


def mae(y_true, y_pred):
    """Mean absolute error over all items, steps and dimensions."""
    return jnp.mean(jnp.abs(y_pred - y_true))


def sparse_categorical_crossentropy(y_true, y_pred):
    """Cross-entropy of integer class labels and the outputs taken as logits.

    Parameters
    ----------
    y_true : array_like
        Class indices, shape ``(minibatch, n_steps, 1)`` (or without the last
        axis), as integers or whole floats.
    y_pred : jax.Array
        Logits (unnormalised: a network's output), ``(minibatch, n_steps, n_classes)``.

    Returns
    -------
    jax.Array
        Mean over items and steps.
    """
    labels = _labels(y_true, y_pred)
    logp = jax.nn.log_softmax(y_pred, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


sparse_categorical_crossentropy.sparse_labels = True


def categorical_crossentropy(y_true, y_pred):
    """Cross-entropy of one-hot (or probability) targets and the outputs as logits."""
    logp = jax.nn.log_softmax(y_pred, axis=-1)
    return -jnp.mean(jnp.sum(y_true * logp, axis=-1))


def accuracy(y_true, y_pred):
    """Fraction of items and steps whose largest output is the target class.

    Targets are class indices (``(..., 1)``, as for
    `sparse_categorical_crossentropy`) or one-hot vectors (the shape of the output).
    """
    if jnp.shape(y_true)[-1:] == jnp.shape(y_pred)[-1:] and jnp.shape(y_pred)[-1] > 1:
        labels = jnp.argmax(y_true, axis=-1)
    else:
        labels = _labels(y_true, y_pred)
    return jnp.mean((jnp.argmax(y_pred, axis=-1) == labels).astype(y_pred.dtype))


accuracy.sparse_labels = True


def _labels(y_true, y_pred):
    """Integer class labels shaped like ``y_pred`` without its last axis."""
    labels = jnp.asarray(y_true)
    if labels.ndim == jnp.ndim(y_pred):
        labels = labels[..., 0]
    return labels.astype(jnp.int32)


#: Loss and metric functions by the names NengoDL/Keras users write.
NAMES = {
    "mse": mse,
    "mean_squared_error": mse,
    "mae": mae,
    "mean_absolute_error": mae,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "accuracy": accuracy,
    "acc": accuracy,
    "sparse_categorical_accuracy": accuracy,
    "categorical_accuracy": accuracy,
}


def get(name_or_fn):
    """A loss or metric function from its name (``"mse"``, ``"accuracy"``,
    ``"sparse_categorical_crossentropy"``, ...; see `NAMES`), or the function itself.

    The crossentropies take the outputs as logits (a nengo network's output is
    not a softmax), like Keras' ``from_logits=True``.
    """
    if isinstance(name_or_fn, str):
        if name_or_fn not in NAMES:
            raise ValidationError(
                f"unknown loss or metric {name_or_fn!r} (known: {sorted(NAMES)})",
                attr="loss",
            )
        return NAMES[name_or_fn]
    return name_or_fn


class Regularize:
    """A norm penalty on the probed values (``y_true`` is ignored).

    For each item and step, the ``order``-norm of the probed value is taken
    (over all of its dimensions when ``axis`` is None, else along ``axis`` of a
    single step's value); the loss is ``weight`` times the mean of these norms.
    Probe the quantity to penalize (e.g. ``nengo.Probe(ens.neurons)`` for an
    activity penalty) and give it this loss; no target is needed.

    Parameters
    ----------
    order : int, float or ``numpy.inf``
        Order of the norm (1: L1, 2: L2, ...).
    axis : int, optional
        Axis of a single step's value along which to take the norm (None: the
        flattened value).
    weight : float
        Scale of the penalty.
    """

    needs_target = False

    def __init__(self, order=2, axis=None, weight=1.0):
        order = float(order)
        if not order >= 1:
            raise ValidationError(f"order must be >= 1 (got {order})", attr="order", obj=self)
        self.order = order
        self.axis = None if axis is None else int(axis)
        self.weight = float(weight)

    def __repr__(self):
        return f"Regularize(order={self.order:g}, axis={self.axis}, weight={self.weight:g})"

    def __call__(self, y_true, y_pred):
        """The penalty on ``y_pred`` (shape ``(minibatch, n_steps, ...)``)."""
        y = jnp.asarray(y_pred)
        if self.axis is None:
            y = y.reshape(y.shape[:2] + (-1,))
            axis = -1
        else:
            ndim = y.ndim - 2
            if not -ndim <= self.axis < ndim:
                raise ValidationError(
                    f"axis {self.axis} is out of range for probed values with {ndim} "
                    "dimension(s) per step",
                    attr="axis",
                    obj=self,
                )
            axis = 2 + self.axis % ndim
        return self.weight * jnp.mean(_norm(y, self.order, axis))


def _norm(x, order, axis):
    """The ``order``-norm along ``axis`` with finite gradients at zero."""
    a = jnp.abs(x)
    if order == 1:
        return jnp.sum(a, axis=axis)
    if np.isinf(order):
        return jnp.max(a, axis=axis)
    s = jnp.sum(a**order, axis=axis)
    pos = s > 0
    return jnp.where(pos, jnp.where(pos, s, 1) ** (1 / order), 0)
