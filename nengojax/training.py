"""Training nengo models with optax: the pure layer under `Simulator.fit`.

Everything here is a pure function of JAX pytrees, so a training loop can be
written directly with optax:

.. code-block:: python

    import optax
    from nengojax import training

    compiled = sim.compiled  # or nengojax.compile(net)
    params = compiled.init_params()
    trainable, frozen = training.split_params(
        params, training.trainable_keys(compiled))
    opt = optax.rmsprop(0.01)
    opt_state = opt.init(trainable)
    train_step = training.make_train_step(compiled, opt, {probe: nengojax.losses.mse})
    state0 = compiled.init_state(minibatch_size)
    for epoch in range(epochs):
        for idx in training.minibatch_indices(n_items, minibatch_size, epoch, seed):
            xb = {compiled.key(inp): x[idx]}
            yb = {compiled.key(probe): y[idx]}
            trainable, opt_state, loss, aux = train_step(
                trainable, frozen, opt_state, state0, xb, yb)

This is exactly what `Simulator.fit` runs (same functions, same minibatch
order, same initial state for every minibatch unless ``stateful=True``, in
which case ``aux["state"]`` is carried to the next minibatch), so a loop like
the above reproduces ``sim.fit`` bit for bit.

Shapes: ``x`` maps input-node keys to ``(minibatch, n_steps, size_out)`` arrays
and ``y`` maps probe keys to ``(minibatch, n_steps, *probe_shape)`` arrays;
``n_steps`` is taken from them (each new value compiles once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from nengo.exceptions import ValidationError

from . import losses as _losses
from .config import trainable_keys, untrainable
from .runtime import xla_options
from .runtime.run import scan_or_call
from .runtime.state import is_batched

__all__ = [
    "make_eval_fn",
    "make_loss_fn",
    "make_predict_fn",
    "make_train_epoch",
    "make_train_step",
    "minibatch_indices",
    "split_params",
    "trainable_keys",
    "untrainable",
]


# --- compilation -------------------------------------------------------------------------


def jit_training(fn, **kwargs):
    """``jax.jit(fn)`` with nengojax's compile options (`.xla_options.jit`; LLVM's
    -O1 on CPU compiles these large, backpropagated programs ~30 % faster than
    the default); used by `make_train_step` and for `Simulator.fit`'s scan."""
    return xla_options.jit(fn, **kwargs)


# --- params -------------------------------------------------------------------------


def split_params(params: Mapping, trainable) -> tuple[dict, dict]:
    """Split ``params`` into ``(trainable, frozen)`` dicts.

    Parameters
    ----------
    params : dict
        All parameters (`.CompiledNetwork.init_params`).
    trainable : iterable of str
        Keys to train (e.g. `trainable_keys`).

    Returns
    -------
    trainable, frozen : dict
    """
    keys = set(trainable)
    unknown = keys - set(params)
    if unknown:
        raise ValidationError(f"trainable keys not in params: {sorted(unknown)}", attr="trainable")
    return (
        {k: v for k, v in params.items() if k in keys},
        {k: v for k, v in params.items() if k not in keys},
    )


# --- running the model ----------------------------------------------------------------


def _n_steps(x: Mapping, y: Mapping | None = None) -> int:
    for arrays in (x, y or {}):
        for v in arrays.values():
            if v is not None and np.ndim(v) >= 2:
                return int(np.shape(v)[1])
    raise ValidationError(
        "cannot tell the number of steps: give inputs x or targets y of shape "
        "(minibatch, n_steps, d)",
        attr="x",
    )


