"""One validation of the data users give: ``data`` of ``run_steps``, ``x``/``y``
of ``fit``/``evaluate``/``predict``.

Every function raises a `nengo.exceptions.ValidationError` naming the object
and what was expected, before anything runs.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np
from nengo.exceptions import SimulatorClosed, ValidationError

from .. import training
from ..config import get_setting
from ..validation import integer


def check_open(sim) -> None:
    """Raise `SimulatorClosed` if ``sim`` is closed."""
    if sim.closed:
        raise SimulatorClosed("Simulator is closed")


def node_key(sim, node, what: str) -> str:
    """The key of input Node ``node`` (a Node or its key)."""
    compiled = sim.compiled
    key = node if isinstance(node, str) else None
    if key is None:
        try:
            key = compiled.key(node)
        except ValidationError:
            key = None
    if key is None or key not in compiled.input_nodes:
        raise ValidationError(
            f"{what}: {node} is not an input Node of this network (a Node with no "
            f"input; input Nodes: {sorted(compiled.input_nodes)})",
            attr=what,
            obj=sim,
        )
    return key


def as_dict(sim, data, what: str, single_key) -> dict:
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
        obj=sim,
    )


def float_array(sim, obj, value, what: str, dtype, allow_nan: bool = False) -> np.ndarray:
    """``value`` for ``obj`` as a ``dtype`` array: real numbers only, and finite
    after the cast (1e39 is finite in float64 but inf in float32)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ValidationError(
            f"{what} for {obj} is not an array of numbers ({e})", attr=what, obj=sim
        ) from None
    if arr.dtype.kind not in "biuf":
        raise ValidationError(
            f"{what} for {obj} must hold real numbers (got dtype {arr.dtype})",
            attr=what,
            obj=sim,
        )
    with np.errstate(over="ignore", invalid="ignore"):
        cast = arr.astype(dtype)
    if (np.isinf(cast) if allow_nan else ~np.isfinite(cast)).any():
        before = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
        why = (
            "NaN or infinite values"
            if before.any()
            else f"values too large for {np.dtype(dtype).name}"
        )
        raise ValidationError(f"{what} for {obj} contains {why}", attr=what, obj=sim)
    return cast


def _unique_keys(sim, pairs, what: str) -> dict:
    """``{key: value}`` from ``(key, obj, value)``; the same key twice (an object
    and its key) is refused, not silently overwritten."""
    out = {}
    for key, obj, value in pairs:
        if key in out:
            raise ValidationError(
                f"{what} gives {obj} twice (as the object and as its key {key!r})",
                attr=what,
                obj=sim,
            )
        out[key] = value
    return out


def run_data(sim, data, steps: int) -> dict:
    """``data`` of `run_steps`: ``{node key: array ([minibatch,] steps, d)}``."""
    k = sim.minibatch_size or 1
    inputs = {}
    given = as_dict(sim, data, "data", None)
    keyed = [(node_key(sim, node, "data"), node, v) for node, v in given.items()]
    for key, value in _unique_keys(sim, keyed, "data").items():
        obj = sim.compiled.input_nodes[key]
        value = float_array(sim, obj, value, "data", sim.compiled.float_dtype)
        want = (k, steps, obj.size_out)
        if value.shape != want:
            raise ValidationError(
                f"data for {obj}: expected shape {want} (minibatch_size, n_steps, "
                f"size_out), got {value.shape}",
                attr="data",
                obj=sim,
            )
        inputs[key] = value if sim.minibatch_size else value[0]
    return inputs


