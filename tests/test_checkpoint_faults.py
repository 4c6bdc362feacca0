"""Faults in checkpoints: bad files and arrays for `load_params`, failed saves,
and `ModelCheckpoint` / `EarlyStopping` misconfigurations.

Every fault raises a `ValidationError` naming the file (or object) and what is
wrong, before anything changes.
"""

from __future__ import annotations

import json
import os
import zipfile

import jax
import nengo
import numpy as np
import optax
import pytest
from nengo.exceptions import ValidationError

import nengojax
from nengojax import losses
from nengojax.callbacks import EarlyStopping, ModelCheckpoint

ENC = "ensemble_0.encoders"


def _net():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1))
        ens = nengo.Ensemble(10, 1)
        out = nengo.Node(size_in=1)
        nengo.Connection(inp, ens, synapse=None)
        nengo.Connection(ens, out, synapse=None)
        p = nengo.Probe(out)
    return net, inp, p


@pytest.fixture(scope="module")
def net():
    return _net()


def _sim(net, **kwargs):
    return nengojax.Simulator(net[0], progress_bar=False, **kwargs)


def _host(params):
    return {k: np.array(v) for k, v in jax.device_get(params).items()}


def _unchanged(sim, before):
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(sim.params[k]), v, err_msg=k)


def _read(path):
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    return data, json.loads(str(data.pop("__meta__")))


def _write(path, data, meta):
    np.savez(path, __meta__=np.array(json.dumps(meta)), **data)
    return str(path)


@pytest.fixture(scope="module")
def saved(net, tmp_path_factory):
    """A good file with params and state (after 5 steps)."""
    d = tmp_path_factory.mktemp("saved")
    with _sim(net) as sim:
        sim.run_steps(5)
        path = sim.save_params(d / "good", include_state=True)
    return path


def _bad_arrays():
    enc = lambda d: d[f"param:{ENC}"]  # noqa: E731
    return {
        "transposed": (lambda d: enc(d).T, "shape"),
        "wrong size": (lambda d: np.zeros(7, np.float32), "shape"),
        "complex": (lambda d: enc(d).astype(np.complex64), "dtype complex64"),
        "int": (lambda d: enc(d).astype(np.int32), "dtype int32"),
        "bool": (lambda d: enc(d) > 0, "dtype bool"),
        "nan": (lambda d: np.where(enc(d) > 0, np.nan, enc(d)), "NaN or inf"),
        "inf": (lambda d: np.full_like(enc(d), np.inf), "NaN or inf"),
        "overflows float32": (lambda d: np.full(enc(d).shape, 1e300), "overflow float32"),
    }


@pytest.mark.parametrize("case", list(_bad_arrays()))
def test_load_refuses_bad_param_arrays(net, saved, tmp_path, case):
    make, match = _bad_arrays()[case]
    data, meta = _read(saved)
    data[f"param:{ENC}"] = make(data)
    # another param that is fine but different: must not be loaded either
    bias = next(k for k in meta["params"] if k.endswith("bias"))
    data[f"param:{bias}"] = data[f"param:{bias}"] + 1
    path = _write(tmp_path / "bad.npz", data, meta)
    with _sim(net) as sim:
        before = _host(sim.params)
        with pytest.raises(ValidationError, match=match) as e:
            sim.load_params(path)
        assert "bad.npz" in str(e.value) and ENC in str(e.value)
        _unchanged(sim, before)


def test_load_float64_file_checked_then_cast(net, saved, tmp_path):
    data, meta = _read(saved)
    data = {k: v.astype(np.float64) if k.startswith("param:") else v for k, v in data.items()}
    path = _write(tmp_path / "f64.npz", data, meta)
    with _sim(net) as sim:
        sim.load_params(path)
        assert sim.params[ENC].dtype == np.float32
        np.testing.assert_array_equal(sim.params[ENC], data[f"param:{ENC}"].astype(np.float32))