def run_model(compiled, params, state, x, n_steps=None, mode="simulate", remat=False):
    """Run ``compiled`` from a (batched) ``state`` with inputs ``x``; pure.

    `.CompiledNetwork.run` with ``n_steps`` taken from ``x``; host sources
    replaced by ``x`` are not computed (no host callback for them inside a
    jitted training step).

    Parameters
    ----------
    compiled : nengojax.CompiledNetwork
        The compiled network.
    params : dict
        All parameters.
    state : dict
        The (batched) state to start from.
    x : dict
        Input-node key -> ``(minibatch, n_steps, size_out)``.
    n_steps : int, optional
        Number of steps (default: from ``x``).
    mode : str
        Neuron mode (``"simulate"``, ``"rate"`` or ``"spike_aware"``).
    remat : bool
        Checkpoint each step for the backward pass.

    Returns
    -------
    state, probes : dict
        As `.CompiledNetwork.run`.
    """
    n_steps = _n_steps(x) if n_steps is None else int(n_steps)
    new_state, probes = compiled.run(params, state, n_steps, x, mode=mode, remat=remat)
    return new_state, last_steps(compiled, probes, is_batched(state))


def last_steps(compiled, probes: Mapping, batched: bool) -> dict:
    """``probes`` with only the last step of those that keep no history
    (``keep_history=False``, see `nengojax.config.configure_settings`)."""
    axis = 1 if batched else 0
    return {
        k: jax.lax.slice_in_dim(v, v.shape[axis] - 1, v.shape[axis], axis=axis)
        if k in compiled.last_step_probes
        else v
        for k, v in probes.items()
    }


# --- losses ---------------------------------------------------------------------------


def probe_key(compiled, probe) -> str:
    """The key of ``probe`` (a Probe, its key or its label) in ``compiled.probes``."""
    if isinstance(probe, str) and probe not in compiled.probes:
        labelled = [k for k, p in compiled.probes.items() if p.label == probe]
        if len(labelled) == 1:
            return labelled[0]
        if len(labelled) > 1:
            raise ValidationError(
                f"{len(labelled)} probes have the label {probe!r}: use the Probe objects",
                attr="loss",
            )
    key = probe if isinstance(probe, str) else None
    if key is None:
        try:
            key = compiled.key(probe)
        except ValidationError:
            key = None
    if key is None or key not in compiled.probes:
        raise ValidationError(
            f"{probe} is not a Probe of this network (probes: {sorted(compiled.probes)})",
            attr="loss",
        )
    return key


def log_name(compiled, key: str) -> str:
    """The name of probe ``key`` in logs (``"<name>_loss"``, ``"<name>_accuracy"``):
    its label where it has one that no other probe has (as NengoDL names its
    outputs), else its key."""
    probe = compiled.probes.get(key)
    label = getattr(probe, "label", None)
    if isinstance(label, str) and label and label != "loss":
        if sum(p.label == label for p in compiled.probes.values()) == 1:
            return label
    return key


def fn_name(fn) -> str:
    """The name a loss or metric function is reported under."""
    name = getattr(fn, "__name__", None)
    return name if name else type(fn).__name__.lower()


def normalize_losses(compiled, loss) -> dict | Callable:
    """``loss`` as ``{probe_key: fn}``, or the single function applied to every
    probe with a target."""
    if loss is None:
        raise ValidationError("a loss function (or dict {probe: loss}) is required", attr="loss")
    if isinstance(loss, Mapping):
        out = {}
        for probe, fn in loss.items():
            fn = _losses.get(fn)
            if not callable(fn):
                raise ValidationError(
                    f"loss for {probe} must be callable (got {fn!r})", attr="loss"
                )
            out[probe_key(compiled, probe)] = fn
        if not out:
            raise ValidationError("loss dict is empty", attr="loss")
        return out
    loss = _losses.get(loss)
    if not callable(loss):
        raise ValidationError(
            f"loss must be a function or a dict {{probe: function}} (got {loss!r})", attr="loss"
        )
    return loss


def normalize_metrics(compiled, metrics) -> dict | list:
    """``metrics`` as ``{probe_key: [fn, ...]}``, or a list applied to every probe."""
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        out = {}
        for probe, fns in metrics.items():
            fns = [_losses.get(f) for f in (fns if isinstance(fns, (list, tuple)) else [fns])]
            for fn in fns:
                if not callable(fn):
                    raise ValidationError(f"metric {fn!r} is not callable", attr="metrics")
            out[probe_key(compiled, probe)] = fns
        return out
    fns = [_losses.get(f) for f in (metrics if isinstance(metrics, (list, tuple)) else [metrics])]
    for fn in fns:
        if not callable(fn):
            raise ValidationError(f"metric {fn!r} is not callable", attr="metrics")
    return fns


