"""Checks of data parallelism that need several JAX devices or processes.

JAX fixes its device count when its backend starts, which other tests in the
same process have already done; so `test_scaling.py` runs these checks in
fresh subprocesses:

``python tests/scaling_checks.py devices``
    One process with 4 simulated CPU devices; prints one JSON line per check
    (``{"check": name, "ok": bool, "detail": str}``).
``python tests/scaling_checks.py count PROCESS_ID PORT NUM_PROCESSES``
    Join a job on ``127.0.0.1:PORT`` claiming ``NUM_PROCESSES`` processes and
    print the outcome (for the test of mismatched process counts).
``python tests/scaling_checks.py worker PROCESS_ID PORT OUT_DIR``
    One of two processes (2 CPU devices each, 4 global devices) joined by
    `nengojax.distributed.initialize` on ``127.0.0.1:PORT``; trains the
    tutorial network with ``devices="all"`` and writes its results to
    ``OUT_DIR/result_PROCESS_ID.npz``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import numpy as np

N_ITEMS = 32
MINIBATCH = 8


def tutorial_net(seed=0, extra_probe=False):
    """The network of NengoDL's "from Nengo" tutorial: encoders and biases
    trainable, synapses removed; ``(net, inp, p_train, p_filtered)``."""
    import nengo

    from nengojax.config import configure_settings

    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3))
        square = nengo.Ensemble(20, 1)
        sin = nengo.Ensemble(20, 1)
        out = nengo.Node(size_in=1)
        nengo.Connection(inp, square)
        nengo.Connection(square, sin, function=np.square)
        nengo.Connection(sin, out, function=np.sin)
        p_filt = nengo.Probe(out, synapse=0.01)
    for conn in net.all_connections:
        conn.synapse = None
    with net:
        p_train = nengo.Probe(out)
        if extra_probe:
            nengo.Probe(square)
        configure_settings(trainable=False)
        net.config[nengo.Ensemble].trainable = True
    return net, inp, p_train, p_filt


def tutorial_data(n_items=N_ITEMS, n_steps=1, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n_items, n_steps, 1))
    return x, np.sin(x**2)


def make_optimizer(name):
    import optax

    return {
        "rmsprop": lambda: optax.rmsprop(0.01),  # the tutorial's
        "sgd": lambda: optax.sgd(100.0),
        "adam": lambda: optax.adam(0.01, eps=1e-4),
    }[name]()


def train_tutorial(
    devices=None,
    epochs=2,
    callbacks=None,
    n_items=N_ITEMS,
    minibatch=MINIBATCH,
    opt="rmsprop",
    optimize=True,
):
    """Train the tutorial network (mse; ``opt`` see `make_optimizer`) on ``devices``: a dict of the
    predictions and evaluation before training, the loss history, the params
    after it and the predictions after it."""

    import nengojax

    net, inp, p_train, p_filt = tutorial_net()
    x, y = tutorial_data(n_items)
    xt, yt = tutorial_data(n_items, n_steps=10, seed=2)
    out = {}
    with nengojax.Simulator(
        net, minibatch_size=minibatch, devices=devices, progress_bar=False, optimize=optimize
    ) as sim:
        sim.compile(loss={p_filt: nengojax.losses.mse})
        out["pred0"] = sim.predict({inp: xt})[p_filt]
        out["ev0"] = sim.evaluate({inp: xt}, {p_filt: yt})["loss"]
        sim.compile(make_optimizer(opt), loss={p_train: nengojax.losses.mse})
        hist = sim.fit({inp: x}, {p_train: y}, epochs=epochs, verbose=0, callbacks=callbacks)
        out["loss"] = np.asarray(hist.history["loss"])
        out["pred"] = sim.predict({inp: xt})[p_filt]
        params = nengojax.distributed.to_host(sim.params)
        out.update({f"param:{k}": np.asarray(v) for k, v in params.items()})
    return out


# --- one process, 4 devices ---------------------------------------------------------------


def _close(a, b, rtol=1e-5, atol=1e-6, what=""):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes {a.shape} vs {b.shape}")
    if not np.allclose(a, b, rtol=rtol, atol=atol):
        raise AssertionError(f"{what}: max abs difference {np.abs(a - b).max():.3g}")
    return float(np.abs(a - b).max()) if a.size else 0.0


def check_devices_available():
    import jax

    assert len(jax.devices()) == 4, jax.devices()
    return str(jax.devices())


def check_run():
    import nengojax

    out = {}
    for devices in (None, "all", "list"):
        net, inp, _, p_filt = tutorial_net()
        if devices == "list":
            import jax

            devices = jax.devices()[::-1]  # any order
        with nengojax.Simulator(net, minibatch_size=8, devices=devices, progress_bar=False) as sim:
            sim.run_steps(10)  # two compiled chunk sizes (64 and 8 steps)
            sim.run_steps(3)
            out[str(devices)[:20]] = sim.data[p_filt]
            if devices is not None:
                leaf = sim.state["signals"][next(iter(sim.state["signals"]))]
                assert len(leaf.sharding.device_set) == 4, leaf.sharding
                assert not leaf.sharding.is_fully_replicated
                p = next(iter(sim.params.values()))
                assert p.sharding.is_fully_replicated and len(p.sharding.device_set) == 4
    ref = out.pop("None")
    return max(_close(v, ref, atol=1e-6, what=k) for k, v in out.items())


def compare_training(got, ref, what):
    """Before training: predict/evaluate equal; after: params, losses and
    predictions equal to float32 accuracy. Returns the largest param difference."""
    assert got.keys() == ref.keys(), (sorted(got), sorted(ref))
    _close(got["pred0"], ref["pred0"], what=f"{what}: predict")
    _close(got["ev0"], ref["ev0"], what=f"{what}: evaluate")
    _close(got["loss"], ref["loss"], rtol=1e-4, what=f"{what}: training loss")
    _close(got["pred"], ref["pred"], rtol=1e-4, atol=1e-5, what=f"{what}: predict after fit")
    return max(
        _close(got[k], ref[k], rtol=1e-4, atol=1e-5, what=f"{what}: {k}")
        for k in ref
        if k.startswith("param:")
    )


def initial_params():
    import nengojax

    model = nengojax.compile(tutorial_net()[0])
    return {f"param:{k}": np.asarray(v) for k, v in model.init_params().items()}


def check_fit_predict_evaluate():
    """Sharded predict/evaluate equal single-device ones; so do one epoch of
    fit (the params) and the predictions after it."""
    ref = train_tutorial(None, epochs=1, n_items=64, minibatch=16)
    got = train_tutorial("all", epochs=1, n_items=64, minibatch=16)
    worst = compare_training(got, ref, "4 devices")
    init = initial_params()
    moved = max(float(np.abs(ref[k] - init[k]).max()) for k in init)
    assert moved > 1e-3, "fit did not change the params"
    return f"max param difference {worst:.3g} (params moved by up to {moved:.3g})"


def _functional_setup():
    import jax.numpy as jnp

    import nengojax
    from nengojax import training

    net, inp, p_train, p_filt = tutorial_net()
    model = nengojax.compile(net)
    x, y = tutorial_data(16, n_steps=5)
    x = {model.key(inp): jnp.asarray(x, jnp.float32)}
    y = {model.key(p_train): jnp.asarray(y, jnp.float32)}
    params = model.init_params()
    trainable, frozen = training.split_params(params, training.trainable_keys(model))
    state = model.init_state(16)
    return model, p_filt, x, y, params, trainable, frozen, state


def check_gradient_not_double_counted():
    """The gradient of a sharded loss is the single-device gradient (not
    multiplied by the device count), and XLA all-reduces it."""
    import jax

    from nengojax import training
    from nengojax.sharding import make_mesh, replicate, shard_batch

    model, _, x, y, _, trainable, frozen, state = _functional_setup()
    loss_fn = training.make_loss_fn(model, {k: nengojax_mse() for k in y}, mode="rate")
    grad = jax.jit(jax.grad(lambda t, f, s, x, y: loss_fn(t, f, s, x, y)[0]))
    g1 = grad(trainable, frozen, state, x, y)
    mesh = make_mesh(jax.devices())
    args = (
        replicate(trainable, mesh),
        replicate(frozen, mesh),
        shard_batch(state, mesh),
        shard_batch(x, mesh),
        shard_batch(y, mesh),
    )
    g4 = grad(*args)
    hlo = grad.lower(*args).compile().as_text()
    assert "all-reduce" in hlo, "no all-reduce in the sharded gradient program"
    worst = max(_close(g4[k], g1[k], rtol=1e-4, atol=1e-6, what=k) for k in g1)
    norm = max(float(np.abs(g1[k]).max()) for k in g1)
    assert norm > 1e-4, "zero gradient"
    for k in g4:
        assert g4[k].sharding.is_fully_replicated, (k, g4[k].sharding)
    return f"max difference {worst:.3g} (largest gradient entry {norm:.3g}); all-reduce present"


def nengojax_mse():
    import nengojax

    return nengojax.losses.mse


def check_functional_run():
    """``model.run`` under a global-view jit: params replicated, state/inputs split."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from nengojax.sharding import make_mesh

    model, p_filt, x, _, params, _, _, state = _functional_setup()
    run = jax.jit(lambda p, s, x: model.run(p, s, 5, x))
    ref_state, ref = run(params, state, x)
    mesh = make_mesh(jax.devices())
    rep, bat = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
    run4 = jax.jit(
        lambda p, s, x: model.run(p, s, 5, x),
        in_shardings=(rep, bat, bat),
        out_shardings=(bat, bat),
    )
    new_state, probes = run4(params, state, x)  # jit moves the inputs
    key = model.key(p_filt)
    assert probes[key].sharding == bat, probes[key].sharding
    _close(probes[key], ref[key], what="probe")
    leaf = next(iter(new_state["signals"]))
    return _close(new_state["signals"][leaf], ref_state["signals"][leaf], what="state")