def prepare_x(sim, x) -> dict:
    """Validated inputs ``{key: float array (n_items, n_steps, size_out)}``."""
    nodes = sim.compiled.input_nodes
    single = next(iter(nodes)) if len(nodes) == 1 else None
    out = {}
    given = as_dict(sim, x, "x", single)
    keyed = [(node_key(sim, node, "x"), node, v) for node, v in given.items()]
    for key, value in _unique_keys(sim, keyed, "x").items():
        obj = nodes[key]
        value = float_array(sim, obj, value, "x", sim.compiled.float_dtype)
        if value.ndim != 3 or value.shape[2] != obj.size_out:
            raise ValidationError(
                f"x for {obj}: expected shape (n_items, n_steps, {obj.size_out}), got "
                f"{value.shape}",
                attr="x",
                obj=sim,
            )
        out[key] = value
    return out


def prepare_y(sim, y, loss=None) -> dict:
    """Validated targets ``{probe_key: float array (n_items, n_steps, *shape)}``.

    ``loss`` is the compiled loss (one function or ``{probe_key: fn}``): a bare
    array ``y`` goes to its only probe (or the network's only probe), and a loss
    taking class labels (``sparse_labels``) takes targets ``(n_items, n_steps, 1)``.
    """
    compiled = sim.compiled
    by_probe = loss if isinstance(loss, Mapping) else None
    single = None
    if by_probe is not None and len(by_probe) == 1:
        single = next(iter(by_probe))
    elif by_probe is None and len(compiled.probes) == 1:
        single = next(iter(compiled.probes))
    out = {}
    given = as_dict(sim, y, "y", single)
    keyed = [(training.probe_key(compiled, p), p, v) for p, v in given.items()]
    for key, value in _unique_keys(sim, keyed, "y").items():
        obj = compiled.probes[key]
        if obj.sample_every is not None and obj.sample_every != sim.dt:
            raise ValidationError(
                f"{obj} has sample_every={obj.sample_every}: probes used for training "
                "or evaluation must record every step",
                attr="y",
                obj=sim,
            )
        shape = tuple(compiled.model.sig[obj]["in"].shape)
        # NaN targets are checked against the loss (check_targets); inf never passes
        value = float_array(sim, obj, value, "y", compiled.float_dtype, allow_nan=True)
        fn = by_probe.get(key) if by_probe is not None else loss
        if training.sparse_labels(fn) and value.ndim == 3 and value.shape[2] == 1:
            shape = (1,)  # class labels
        if value.ndim != 2 + len(shape) or value.shape[2:] != shape:
            raise ValidationError(
                f"y for {obj}: expected shape (n_items, n_steps, "
                f"{', '.join(map(str, shape))}), got {value.shape}",
                attr="y",
                obj=sim,
            )
        out[key] = value
    return out


def check_sizes(sim, x: dict, y: dict, n_steps=None) -> tuple[int, int]:
    """The common ``(n_items, n_steps)`` of ``x`` and ``y``.

    Targets of probes that keep only their last step (``keep_history=False``)
    have one step; they count for the items, and the steps come from ``x``.
    """
    last_only = sim.compiled.last_step_probes
    item_sizes, step_sizes = {}, {}
    for what, data in (("x", x), ("y", y)):
        for key, value in data.items():
            name = f"{what}[{key!r}]"
            item_sizes[name] = value.shape[0]
            if what == "y" and key in last_only:
                if value.shape[1] != 1:
                    raise ValidationError(
                        f"y for probe {key!r}: it keeps only its last step "
                        "(keep_history=False), so its targets have one step: shape "
                        f"(n_items, 1, ...), got {value.shape}",
                        attr="y",
                        obj=sim,
                    )
            else:
                step_sizes[name] = value.shape[1]
    if item_sizes and not step_sizes:
        raise ValidationError(
            "the targets keep only their last step (keep_history=False): give the "
            "inputs x, whose length says how many steps to run",
            attr="x",
            obj=sim,
        )
    for name, sizes, axis in (("items", item_sizes, 0), ("steps", step_sizes, 1)):
        if len(set(sizes.values())) > 1:
            raise ValidationError(
                f"x and y must have the same number of {name} (axis {axis}); got {sizes}",
                attr="x",
                obj=sim,
            )
    if n_steps is not None and (
        isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1
    ):
        raise ValidationError(
            f"n_steps must be a positive integer (got {n_steps!r})", attr="n_steps", obj=sim
        )
    if not item_sizes:
        if n_steps is None:
            raise ValidationError("no data: give x or y (or n_steps)", attr="x", obj=sim)
        return sim.minibatch_size or 1, int(n_steps)
    n_items, data_steps = next(iter(item_sizes.values())), next(iter(step_sizes.values()))
    if n_steps is not None and int(n_steps) != data_steps:
        raise ValidationError(
            f"n_steps={n_steps} but the data have {data_steps} steps", attr="n_steps", obj=sim
        )
    if data_steps < 1 or n_items < 1:
        raise ValidationError(
            f"empty data (items {item_sizes}, steps {step_sizes})", attr="x", obj=sim
        )
    return n_items, data_steps


