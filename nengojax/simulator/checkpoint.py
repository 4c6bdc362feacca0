"""Saving and loading a Simulator's params (and state): ``.npz`` files.

The file holds one array per param (``param:<key>``), optionally the state's
leaves (``state:<i>``), and a JSON ``__meta__`` entry (format, param names,
shapes and dtypes). Loading checks the file against the model and loads
nothing unless it fits.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from nengo.exceptions import ValidationError

from .. import distributed
from .data import check_open

FORMAT = "nengojax-params-1"


def fingerprint(params) -> dict:
    """Name -> [shape, dtype] of every param."""
    return {k: [list(np.shape(v)), str(np.dtype(v.dtype))] for k, v in params.items()}


def save_params(sim, path, include_state: bool = False) -> str:
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
    check_open(sim)
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = {f"param:{k}": np.asarray(v) for k, v in distributed.to_host(sim.params).items()}
    meta = {"format": FORMAT, "params": fingerprint(sim.params), "state": bool(include_state)}
    if include_state:
        leaves, _ = jax.tree_util.tree_flatten(distributed.to_host(sim.state))
        for i, leaf in enumerate(leaves):
            arrays[f"state:{i}"] = np.asarray(leaf)
        meta["n_state"] = len(leaves)
        meta["n_steps"] = int(sim.n_steps)
    if distributed.is_main_process():
        tmp = path + ".tmp.npz"
        np.savez(tmp, __meta__=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    distributed.barrier("nengojax.save_params")
    return path


def load_params(sim, path, include_state: bool = False) -> None:
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
    check_open(sim)
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ValidationError(
            f"cannot read parameters from {path!r}: {e}", attr="path", obj=sim
        ) from e
    try:
        meta = json.loads(str(data.pop("__meta__")))
        assert meta["format"] == FORMAT
    except Exception:
        raise ValidationError(
            f"{path!r} is not a nengojax parameter file", attr="path", obj=sim
        ) from None
    mine, theirs = fingerprint(sim.params), meta["params"]
    if {k: v[0] for k, v in mine.items()} != {k: v[0] for k, v in theirs.items()}:
        only_file = sorted(set(theirs) - set(mine))
        only_model = sorted(set(mine) - set(theirs))
        shapes = sorted(k for k in set(mine) & set(theirs) if mine[k][0] != theirs[k][0])
        raise ValidationError(
            f"{path!r} holds parameters of a different model (only in the file: "
            f"{only_file}; only in this model: {only_model}; different shapes: "
            f"{shapes}); nothing was loaded",
            attr="path",
            obj=sim,
        )
    params = {k: jnp.asarray(data[f"param:{k}"], sim.compiled.float_dtype) for k in sim.params}
    state = None
    if include_state:
        if not meta.get("state"):
            raise ValidationError(
                f"{path!r} holds no state (saved with include_state=False)",
                attr="include_state",
                obj=sim,
            )
        leaves, treedef = jax.tree_util.tree_flatten(sim.state)
        saved = [data[f"state:{i}"] for i in range(meta["n_state"])]
        if len(saved) != len(leaves) or any(
            s.shape != np.shape(leaf) for s, leaf in zip(saved, leaves, strict=False)
        ):
            raise ValidationError(
                f"the state in {path!r} does not fit this simulator (different "
                "minibatch_size?); nothing was loaded",
                attr="include_state",
                obj=sim,
            )
        state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(s) for s in saved])
    sim.params = sim.placement.replicated(params)
    if state is not None:
        sim.set_state(sim.placement.state(state) if sim.minibatch_size else state)
