"""Saving and loading a Simulator's params (and state): ``.npz`` files.

The file holds one array per param (``param:<key>``), optionally the state's
leaves (``state:<i>``), and a JSON ``__meta__`` entry (format, param names,
shapes and dtypes, and with the state its number of leaves and ``n_steps``).

Loading trusts the arrays only after checking them against the model, not
against the file's own metadata: every array must have the model's shape, a
float dtype (state leaves that are integers, such as the step counter and the
RNG key, must have exactly the model's dtype) and finite values, also after
casting to the simulator's float dtype. Anything wrong raises
`nengo.exceptions.ValidationError` naming the file and the problem, and
nothing is loaded.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from nengo.exceptions import ValidationError

from .. import distributed
from ..runtime.state import state_step
from .data import check_open

FORMAT = "nengojax-params-1"


def fingerprint(params) -> dict:
    """Name -> [shape, dtype] of every param."""
    return {k: [list(np.shape(v)), str(np.dtype(v.dtype))] for k, v in params.items()}


def save_params(sim, path, include_state: bool = False) -> str:
    """Save all parameters (and optionally the state) to an ``.npz`` file.

    The file is written to a temporary file next to ``path`` and then renamed,
    so ``path`` always holds a complete file (the old one if saving fails).
    In a multi-process job (`nengojax.distributed`) every process calls
    this and process 0 alone writes the file (the others wait until it is
    written); the file loads in any process, sharded or not.

    Parameters
    ----------
    sim : Simulator
        The simulator whose parameters are saved.
    path : str or os.PathLike
        File name (``.npz`` is appended if missing).
    include_state : bool
        Also save the simulation state (restored by `load_params`).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    nengo.exceptions.ValidationError
        If the file cannot be written (missing or unwritable directory, ...),
        in every process; no temporary file is left behind. Also if
        ``include_state`` and the state's step counter differs from
        ``sim.n_steps`` (a file `load_params` would refuse).
    """
    check_open(sim)
    path = _fspath(sim, path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = {f"param:{k}": np.asarray(v) for k, v in distributed.to_host(sim.params).items()}
    meta = {"format": FORMAT, "params": fingerprint(sim.params), "state": bool(include_state)}
    if include_state:
        state = distributed.to_host(sim.state)
        steps = np.ravel(np.asarray(state_step(sim.compiled.program, state)))
        if np.any(steps != sim.n_steps):
            raise ValidationError(
                f"cannot save the state to {path!r}: its step counter "
                f"{sorted(set(steps.tolist()))} differs from sim.n_steps={sim.n_steps} "
                "(was sim.state assigned directly? use sim.set_state)",
                attr="include_state",
                obj=sim,
            )
        leaves, _ = jax.tree_util.tree_flatten(state)
        for i, leaf in enumerate(leaves):
            arrays[f"state:{i}"] = np.asarray(leaf)
        meta["n_state"] = len(leaves)
        meta["n_steps"] = int(sim.n_steps)
    error = None
    if distributed.is_main_process():
        tmp = path + ".tmp.npz"
        try:
            np.savez(tmp, __meta__=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        except OSError as e:
            error = e
            try:
                os.remove(tmp)
            except OSError:
                pass
    # every process learns whether process 0 wrote the file (and waits until it has)
    failed = bool(distributed.broadcast_from_main(np.asarray(error is not None, np.int32)))
    if failed:
        why = f": {error}" if error is not None else " (in process 0)"
        raise ValidationError(
            f"cannot save parameters to {path!r}{why}", attr="path", obj=sim
        ) from error
    return path


def load_params(sim, path, include_state: bool = False) -> None:
    """Load parameters saved by `save_params` (from the same model).

    Every array is checked against the model before anything is loaded: its
    shape, its dtype (floats only for params and float state leaves; a
    float64 file loads into a float32 simulator only if every value stays
    finite in float32; integer state leaves such as the RNG key must have the
    model's dtype) and its values (no NaN or inf).

    With ``include_state``, ``n_steps`` becomes the saved state's step
    counter, which must equal the ``n_steps`` in the file's metadata (a file
    where they differ is refused as inconsistent). Probe data keep nengo's
    rule that they belong to this simulator's run up to ``n_steps``: when the
    simulator holds probe data and the saved ``n_steps`` differs from its
    own, loading is refused (read ``sim.data`` first, then call
    ``sim.clear_probes()`` or ``sim.reset()`` and load again).

    Parameters
    ----------
    sim : Simulator
        The simulator to load into.
    path : str or os.PathLike
        File written by `save_params` (``.npz`` may be left out).
    include_state : bool
        Also restore the saved simulation state.

    Raises
    ------
    nengo.exceptions.ValidationError
        If the file is missing, unreadable, corrupt, not a nengojax parameter
        file, or does not fit this simulator (the message names the file and
        what is wrong). Nothing is loaded then.
    """
    check_open(sim)
    path = _fspath(sim, path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise ValidationError(f"cannot load parameters: no file {path!r}", attr="path", obj=sim)
    data = _read(sim, path)
    meta = _meta(sim, path, data)
    params = _params(sim, path, data, meta)
    state = _state(sim, path, data, meta) if include_state else None
    # all checks passed: commit (nothing below validates)
    if state is not None:
        state = sim.placement.state(state) if sim.minibatch_size else state
    sim.params = sim.placement.replicated(params)
    if state is not None:
        sim.set_state(state)


# --- checks (each raises a ValidationError naming the file) -----------------------------


def _fail(sim, path, what, attr="path"):
    raise ValidationError(f"{path!r}: {what}; nothing was loaded", attr=attr, obj=sim)


def _fspath(sim, path) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise ValidationError(
            f"path must be a str or os.PathLike (got {type(path).__name__})", attr="path", obj=sim
        ) from None


def _read(sim, path) -> dict:
    """Every entry of the ``.npz`` file at ``path``, read into memory."""
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:  # OSError, ValueError, EOFError, BadZipFile, ...
        _fail(sim, path, f"cannot read a parameter file from it ({type(e).__name__}: {e})")
    if not isinstance(f, np.lib.npyio.NpzFile):
        _fail(sim, path, "is a single .npy array, not a nengojax parameter file (.npz)")
    try:
        with f:
            return {k: f[k] for k in f.files}
    except Exception as e:  # truncated or corrupt entries, object arrays
        _fail(
            sim,
            path,
            "has an entry that cannot be read: corrupt, truncated or an object array "
            f"({type(e).__name__}: {e})",
        )


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _meta(sim, path, data) -> dict:
    """The file's ``__meta__``, with its types checked."""
    if "__meta__" not in data:
        _fail(sim, path, "is not a nengojax parameter file (it has no __meta__ entry)")
    raw = data["__meta__"]
    if raw.shape != () or raw.dtype.kind != "U":
        _fail(sim, path, "is not a nengojax parameter file (__meta__ is not a string)")
    try:
        meta = json.loads(str(raw))
    except ValueError as e:
        _fail(sim, path, f"is not a nengojax parameter file (__meta__ is not JSON: {e})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        _fail(
            sim,
            path,
            f"is not a nengojax parameter file (format {found!r}, expected {FORMAT!r})",
        )
    fps = meta.get("params")
    if not isinstance(fps, dict) or not all(
        isinstance(v, list)
        and len(v) == 2
        and isinstance(v[0], list)
        and all(_is_int(n) and n >= 0 for n in v[0])
        and isinstance(v[1], str)
        for v in fps.values()
    ):
        _fail(sim, path, "corrupt metadata: 'params' is not a dict of name -> [shape, dtype]")
    if not isinstance(meta.get("state"), bool):
        _fail(sim, path, f"corrupt metadata: 'state' is {meta.get('state')!r}, not a bool")
    if meta["state"]:
        for name in ("n_state", "n_steps"):
            if not (_is_int(meta.get(name)) and meta[name] >= 0):
                _fail(
                    sim,
                    path,
                    f"corrupt metadata: {name!r} is {meta.get(name)!r}, "
                    "not a non-negative integer",
                )
    return meta