def resolve_stateful(sim, stateful, default: bool) -> bool:
    """``stateful`` of a run, predict, evaluate or fit: a bool, ``None`` meaning
    ``default`` unless the network is configured stateless
    (``configure_settings(stateful=False)``), which also refuses ``True``."""
    setting = get_setting(sim.compiled.program.toplevel, "stateful", True)
    if stateful is None:
        return default and setting
    if not isinstance(stateful, (bool, np.bool_)):
        raise ValidationError(
            f"stateful must be True, False or None (got {stateful!r})", attr="stateful", obj=sim
        )
    if stateful and not setting:
        raise ValidationError(
            "stateful=True, but the network is configured stateless "
            "(configure_settings(stateful=False))",
            attr="stateful",
            obj=sim,
        )
    return bool(stateful)


def keep_last_steps(chunks: dict, kept: dict, last_only, keys: dict, tax: int) -> None:
    """Of the probe data a run added (``chunks[probe][kept[probe]:]``), keep only
    the last step for probes whose key (``keys[probe]``) is in ``last_only``."""
    for probe, parts in chunks.items():
        if keys[probe] not in last_only:
            continue
        new = [c for c in parts[kept[probe] :] if c.shape[tax] > 0]
        del parts[kept[probe] :]
        if new:
            parts.append(new[-1][:, -1:] if tax == 1 else new[-1][-1:])


def prepare_xy(sim, x, y, loss, steps_per_epoch, epochs):
    """``fit``'s data: ``(x, y, items_per_epoch)``.

    ``x`` and ``y`` are arrays (or dicts of them; ``items_per_epoch`` None), or
    ``x`` is an iterable of ``(x, y)`` minibatches of ``minibatch_size`` items
    each, as Keras and NengoDL take, trained in order (no shuffling):

    - a list or tuple of them: every epoch trains on them (the first
      ``steps_per_epoch`` when given);
    - an iterator or generator: every epoch takes the next ``steps_per_epoch``
      of them (required), as Keras does; all ``steps_per_epoch x epochs`` are
      drawn before training starts (an epoch is one compiled scan).
    """
    batches = _batch_iterable(x, y)
    if batches is None:
        return prepare_x(sim, x), prepare_y(sim, y, loss), None
    mb = sim.minibatch_size or 1
    if steps_per_epoch is not None:
        steps_per_epoch = integer(steps_per_epoch, "steps_per_epoch", 1, obj=sim)
    if isinstance(batches, Iterator):
        if steps_per_epoch is None:
            raise ValidationError(
                "fit on a generator of minibatches needs steps_per_epoch (the minibatches "
                "of an epoch)",
                attr="steps_per_epoch",
                obj=sim,
            )
        want = steps_per_epoch * integer(epochs, "epochs", 0, obj=sim)
        items = list(itertools.islice(batches, want))
        if len(items) < want:
            raise ValidationError(
                f"the generator gave {len(items)} minibatches; {steps_per_epoch} per epoch "
                f"x {epochs} epochs = {want} are needed",
                attr="x",
                obj=sim,
            )
    else:
        items = list(batches)[:steps_per_epoch]
    xs, ys = [], []
    for i, (xb, yb) in enumerate(items):
        xs.append(prepare_x(sim, xb))
        ys.append(prepare_y(sim, yb, loss))
        sizes = {v.shape[0] for v in (*xs[-1].values(), *ys[-1].values())}
        if sizes != {mb} or xs[-1].keys() != xs[0].keys() or ys[-1].keys() != ys[0].keys():
            raise ValidationError(
                f"minibatch {i}: every minibatch needs minibatch_size={mb} items and the "
                f"same inputs and targets as the first (got {sorted(sizes)} items, inputs "
                f"{sorted(xs[-1])}, targets {sorted(ys[-1])})",
                attr="x",
                obj=sim,
            )
    if not items:
        raise ValidationError("fit got an empty iterable of minibatches", attr="x", obj=sim)

    def joined(parts):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    fresh = isinstance(batches, Iterator)  # new minibatches every epoch
    plan = EpochPlan(mb * (steps_per_epoch if fresh else len(items)), fresh)
    return joined(xs), joined(ys), plan