def metric_items(metric_spec, y: Mapping) -> list[tuple[str, list]]:
    """``(probe_key, [fn, ...])`` of the metrics to compute for targets ``y``."""
    if isinstance(metric_spec, Mapping):
        return [(k, fns) for k, fns in metric_spec.items() if k in y]
    return [(k, metric_spec) for k in y]


def sparse_labels(fn) -> bool:
    """Whether ``fn`` takes integer class labels ``(..., 1)`` as targets."""
    return bool(getattr(fn, "sparse_labels", False))


def needs_target(fn) -> bool:
    """Whether loss ``fn`` needs targets (see `nengojax.losses`)."""
    return bool(getattr(fn, "needs_target", True))


def ignores_nan(fn) -> bool:
    """Whether loss ``fn`` skips NaN targets (see `nengojax.losses`)."""
    return bool(getattr(fn, "ignores_nan", False))


def loss_terms(compiled, loss, y_keys) -> dict:
    """``{probe_key: fn}`` for the given targets (a single ``loss`` function
    applies to every probe in ``y_keys``)."""
    loss = normalize_losses(compiled, loss)
    if isinstance(loss, Mapping):
        return dict(loss)
    return {k: loss for k in y_keys}


def make_loss_fn(
    compiled,
    loss,
    loss_weights=None,
    mode: str = "rate",
    remat: bool = False,
    metrics=None,
) -> Callable:
    """Build ``loss_fn(trainable, frozen, state, x, y) -> (loss, aux)``.

    Parameters
    ----------
    compiled : nengojax.CompiledNetwork
        The compiled network.
    loss : callable or dict
        ``loss(y_true, y_pred) -> scalar`` (see `nengojax.losses`), applied to
        every probe in ``y``, or a dict ``{probe: loss}`` (probes or keys).
    loss_weights : dict, optional
        ``{probe: weight}``; the total loss is the weighted sum (default
        weight 1).
    mode : str
        Neuron mode of the forward pass: ``"rate"`` (spiking neurons as their
        rate counterparts), ``"spike_aware"`` or ``"simulate"``.
    remat : bool
        Checkpoint each step (bounded memory for long sequences).
    metrics : callable, list or dict, optional
        Extra ``fn(y_true, y_pred)`` reported in ``aux["metrics"]``.

    Returns
    -------
    callable
        ``loss_fn(trainable, frozen, state, x, y)`` where ``x`` maps input-node
        keys and ``y`` probe keys to ``(minibatch, n_steps, ...)`` arrays.
        ``aux`` holds ``"state"`` (the state after the run), ``"losses"``
        (``{probe_key: unweighted loss}``) and ``"metrics"``
        (``{probe_key: {name: value}}``).
    """
    normalize_losses(compiled, loss)  # validate now
    weights = {}
    for probe, w in (loss_weights or {}).items():
        weights[probe_key(compiled, probe)] = float(w)
    metric_spec = normalize_metrics(compiled, metrics)

    def loss_fn(trainable, frozen, state, x, y):
        params = {**frozen, **trainable}
        full = {k: v for k, v in y.items() if k not in compiled.last_step_probes}
        n_steps = _n_steps(x, full)
        new_state, probes = run_model(compiled, params, state, x, n_steps, mode, remat)
        total, per_probe, mets = compute_losses(compiled, loss, weights, metric_spec, y, probes)
        aux = {"state": new_state, "losses": per_probe, "metrics": mets}
        return total, aux

    return loss_fn