def check_functional_train_step():
    """A train step jitted with in/out shardings equals the single-device step."""
    import jax
    import optax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from nengojax import training
    from nengojax.sharding import make_mesh

    model, _, x, y, _, trainable, frozen, state = _functional_setup()
    opt = optax.adam(1e-2)
    opt_state = opt.init(trainable)
    loss = {k: nengojax_mse() for k in y}
    step1 = training.make_train_step(model, opt, loss)
    t1, _, v1, _ = step1(trainable, frozen, opt_state, state, x, y)
    mesh = make_mesh(jax.devices())
    rep, bat = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
    step = training.make_train_step(model, opt, loss, jit=False)
    step4 = jax.jit(
        step,
        in_shardings=(rep, rep, rep, bat, bat, bat),
        out_shardings=(rep, rep, rep, {"state": bat, "losses": rep, "metrics": rep}),
    )
    t4, _, v4, _ = step4(trainable, frozen, opt_state, state, x, y)
    _close(v4, v1, what="loss")
    return max(_close(t4[k], t1[k], rtol=1e-4, atol=1e-6, what=k) for k in t1)


def check_functional_sweep():
    """A vmapped parameter sweep with the sweep axis split over the devices."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from nengojax.sharding import make_mesh

    model, p_filt, x, _, params, _, _, _ = _functional_setup()
    state = model.init_state()  # one simulation per swept value
    ens = model.key(model.network.ensembles[0].neurons, "bias")
    biases = params[ens][None] + jnp.linspace(-1, 1, 8)[:, None]
    xs = x[next(iter(x))][0]

    def run(bias):
        return model.run({**params, ens: bias}, state, 5, {next(iter(x)): xs})[1]

    ref = jax.jit(jax.vmap(run))(biases)
    mesh = make_mesh(jax.devices())
    sharded = jax.device_put(biases, NamedSharding(mesh, P("batch")))
    out = jax.jit(jax.vmap(run))(sharded)
    key = model.key(p_filt)
    assert len(out[key].sharding.device_set) == 4 and not out[key].sharding.is_fully_replicated
    return _close(out[key], ref[key], what="sweep")


def check_stateful_fit():
    """``fit(stateful=True)`` carries the sharded state from minibatch to minibatch."""
    import optax

    import nengojax

    out = {}
    for devices in (None, "all"):
        net, inp, p_train, _ = tutorial_net()
        x, y = tutorial_data(16, n_steps=3)
        with nengojax.Simulator(net, minibatch_size=8, devices=devices, progress_bar=False) as sim:
            sim.compile(optax.sgd(10.0), loss={p_train: nengojax.losses.mse})
            sim.fit({inp: x}, {p_train: y}, epochs=1, stateful=True, shuffle=False, verbose=0)
            assert sim.n_steps == 6, sim.n_steps
            leaf = next(iter(sim.state["signals"]))
            out[devices] = (sim.params, sim.state["signals"][leaf])
            if devices is not None:
                assert len(sim.state["signals"][leaf].sharding.device_set) == 4
    for k in out[None][0]:
        _close(out["all"][0][k], out[None][0][k], rtol=1e-5, atol=1e-6, what=k)
    return _close(out["all"][1], out[None][1], rtol=1e-5, atol=1e-5, what="state")


def check_bad_devices():
    import jax
    from nengo.exceptions import ValidationError

    import nengojax

    net = tutorial_net()[0]
    msgs = []
    for devices in (5, 0, "gpu", [jax.devices()[0], jax.devices()[0]], ["cpu:0"]):
        try:
            nengojax.Simulator(net, minibatch_size=4, devices=devices, progress_bar=False)
        except ValidationError as e:
            msgs.append(str(e)[:40])
        else:
            raise AssertionError(f"devices={devices!r} was accepted")
    return "; ".join(msgs)


def check_not_divisible():
    from nengo.exceptions import ValidationError

    import nengojax

    net = tutorial_net()[0]
    for mb, devices in ((6, "all"), (None, "all"), (3, 2)):
        try:
            nengojax.Simulator(net, minibatch_size=mb, devices=devices, progress_bar=False)
        except ValidationError as e:
            assert "divisible" in str(e), e
        else:
            raise AssertionError(f"minibatch_size={mb} accepted on devices={devices}")
    # and a mesh that does divide it is fine
    with nengojax.Simulator(net, minibatch_size=6, devices=2, progress_bar=False) as sim:
        sim.run_steps(2)
    return "ok"


def check_save_load_sharded(tmp=None):
    """Params saved from a sharded simulator load into a plain one, and back."""
    import tempfile

    import optax

    import nengojax

    net, inp, p_train, _ = tutorial_net()
    x, y = tutorial_data()
    with tempfile.TemporaryDirectory() as d:
        with nengojax.Simulator(net, minibatch_size=8, devices="all", progress_bar=False) as sim:
            sim.compile(optax.sgd(0.1), loss={p_train: nengojax.losses.mse})
            sim.fit({inp: x}, {p_train: y}, epochs=1, verbose=0)
            sim.run_steps(3)
            path = sim.save_params(os.path.join(d, "p"), include_state=True)
            trained = {k: np.asarray(v) for k, v in sim.params.items()}
            probe_ref = None
        with nengojax.Simulator(net, minibatch_size=8, progress_bar=False) as plain:
            plain.load_params(path, include_state=True)
            for k, v in trained.items():
                np.testing.assert_array_equal(np.asarray(plain.params[k]), v)
            plain.run_steps(2)
            probe_ref = plain.data[p_train]
        with nengojax.Simulator(net, minibatch_size=8, devices="all", progress_bar=False) as sim:
            sim.load_params(path, include_state=True)
            leaf = sim.state["signals"][next(iter(sim.state["signals"]))]
            assert len(leaf.sharding.device_set) == 4, leaf.sharding
            sim.run_steps(2)
            _close(sim.data[p_train], probe_ref, what="run after load")
    return "ok"


def check_distributed_after_start():
    """`distributed.initialize` after JAX computed: a clear SimulationError."""
    from nengo.exceptions import SimulationError

    import nengojax

    try:
        nengojax.distributed.initialize("127.0.0.1:1", num_processes=1, process_id=0)
    except SimulationError as e:
        assert "before any other use of JAX" in str(e), e
        return str(e)[:60]
    raise AssertionError("no error")


DEVICE_CHECKS = [
    check_devices_available,
    check_run,
    check_fit_predict_evaluate,
    check_gradient_not_double_counted,
    check_functional_run,
    check_functional_train_step,
    check_functional_sweep,
    check_stateful_fit,
    check_bad_devices,
    check_not_divisible,
    check_save_load_sharded,
    check_distributed_after_start,
]


def run_device_checks():
    import jax

    jax.config.update("jax_num_cpu_devices", 4)  # before JAX starts its backend
    import nengo

    nengo.rc.set("decoder_cache", "enabled", "False")
    nengo.rc.set("progress", "progress_bar", "False")
    for check in DEVICE_CHECKS:
        t0 = time.perf_counter()
        try:
            detail, ok = check(), True
        except Exception:
            detail, ok = traceback.format_exc(limit=6), False
        line = {"check": check.__name__, "ok": ok, "detail": str(detail)}
        line["seconds"] = round(time.perf_counter() - t0, 2)
        print(json.dumps(line), flush=True)


# --- two processes ------------------------------------------------------------------------


#: The two-process run builds without nengo's operator merging: the merger
#: orders merged signals by object ids, so two processes could lay out the
#: same network differently (the simulator refuses such runs; see
#: ``Simulator._check_same_program``).
WORKER_OPTIMIZE = True  # merging is deterministic across processes


def run_worker(process_id: int, port: int, out_dir: str):
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    import nengo
    from nengo.exceptions import SimulationError

    import nengojax
    from nengojax import callbacks, distributed

    nengo.rc.set("decoder_cache", "enabled", "False")
    nengo.rc.set("progress", "progress_bar", "False")
    address = f"127.0.0.1:{port}"  # the coordinator listens on 127.0.0.1 only
    distributed.initialize(
        address, num_processes=2, process_id=process_id, coordinator_bind_address=address
    )
    assert distributed.process_count() == 2 and len(jax.devices()) == 4
    assert len(jax.local_devices()) == 2
    try:
        distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
        twice = "no error"
    except SimulationError as e:
        twice = f"SimulationError: {e}"

    # fit, predict and evaluate on 4 devices of 2 processes, with a checkpoint
    # after each epoch (written by process 0 only: count the writes)
    saves = []
    savez = np.savez

    def counting_savez(*args, **kwargs):
        saves.append(args[0])
        return savez(*args, **kwargs)

    np.savez = counting_savez
    ckpt = callbacks.ModelCheckpoint(os.path.join(out_dir, "ckpt-{epoch}.npz"))
    out = train_tutorial(
        "all", epochs=2, callbacks=[ckpt], opt="rmsprop", optimize=WORKER_OPTIMIZE
    )
    np.savez = savez

    # processes that built different programs get a clear error, not wrong numbers
    net = tutorial_net(extra_probe=process_id == 1)[0]
    with nengojax.Simulator(
        net, minibatch_size=8, devices="all", optimize=WORKER_OPTIMIZE, progress_bar=False
    ) as sim:
        try:
            sim.predict(n_steps=2)
            mismatch = "no error"
        except SimulationError as e:
            mismatch = f"SimulationError: {e}"

    distributed.barrier("checks.done")
    np.savez(
        os.path.join(out_dir, f"result_{process_id}.npz"),
        n_saves=np.asarray(len(saves)),
        twice=np.asarray(twice),
        mismatch=np.asarray(mismatch),
        **out,
    )
    print(f"worker {process_id} done", flush=True)


def run_count_worker(process_id: int, port: int, num_processes: int):
    """Join a job claiming ``num_processes`` processes; print what happened."""
    import jax

    jax.config.update("jax_num_cpu_devices", 1)
    from nengojax import distributed

    address = f"127.0.0.1:{port}"
    try:
        distributed.initialize(
            address,
            num_processes=num_processes,
            process_id=process_id,
            coordinator_bind_address=address,
            initialization_timeout=20,
        )
        result = f"ok {distributed.process_count()}"
    except Exception as e:
        result = f"{type(e).__name__}: {e}"
    print(json.dumps({"process": process_id, "result": result}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "devices":
        run_device_checks()
    elif sys.argv[1] == "count":
        run_count_worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "worker":
        run_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(__doc__)