def _batch_iterable(x, y):
    """``x`` when it is an iterable of ``(x, y)`` minibatches (and ``y`` None)."""
    if y is not None or x is None or isinstance(x, (Mapping, np.ndarray, str, bytes)):
        return None
    if isinstance(x, Iterator):
        return x
    if isinstance(x, (list, tuple)) and x and all(isinstance(b, tuple) and len(b) == 2 for b in x):
        return x
    return None


class EpochPlan(NamedTuple):
    """Minibatches given as an iterable: ``items`` per epoch, and whether each
    epoch has its own (``fresh``, from a generator) or all share them."""

    items: int
    fresh: bool


def epoch_order(n_items, mb, epoch, seed, shuffle, plan) -> np.ndarray:
    """The item order of an epoch: shuffled minibatches of arrays, or for
    minibatches given as an iterable, in order (a generator's: this epoch's)."""
    if plan is None:
        return np.concatenate(training.minibatch_indices(n_items, mb, epoch, seed, shuffle))
    return np.arange(plan.items) + (epoch * plan.items if plan.fresh else 0)


def split_validation(sim, x: dict, y: dict, split, validation_data, plan=None):
    """Keras' ``validation_split``: the last ``split`` of the items (before any
    shuffling) become the validation data. Returns ``(x, y, val)``, ``val`` None
    when ``split`` is 0. Not for minibatches given as an iterable (``plan``)."""
    ok = isinstance(split, (float, int, np.floating)) and not isinstance(split, bool)
    if not ok or not 0 <= split < 1:
        raise ValidationError(
            f"validation_split must be a number in [0, 1) (got {split!r})",
            attr="validation_split",
            obj=sim,
        )
    if split == 0:
        return x, y, None
    if plan is not None:
        raise ValidationError(
            "validation_split needs arrays, not minibatches from an iterable (as in "
            "Keras): give validation_data",
            attr="validation_split",
            obj=sim,
        )
    if validation_data is not None:
        raise ValidationError(
            "give validation_data or validation_split, not both",
            attr="validation_split",
            obj=sim,
        )
    n_items = next(iter({**x, **y}.values())).shape[0]
    n_val = int(n_items * split)
    if n_val < 1 or n_val == n_items:
        raise ValidationError(
            f"validation_split={split} of {n_items} items leaves "
            f"{n_items - n_val} to train on and {n_val} to validate with: both need some",
            attr="validation_split",
            obj=sim,
        )
    cut = n_items - n_val

    def part(d, sl):
        return {k: v[sl] for k, v in d.items()}

    return (
        part(x, slice(None, cut)),
        part(y, slice(None, cut)),
        (
            part(x, slice(cut, None)),
            part(y, slice(cut, None)),
        ),
    )