def _leaf_index(sim, what):
    """Index in the saved state of the RNG key leaf, or of the step counter."""
    leaves, _ = jax.tree_util.tree_flatten(sim.state)
    if what == "rng":
        return next(i for i, x in enumerate(leaves) if x is sim.state["rng"])
    key = sim.compiled.program.state_base(sim.model.step)
    return next(i for i, x in enumerate(leaves) if x is sim.state["signals"][key])


def test_load_state_round_trip_and_n_steps(net, saved):
    with _sim(net) as sim:
        sim.load_params(saved, include_state=True)
        assert sim.n_steps == 5 and len(sim.trange()) == 5
        sim.run_steps(2)
        assert sim.data[net[2]].shape[0] == 2  # rows of this simulator's run only


def test_load_state_refuses_bad_state(net, saved, tmp_path):
    data, meta = _read(saved)
    with _sim(net) as sim:
        rng, step = _leaf_index(sim, "rng"), _leaf_index(sim, "step")
        before = _host(sim.params)
        state_before = jax.device_get(sim.state)
        cases = {
            "float rng key": ({f"state:{rng}": data[f"state:{rng}"].astype(np.float32)}, {}),
            "wrong shape": ({f"state:{rng}": np.zeros(3, np.uint32)}, {}),
            "missing leaf": ({f"state:{rng}": None}, {}),
            "n_steps mismatch": ({}, {"n_steps": 4}),
            "n_steps negative": ({}, {"n_steps": -1}),
            "n_steps float": ({}, {"n_steps": 5.0}),
            "counter mismatch": ({f"state:{step}": data[f"state:{step}"] + 1}, {}),
        }
        matches = {
            "float rng key": "dtype float32, but this simulator needs uint32",
            "wrong shape": "shape",
            "missing leaf": "missing",
            "n_steps mismatch": "inconsistent",
            "n_steps negative": "n_steps",
            "n_steps float": "n_steps",
            "counter mismatch": "inconsistent",
        }
        for case, (arrays, metas) in cases.items():
            d = {**data, **arrays}
            d = {k: v for k, v in d.items() if v is not None}
            path = _write(tmp_path / "bad_state.npz", d, {**meta, **metas})
            with pytest.raises(ValidationError, match=matches[case]) as e:
                sim.load_params(path, include_state=True)
            assert "bad_state.npz" in str(e.value), case
            _unchanged(sim, before)
            assert sim.n_steps == 0
            for a, b in zip(
                jax.tree_util.tree_leaves(sim.state),
                jax.tree_util.tree_leaves(state_before),
                strict=True,
            ):
                np.testing.assert_array_equal(a, b)


def test_load_state_with_probe_data_refused_until_cleared(net, saved):
    with _sim(net) as sim:
        sim.run_steps(3)
        before = _host(sim.params)
        with pytest.raises(ValidationError, match="probe data of 3 steps") as e:
            sim.load_params(saved, include_state=True)
        assert "good.npz" in str(e.value)
        _unchanged(sim, before)
        assert sim.n_steps == 3 and sim.data[net[2]].shape[0] == 3
        sim.load_params(saved)  # params only: n_steps and probe data stay
        assert sim.n_steps == 3
        sim.clear_probes()
        sim.load_params(saved, include_state=True)
        assert sim.n_steps == 5 and sim.data[net[2]].shape[0] == 0
    with _sim(net) as sim:
        sim.run_steps(5)  # same n_steps: the probe rows still match trange()
        sim.load_params(saved, include_state=True)
        assert sim.n_steps == 5 and sim.data[net[2]].shape[0] == 5