def _float_array(sim, path, name, arr, shape, what):
    """``arr`` checked (shape, float dtype, finite) and cast to the float dtype."""
    shape = tuple(shape)
    if arr.shape != shape:
        _fail(sim, path, f"{what} {name!r} has shape {arr.shape}, but the model needs {shape}")
    if arr.dtype.kind != "f":
        _fail(sim, path, f"{what} {name!r} has dtype {arr.dtype}, but a float is needed")
    if not np.all(np.isfinite(arr)):
        _fail(sim, path, f"{what} {name!r} holds NaN or inf values")
    dtype = np.dtype(sim.compiled.float_dtype)
    with np.errstate(over="ignore"):
        cast = arr.astype(dtype)
    if not np.all(np.isfinite(cast)):
        _fail(
            sim,
            path,
            f"{what} {name!r} has values that overflow {dtype} (the simulator's dtype)",
        )
    return cast


def _params(sim, path, data, meta) -> dict:
    """The file's params, checked against the model."""
    mine, theirs = fingerprint(sim.params), meta["params"]
    if {k: v[0] for k, v in mine.items()} != {k: v[0] for k, v in theirs.items()}:
        only_file = sorted(set(theirs) - set(mine))
        only_model = sorted(set(mine) - set(theirs))
        shapes = sorted(k for k in set(mine) & set(theirs) if mine[k][0] != theirs[k][0])
        _fail(
            sim,
            path,
            f"holds parameters of a different model (only in the file: {only_file}; "
            f"only in this model: {only_model}; different shapes: {shapes})",
        )
    entries = {k[len("param:") :] for k in data if k.startswith("param:")}
    if entries != set(mine):
        _fail(
            sim,
            path,
            "is corrupt: its param entries do not match its metadata (missing: "
            f"{sorted(set(mine) - entries)}; unexpected: {sorted(entries - set(mine))})",
        )
    return {
        k: jnp.asarray(_float_array(sim, path, k, data[f"param:{k}"], mine[k][0], "param"))
        for k in sim.params
    }