def check_epochs(sim, epochs, n_items: int, batch_size=None) -> int:
    """``epochs`` as an int; the items must fill at least one minibatch (a
    partial last one is dropped, with a warning); ``batch_size`` (Keras', and
    NengoDL's) can only be the Simulator's ``minibatch_size``."""
    epochs = integer(epochs, "epochs", 0, obj=sim)
    mb = sim.minibatch_size or 1
    if batch_size is not None and batch_size != mb:
        raise ValidationError(
            f"batch_size={batch_size!r}: the minibatch size is fixed when the Simulator "
            f"is built (minibatch_size={mb}); build it with minibatch_size={batch_size!r}",
            attr="batch_size",
            obj=sim,
        )
    if n_items < mb:
        raise ValidationError(
            f"{n_items} items are fewer than minibatch_size={mb}: nothing to train on",
            attr="x",
            obj=sim,
        )
    if n_items % mb:
        warnings.warn(
            f"{n_items} items is not a multiple of minibatch_size={mb}: the last "
            f"{n_items % mb} item(s) of each epoch's order are dropped",
            UserWarning,
            stacklevel=4,
        )
    return epochs


def check_targets(sim, terms: dict, y: dict) -> None:
    """Every loss has a target, every target a loss; NaN only for losses that
    ignore it (see `nengojax.losses`)."""
    for key, fn in terms.items():
        if key not in y and training.needs_target(fn):
            raise ValidationError(
                f"no target in y for probe {key!r}, which has a loss", attr="y", obj=sim
            )
    for key, value in y.items():
        if key not in terms:
            raise ValidationError(
                f"y has targets for probe {key!r}, but the compiled loss has no term "
                f"for it (loss probes: {sorted(terms)})",
                attr="y",
                obj=sim,
            )
        if np.isnan(value).any() and not training.ignores_nan(terms[key]):
            raise ValidationError(
                f"targets for probe {key!r} contain NaN; use nengojax.losses.nan_mse "
                "to ignore NaN targets",
                attr="y",
                obj=sim,
            )
        if np.isinf(value).any():
            raise ValidationError(
                f"targets for probe {key!r} contain infinite values", attr="y", obj=sim
            )


def sample_rows(probes, dt: float, start: int, n: int, size: int) -> dict:
    """For each probe with ``sample_every`` above ``dt``: its number of rows in
    a chunk of ``size`` steps, the row each step writes, and which of the
    chunk's ``n`` run steps it keeps.

    nengo keeps step ``s`` (counted from 1) when ``s % period < 1``; the test
    runs here in float64, as nengo runs it. Steps not kept (and the padded
    steps past ``n``) write a spare last row, so the device holds about
    ``size / period`` rows of the probe instead of ``size``.

    Returns
    -------
    dict
        Probe -> ``(n_rows, slot, kept)``: rows of its chunk output (the
        spare included), the row of each step ``(size,)`` and the indices of
        the kept steps among the first ``n``.
    """
    out = {}
    step_ids = np.arange(start + 1, start + n + 1)
    for probe in probes:
        if probe.sample_every is None or probe.sample_every <= dt:
            continue
        period = probe.sample_every / dt
        kept = np.flatnonzero(step_ids % period < 1)
        # any `size` consecutive steps keep at most size // period + 2 of them
        spare = min(size, int(size // period) + 2)
        slot = np.full(size, spare, np.int32)
        slot[kept] = np.arange(len(kept), dtype=np.int32)
        out[probe] = (spare + 1, slot, kept)
    return out


def pad_time(arr, size: int, axis: int):
    """``arr`` padded with zeros to ``size`` along its time ``axis``."""
    pad = size - arr.shape[axis]
    if pad == 0:
        return arr
    widths = [(0, 0)] * arr.ndim
    widths[axis] = (0, pad)
    return np.pad(arr, widths)