def _corrupt_files(saved, d):
    data, meta = _read(saved)
    raw = open(saved, "rb").read()
    files = {}
    files["truncated"] = d / "truncated.npz"
    files["truncated"].write_bytes(raw[: len(raw) // 2])
    files["bit flip"] = d / "flip.npz"  # caught by the zip entry's CRC
    flipped = bytearray(raw)
    flipped[raw.find(data[f"param:{ENC}"].tobytes()) + 3] ^= 1
    files["bit flip"].write_bytes(bytes(flipped))
    files["npy"] = d / "one.npy"
    np.save(files["npy"], np.zeros(3))
    files["no meta"] = d / "nometa.npz"
    np.savez(files["no meta"], **data)
    files["empty zip"] = d / "empty.npz"
    zipfile.ZipFile(files["empty zip"], "w").close()
    files["missing param"] = d / "noparam.npz"
    _write(files["missing param"], {k: v for k, v in data.items() if ENC not in k}, meta)
    for name, change in {
        "params not a dict": {"params": [1, 2]},
        "state not a bool": {"state": "yes"},
        "n_state not an int": {"n_state": "6"},
        "wrong format": {"format": "other-1"},
    }.items():
        files[name] = d / (name.replace(" ", "_") + ".npz")
        _write(files[name], data, {**meta, **change})
    files["meta not json"] = d / "notjson.npz"
    np.savez(files["meta not json"], __meta__=np.array("{oops"), **data)
    files["meta not a string"] = d / "metaint.npz"
    np.savez(files["meta not a string"], __meta__=np.zeros(2), **data)
    files["object array"] = d / "object.npz"
    np.savez(files["object array"], __meta__=np.array(json.dumps(meta)), x=np.array([{}, 1]))
    files["missing"] = d / "missing.npz"
    files["directory"] = d / "adir.npz"
    os.mkdir(files["directory"])
    return files


CORRUPT = {
    "truncated": "corrupt|cannot read",
    "bit flip": "Bad CRC",
    "npy": "single .npy array",
    "no meta": "no __meta__",
    "empty zip": "no __meta__",
    "missing param": "missing",
    "params not a dict": "'params'",
    "state not a bool": "'state'",
    "n_state not an int": "'n_state'",
    "wrong format": "format 'other-1'",
    "meta not json": "not JSON",
    "meta not a string": "not a string",
    "object array": "object array",
    "missing": "no file",
    "directory": "cannot read",
}


def test_load_refuses_corrupt_files(net, saved, tmp_path):
    files = _corrupt_files(saved, tmp_path)
    assert set(files) == set(CORRUPT)
    with _sim(net) as sim:
        before = _host(sim.params)
        for case, path in files.items():
            with pytest.raises(ValidationError, match=CORRUPT[case]) as e:
                sim.load_params(path, include_state=True)
            assert os.path.basename(path) in str(e.value), case
            _unchanged(sim, before)
        with pytest.raises(ValidationError, match="str or os.PathLike"):
            sim.load_params(3)


def test_failed_save_raises_and_leaves_no_temp_file(net, tmp_path):
    with _sim(net) as sim:
        target = tmp_path / "missing_dir" / "p.npz"
        with pytest.raises(ValidationError, match="missing_dir"):
            sim.save_params(target)
        (tmp_path / "adir.npz").mkdir()  # os.replace onto a directory fails
        with pytest.raises(ValidationError, match="adir.npz"):
            sim.save_params(tmp_path / "adir")
        assert sorted(os.listdir(tmp_path)) == ["adir.npz"]
        assert os.listdir(tmp_path / "adir.npz") == []


# --- callbacks -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(net):
    """A compiled minibatch simulator and its training data."""
    x = np.linspace(-1, 1, 8).reshape(8, 1, 1)
    with nengojax.Simulator(net[0], minibatch_size=4, progress_bar=False) as sim:
        sim.compile(optax.sgd(0.01), {net[2]: losses.mse})
        yield sim, {net[1]: x}, {net[2]: x**2}


def test_model_checkpoint_creates_directory(trained, tmp_path):
    sim, x, y = trained
    ckpt = ModelCheckpoint(tmp_path / "a" / "b" / "ckpt-{epoch}-{loss:.3f}.npz")
    sim.fit(x, y, epochs=2, verbose=0, callbacks=[ckpt])
    assert len(ckpt.saved) == 2 and all(os.path.exists(p) for p in ckpt.saved)
    sim.load_params(ckpt.saved[-1])


def test_model_checkpoint_unusable_directory_before_training(trained, tmp_path):
    sim, x, y = trained
    (tmp_path / "file").write_text("")
    ckpt = ModelCheckpoint(tmp_path / "file" / "ckpt.npz")
    before = _host(sim.params)
    with pytest.raises(ValidationError, match="cannot create the directory") as e:
        sim.fit(x, y, epochs=1, verbose=0, callbacks=[ckpt])
    assert "file" in str(e.value)
    _unchanged(sim, before)  # refused before the first epoch


def test_model_checkpoint_missing_log_key(trained, tmp_path):
    sim, x, y = trained
    ckpt = ModelCheckpoint(tmp_path / "ckpt-{epoch}-{val_loss:.3f}.npz")
    with pytest.raises(ValidationError, match=r"\['val_loss'\].*\['loss'\]"):
        sim.fit(x, y, epochs=2, verbose=0, callbacks=[ckpt])  # refused before training
    assert ckpt.saved == []
    ckpt.set_sim(sim)  # used outside fit, the logs are checked at each epoch
    with pytest.raises(ValidationError, match=r"\['val_loss'\].*epoch 1.*\['loss'\]"):
        ckpt.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ValidationError, match="val_loss"):
        ckpt.check_log_keys(["loss"])
    ckpt.check_log_keys(["loss", "val_loss"])
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    with pytest.raises(ValidationError, match="monitor 'val_loss'"):
        sim.fit(x, y, epochs=2, verbose=0, callbacks=[best])
    best.set_sim(sim)
    with pytest.raises(ValidationError, match="monitor 'val_loss'.*epoch 1"):
        best.on_epoch_end(0, {"loss": 1.0})
    stop = EarlyStopping(monitor="val_loss")
    with pytest.raises(ValidationError, match="EarlyStopping monitor 'val_loss'"):
        sim.fit(x, y, epochs=2, verbose=0, callbacks=[stop])
    stop.set_sim(sim)
    with pytest.raises(ValidationError, match="EarlyStopping monitor 'val_loss'.*epoch 1"):
        stop.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ValidationError, match="val_loss"):
        stop.check_log_keys(["loss"])


