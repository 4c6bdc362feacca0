"""`nengojax.callbacks.MetricsLogger`: CSV/JSON logs always, TensorBoard events when asked."""

from __future__ import annotations

import csv
import json
import os
import struct

import nengo
import numpy as np
import optax
import pytest
from nengo.exceptions import ValidationError

import nengojax
from nengojax import losses
from nengojax.callbacks import MetricsLogger


def _fit(log, epochs=3, validation=True, **kwargs):
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1))
        ens = nengo.Ensemble(10, 1)
        out = nengo.Node(size_in=1, label="out")
        nengo.Connection(inp, ens, synapse=None)
        nengo.Connection(ens, out, synapse=None)
        p = nengo.Probe(out)
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (8, 2, 1))
    with nengojax.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        sim.compile(optax.sgd(0.01), {p: losses.mse})
        history = sim.fit(
            {inp: x},
            {p: x},
            epochs=epochs,
            verbose=0,
            callbacks=[log],
            validation_data=({inp: x}, {p: x}) if validation else None,
            **kwargs,
        )
    return history


def _events(log_dir):
    """(tag, step, value) of every scalar in the TensorBoard event files of ``log_dir``."""
    from tensorboardX.proto import event_pb2

    out = []
    for name in sorted(os.listdir(log_dir)):
        if "tfevents" not in name:
            continue
        with open(os.path.join(log_dir, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):  # TFRecord: length, crc, payload, crc
            (n,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + n])
            pos += 12 + n + 4
            for v in event.summary.value:
                out.append((v.tag, event.step, v.simple_value))
    return out


def test_csv_and_jsonl_hold_the_fit_history(tmp_path):
    log = MetricsLogger(tmp_path / "logs", tensorboard=False)
    history = _fit(log)
    with open(log.csv_path) as f:
        rows = list(csv.DictReader(f))
    with open(log.jsonl_path) as f:
        lines = [json.loads(line) for line in f]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] == [r["epoch"] for r in lines]
    for key, values in history.history.items():
        np.testing.assert_allclose([float(r[key]) for r in rows], values, rtol=1e-6)
        np.testing.assert_allclose([r[key] for r in lines], values, rtol=1e-6)
    assert "val_loss" in rows[0]
    assert not any("tfevents" in n for n in os.listdir(log.log_dir))


def test_append_continues_the_epoch_numbers(tmp_path):
    _fit(MetricsLogger(tmp_path, tensorboard=False), epochs=2)
    log = MetricsLogger(tmp_path, append=True, tensorboard=False)
    _fit(log, epochs=2)
    assert [r["epoch"] for r in log.rows] == [1, 2, 3, 4]
    with open(log.jsonl_path) as f:
        assert len(f.readlines()) == 4
    fresh = MetricsLogger(tmp_path, tensorboard=False)
    _fit(fresh, epochs=1)
    assert [r["epoch"] for r in fresh.rows] == [1]


def test_tensorboard_event_files_hold_each_scalar(tmp_path):
    pytest.importorskip("tensorboardX")
    log = MetricsLogger(tmp_path, tensorboard=True)
    history = _fit(log, epochs=2)
    events = _events(tmp_path)
    for key, values in history.history.items():
        got = sorted((s, v) for t, s, v in events if t == key)
        assert [s for s, _ in got] == [1, 2]
        np.testing.assert_allclose([v for _, v in got], values, rtol=1e-6)


def test_non_finite_values_are_null_in_json(tmp_path):
    log = MetricsLogger(tmp_path, tensorboard=False)
    log.on_train_begin({})
    log.on_epoch_end(0, {"loss": float("nan"), "x": 1.0})
    with open(log.jsonl_path) as f:
        assert json.loads(f.readline()) == {"epoch": 1, "loss": None, "x": 1.0}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(log_dir=3), "log_dir must be a str"),
        (dict(log_dir="x", tensorboard="yes"), "tensorboard must be"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        MetricsLogger(**kwargs)


def test_a_file_as_log_dir_is_refused_before_training(tmp_path):
    path = tmp_path / "file"
    path.write_text("not a directory")
    log = MetricsLogger(path, tensorboard=False)
    with pytest.raises(ValidationError, match="not a directory"):
        _fit(log, epochs=1, validation=False)
    assert path.read_text() == "not a directory"


def test_tensorboard_true_without_tensorboardx_names_the_extra(monkeypatch):
    import nengojax.callbacks as cb

    monkeypatch.setattr(cb, "_summary_writer", lambda: None)
    with pytest.raises(ValidationError, match=r"nengojax\[tensorboard\]"):
        MetricsLogger("x", tensorboard=True)