def compute_losses(compiled, loss, weights: Mapping, metric_spec, y: Mapping, probes: Mapping):
    """The weighted total loss, the loss per probe and the metrics of ``probes``.

    The one loss computation, used by `make_loss_fn` (fit) and by
    ``Simulator.evaluate``.

    Parameters
    ----------
    compiled : nengojax.CompiledNetwork
        The compiled network.
    loss : callable or dict
        As `make_loss_fn`.
    weights : dict
        ``{probe_key: weight}`` (default 1).
    metric_spec : dict or list
        From `normalize_metrics`.
    y : dict
        Probe key -> targets.
    probes : dict
        Probe key -> outputs.

    Returns
    -------
    total : jax.Array
        ``sum(weight * loss)`` over the loss terms.
    per_probe : dict
        ``{probe_key: loss}`` (unweighted).
    metrics : dict
        ``{probe_key: {name: value}}``.
    """
    total = jnp.zeros((), compiled.float_dtype)
    per_probe = {}
    for key, fn in loss_terms(compiled, loss, y.keys()).items():
        target = y.get(key)
        if target is None and needs_target(fn):
            raise ValidationError(f"no target in y for probe {key!r}, which has a loss", attr="y")
        value = jnp.asarray(fn(target, probes[key]), compiled.float_dtype)
        per_probe[key] = value
        total = total + weights.get(key, 1.0) * value
    mets = {}
    for key, fns in metric_items(metric_spec, y):
        mets[key] = {fn_name(fn): fn(y[key], probes[key]) for fn in fns}
    return total, per_probe, mets