@pytest.mark.parametrize(
    "path, match",
    [
        ("ckpt-{}.npz", "only named fields"),
        ("ckpt-{0}.npz", "only named fields"),
        ("ckpt-{epoch.npz", "not a valid format string"),
        ("ckpt-{loss:d}.npz", "does not format"),
        (3, "str or os.PathLike"),
    ],
)
def test_model_checkpoint_bad_path(path, match):
    with pytest.raises(ValidationError, match=match):
        ModelCheckpoint(path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patience": -1}, "patience"),
        ({"patience": 1.5}, "patience"),
        ({"min_delta": np.nan}, "min_delta"),
        ({"min_delta": "x"}, "min_delta"),
        ({"monitor": None}, "monitor"),
        ({"mode": "up"}, "mode"),
    ],
)
def test_early_stopping_bad_arguments(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        EarlyStopping(**kwargs)


def test_save_refuses_state_out_of_step_with_n_steps(net, tmp_path):
    with _sim(net) as sim:
        sim.run_steps(2)
        key = sim.compiled.program.state_base(sim.model.step)
        sim.state = {
            **sim.state,
            "signals": {**sim.state["signals"], key: np.array([7], np.int32)},
        }
        with pytest.raises(ValidationError, match=r"step counter \[7\] differs .*n_steps=2"):
            sim.save_params(tmp_path / "p", include_state=True)
        assert os.listdir(tmp_path) == []
        sim.save_params(tmp_path / "p")  # params alone are fine