def _state(sim, path, data, meta):
    """The file's state, checked against ``sim.state`` and its ``n_steps``."""
    if not meta["state"]:
        _fail(sim, path, "holds no state (saved with include_state=False)", "include_state")
    leaves, treedef = jax.tree_util.tree_flatten(sim.state)
    if meta["n_state"] != len(leaves):
        _fail(
            sim,
            path,
            f"its state has {meta['n_state']} arrays, this simulator's has {len(leaves)} "
            "(a different model?)",
            "include_state",
        )
    saved = []
    for i, leaf in enumerate(leaves):
        name = f"state:{i}"
        if name not in data:
            _fail(sim, path, f"is corrupt: entry {name!r} is missing", "include_state")
        arr, shape, dtype = data[name], tuple(np.shape(leaf)), np.dtype(leaf.dtype)
        if dtype.kind == "f":
            saved.append(_float_array(sim, path, name, arr, list(shape), "state array"))
            continue
        if arr.shape != shape:
            _fail(
                sim,
                path,
                f"state array {name!r} has shape {arr.shape}, but this simulator needs "
                f"{shape} (different minibatch_size?)",
                "include_state",
            )
        if arr.dtype != dtype:
            _fail(
                sim,
                path,
                f"state array {name!r} has dtype {arr.dtype}, but this simulator needs {dtype}",
                "include_state",
            )
        saved.append(arr)
    state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(s) for s in saved])
    steps = np.ravel(np.asarray(state_step(sim.compiled.program, state)))
    if np.any(steps != meta["n_steps"]):
        _fail(
            sim,
            path,
            f"is inconsistent: its metadata says n_steps={meta['n_steps']}, but the step "
            f"counter of its state is {sorted(set(steps.tolist()))}",
            "include_state",
        )
    axis = 1 if sim.minibatch_size else 0
    n_rows = sum(np.shape(sim.data[p])[axis] for p in sim.model.probes)
    if n_rows and meta["n_steps"] != sim.n_steps:
        _fail(
            sim,
            path,
            f"its state is at step {meta['n_steps']}, but this simulator holds probe data "
            f"of {sim.n_steps} steps, which would no longer match sim.trange(); read "
            "sim.data, then call sim.clear_probes() or sim.reset() before loading the state",
            "include_state",
        )
    return state
