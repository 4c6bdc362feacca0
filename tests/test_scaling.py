"""Data parallelism: the minibatch spread over devices (``Simulator(devices=...)``,
`nengojax.sharding`) and over processes (`nengojax.distributed`).

JAX fixes its device count when its backend starts, which other tests in this
process have done already, so the checks on 4 simulated CPU devices and on two
real processes run in subprocesses (``scaling_checks.py``).
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec
from nengo.exceptions import SimulationError, ValidationError

import nengojax
from nengojax import distributed
from nengojax.sharding import make_mesh

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "scaling_checks.py")
_spec = importlib.util.spec_from_file_location("scaling_checks", SCRIPT)
checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checks)


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    # the scripts set their own device count
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags)
    return env


# --- 4 devices in one process ---------------------------------------------------------------


def test_on_4_devices():
    """Every check of ``scaling_checks.DEVICE_CHECKS``, in one subprocess with 4
    simulated CPU devices (one test, so that pytest-xdist starts it once):
    sharded run/predict/evaluate/fit equal one device's, the gradient is not
    counted per device, the functional recipes work, bad devices and
    minibatch sizes are refused, checkpoints move between sharded and plain."""
    names = [c.__name__ for c in checks.DEVICE_CHECKS]
    try:
        out = subprocess.run(
            [sys.executable, SCRIPT, "devices"],
            capture_output=True,
            text=True,
            timeout=400,
            env=_env(),
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the 4-device checks timed out: {str(e.stdout)[-2000:]}")
    results = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            results[d["check"]] = d
    missing = [n for n in names if n not in results]
    failed = {n: results[n]["detail"] for n in names if n in results and not results[n]["ok"]}
    summary = "\n".join(
        f"{n}: {'ok' if results.get(n, {}).get('ok') else 'FAILED'}" for n in names
    )
    assert not missing, f"no report from {missing} (rc={out.returncode}):\n{out.stderr[-3000:]}"
    assert not failed, summary + "\n\n" + "\n\n".join(f"{n}:\n{d}" for n, d in failed.items())


# --- 2 processes ----------------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one(tmp_path):
    """Two processes with 2 CPU devices each (4 global devices, gloo collectives)
    train the tutorial network as one process does; process 0 alone writes the
    checkpoints, which load anywhere."""
    port = _free_port()
    logs = [open(tmp_path / f"log_{i}.txt", "w") for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, SCRIPT, "worker", str(i), str(port), str(tmp_path)],
            stdout=logs[i],
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 120
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:  # bounded: whatever still runs is stopped
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()

    def log(i):
        text = (tmp_path / f"log_{i}.txt").read_text()
        return "\n".join(li for li in text.splitlines() if "[Gloo]" not in li)[-3000:]

    for i, p in enumerate(procs):
        assert p.returncode == 0, f"process {i} exited with {p.returncode}:\n{log(i)}"
    res = [dict(np.load(tmp_path / f"result_{i}.npz")) for i in range(2)]
    for r in res:
        assert str(r.pop("twice")).startswith("SimulationError: nengojax.distributed.initialize")
        assert "built different programs" in str(r.pop("mismatch"))
    assert [int(r.pop("n_saves")) for r in res] == [2, 0]  # only process 0 wrote

    # both processes hold the same values...
    for k in res[0]:
        np.testing.assert_array_equal(res[0][k], res[1][k], err_msg=k)
    # ...which are one process's (float32 accuracy; same minibatches, same steps)
    ref = checks.train_tutorial(None, epochs=2, opt="rmsprop", optimize=checks.WORKER_OPTIMIZE)
    checks.compare_training(res[0], ref, "2 processes")

    # the checkpoints load into a single-process simulator
    net, _, _, _ = checks.tutorial_net()
    with nengojax.Simulator(net, minibatch_size=8, progress_bar=False) as sim:
        sim.load_params(tmp_path / "ckpt-2.npz")
        for k, v in sim.params.items():
            np.testing.assert_array_equal(np.asarray(v), res[0][f"param:{k}"], err_msg=k)


def test_mismatched_process_counts():
    """A process told another number of processes than the job has gets a
    clear error."""
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, SCRIPT, "count", str(i), str(port), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_env(),
        )
        for i, n in ((0, 2), (1, 3))
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=60)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = {}
    for out in outs:
        for line in out.splitlines():
            if line.startswith("{"):
                d = json.loads(line)
                results[d["process"]] = d["result"]
    assert results.get(0) == "ok 2", results
    assert results.get(1, "").startswith("SimulationError: num_processes=3"), results


# --- in this process ------------------------------------------------------------------------


def test_initialize_rejects_bad_arguments():
    for kwargs in (
        dict(num_processes=2, process_id=2),
        dict(num_processes=0, process_id=0),
        dict(num_processes=2, process_id=-1),
        dict(num_processes=1.5, process_id=0),
    ):
        with pytest.raises(ValidationError):
            distributed.initialize("127.0.0.1:1", **kwargs)


def test_initialize_after_jax_started():
    jnp.zeros(1).block_until_ready()  # JAX's backend is up
    with pytest.raises(SimulationError, match="before any other use of JAX"):
        distributed.initialize("127.0.0.1:1", num_processes=1, process_id=0)
    assert not distributed.is_initialized()


def test_single_process_helpers():
    assert distributed.process_index() == 0 and distributed.process_count() == 1
    assert distributed.is_main_process()
    assert not distributed.spans_processes(make_mesh(jax.devices()[:1]))
    distributed.barrier()  # nothing to wait for
    mesh = make_mesh(jax.devices()[:1])
    x = np.arange(24.0).reshape(2, 4, 3)
    np.testing.assert_array_equal(distributed.local_part(x, mesh, axis=1), x)
    g = distributed.put_global({"x": x}, NamedSharding(mesh, PartitionSpec(None, "batch")))
    assert g["x"].sharding.spec == PartitionSpec(None, "batch")
    np.testing.assert_array_equal(distributed.to_host(g)["x"], x)
    g = distributed.global_batch(x, mesh)
    assert g.shape == x.shape
    np.testing.assert_array_equal(distributed.to_host(g), x)
    np.testing.assert_array_equal(distributed.broadcast_from_main({"a": x})["a"], x)


def test_bad_devices_in_this_process():
    net = checks.tutorial_net()[0]
    for devices in (len(jax.devices()) + 1, "tpu", []):
        with pytest.raises(ValidationError):
            nengojax.Simulator(net, minibatch_size=4, devices=devices, progress_bar=False)


def test_sharded_path_on_one_device_is_the_plain_path():
    """``devices=1`` (a 1-device mesh) computes what ``devices=None`` does."""
    got = {}
    for devices in (None, 1):
        net, inp, p_train, p_filt = checks.tutorial_net()
        x, y = checks.tutorial_data(16)
        with nengojax.Simulator(net, minibatch_size=8, devices=devices, progress_bar=False) as sim:
            sim.run_steps(5)
            sim.compile(optax.rmsprop(0.01), loss={p_train: nengojax.losses.mse})
            hist = sim.fit({inp: x}, {p_train: y}, epochs=1, verbose=0)
            got[devices] = (
                sim.data[p_filt],
                hist.history["loss"],
                {k: np.asarray(v) for k, v in sim.params.items()},
                sim.predict({inp: np.tile(x, (1, 3, 1))})[p_filt],
            )
            if devices is not None:
                assert isinstance(next(iter(sim.params.values())).sharding, NamedSharding)
    a, b = got[None], got[1]
    np.testing.assert_allclose(b[0], a[0], atol=1e-6)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-6)
    for k in a[2]:
        np.testing.assert_allclose(b[2][k], a[2][k], rtol=1e-6, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(b[3], a[3], atol=1e-6)