def make_train_step(
    compiled,
    optimizer,
    loss,
    loss_weights=None,
    mode: str = "rate",
    remat: bool = False,
    metrics=None,
    jit: bool = True,
) -> Callable:
    """Build ``train_step(trainable, frozen, opt_state, state, x, y)``.

    One optax step on one minibatch: the gradient of `make_loss_fn`'s loss
    w.r.t. ``trainable``, ``optimizer.update`` and ``optax.apply_updates``.

    Parameters
    ----------
    compiled : nengojax.CompiledNetwork
        The compiled network.
    optimizer : optax.GradientTransformation
        The optimizer (``opt_state = optimizer.init(trainable)``).
    loss, loss_weights, mode, remat, metrics
        As `make_loss_fn`.
    jit : bool
        Return the function jitted (default).

    Returns
    -------
    callable
        ``train_step(...) -> (trainable, opt_state, loss, aux)``.
    """
    check_optimizer(optimizer)
    loss_fn = make_loss_fn(compiled, loss, loss_weights, mode, remat, metrics)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train_step(trainable, frozen, opt_state, state, x, y):
        (value, aux), grads = grad_fn(trainable, frozen, state, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        trainable = optax.apply_updates(trainable, updates)
        return trainable, opt_state, value, aux

    return jit_training(train_step) if jit else train_step


def make_train_epoch(
    compiled,
    optimizer,
    loss,
    loss_weights=None,
    mode: str = "rate",
    remat: bool = False,
    metrics=None,
    stateful: bool = False,
    jit: bool = True,
    **jit_kwargs,
) -> Callable:
    """Build ``train_batches(trainable, frozen, opt_state, state, xs, ys)``.

    `make_train_step` over a stack of minibatches, in one ``lax.scan``: ``xs``
    and ``ys`` have a leading axis of minibatches, ``(n_batches, minibatch,
    n_steps, ...)``. Every minibatch starts from ``state``, or with
    ``stateful`` from the state the previous one ended in. The result equals a
    Python loop over ``train_step`` (what ``Simulator.fit`` runs, a chunk of an
    epoch at a time).

    Returns
    -------
    callable
        ``(...) -> ((trainable, opt_state, state), (losses, per_probe, metrics))``
        with one loss value per minibatch.
    """
    step = make_train_step(
        compiled, optimizer, loss, loss_weights, mode=mode, remat=remat, metrics=metrics, jit=False
    )

    def train_batches(trainable, frozen, opt_state, state, xs, ys):
        def body(carry, xy):
            trainable, opt_state, state = carry
            trainable, opt_state, value, aux = step(trainable, frozen, opt_state, state, *xy)
            if stateful:
                state = aux["state"]
            return (trainable, opt_state, state), (value, aux["losses"], aux["metrics"])

        n_batches = jax.tree_util.tree_leaves(xs)[0].shape[0]
        return scan_or_call(body, (trainable, opt_state, state), (xs, ys), n_batches)

    return jit_training(train_batches, **jit_kwargs) if jit else train_batches


def holds_convolutions(compiled) -> bool:
    """Whether the network's step convolves: a nengo convolution transform, or a
    `JaxNode` whose function calls ``lax.conv_general_dilated``.

    XLA's CPU backend gives its fast (Eigen) kernels only to convolutions
    outside loops; in a loop, the gradient's convolutions run ~15-30x slower.
    So on CPU, ``Simulator.fit`` trains such networks one minibatch per call,
    and one call over one minibatch, or a one-step run, has no loop
    (`.scan_or_call`).
    """
    from nengo.builder.transforms import GeneralConvInc

    from .jax_node import SimJaxNode

    for op in compiled.model.operators:
        if isinstance(op, GeneralConvInc):
            return True
        if isinstance(op, SimJaxNode) and op.node.convolves(compiled.float_dtype):
            return True
    return False


def make_eval_fn(
    compiled, loss, loss_weights=None, mode: str = "simulate", metrics=None, jit: bool = True
) -> Callable:
    """Build ``eval_step(params, state, x, y) -> (loss, aux)`` (no gradients).

    Parameters are as `make_loss_fn`; ``mode`` defaults to ``"simulate"`` (the
    real spiking model) and ``params`` is the full parameter dict.
    """
    loss_fn = make_loss_fn(compiled, loss, loss_weights, mode, False, metrics)

    def eval_step(params, state, x, y):
        return loss_fn({}, params, state, x, y)

    return jit_training(eval_step) if jit else eval_step


def make_predict_fn(compiled, mode: str = "simulate", jit: bool = True) -> Callable:
    """Build ``predict_step(params, state, x, n_steps) -> (state, probes)``.

    ``n_steps`` is static (each value compiles once); ``probes`` maps probe keys
    to ``(minibatch, n_steps, *shape)`` arrays.
    """

    def predict_step(params, state, x, n_steps):
        return run_model(compiled, params, state, x, n_steps, mode)

    return jit_training(predict_step, static_argnums=3) if jit else predict_step


def check_optimizer(optimizer) -> None:
    """Raise a `nengo.exceptions.ValidationError` unless ``optimizer`` is an
    optax ``GradientTransformation``."""
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValidationError(
            "optimizer must be an optax GradientTransformation (e.g. "
            f"optax.adam(1e-3)), got {type(optimizer).__name__}",
            attr="optimizer",
        )


# --- minibatches ------------------------------------------------------------------------


def minibatch_indices(
    n_items: int, minibatch_size: int, epoch: int = 0, seed: int = 0, shuffle: bool = True
) -> list[np.ndarray]:
    """Item indices of each minibatch of one epoch (as `Simulator.fit` uses them).

    With ``shuffle`` the items are permuted by a generator seeded from
    ``(seed, epoch)``, so every epoch has its own reproducible order. Items
    past the last whole minibatch are dropped.

    Parameters
    ----------
    n_items : int
        Number of items in the data.
    minibatch_size : int
        Items per minibatch.
    epoch : int
        Epoch number (selects the permutation).
    seed : int
        Seed (`Simulator.fit` uses the simulator's seed).
    shuffle : bool
        Permute the items.

    Returns
    -------
    list of numpy.ndarray
        ``n_items // minibatch_size`` index arrays of length ``minibatch_size``.
    """
    n_batches = n_items // minibatch_size
    if shuffle:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)]))
        order = rng.permutation(n_items)
    else:
        order = np.arange(n_items)
    return [order[i * minibatch_size : (i + 1) * minibatch_size] for i in range(n_batches)]
