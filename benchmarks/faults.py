"""Bad input and faults, tried as a user meets them, and how each one ends.

Each case does one wrong thing (issue 12's list: bad ``data``/``x``/``y``,
bad params and state, corrupt checkpoints, faults during a run, misused
options) and is classified by what the user gets:

- ``error``: a nengo exception (``ValidationError``, ``BuildError``,
  ``SimulationError``, ``SimulatorClosed``, ``ReadonlyError``) whose message
  holds the words the case expects (the object or value it is about), and
  nothing changed that the case checks;
- ``kept``: a fault in the user's own code (their exception, re-raised) with
  every completed step kept and the state theirs, so the run continues;
- ``ok``: the input is valid after all and gives the right result;
- ``wrong``: it ran and gave a wrong result or changed what it must not
  (params replaced, steps lost): a silent wrong answer or data loss;
- ``unclear``: another exception, or a message without the expected words.

Out-of-memory and a never-started distributed peer are covered by
``tests/test_faults.py`` and ``tests/test_distributed_faults.py`` (each needs a
process of its own). Writes ``results/faults.md``.

    python benchmarks/faults.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import warnings
from collections import Counter

import jax
import nengo
import numpy as np
import optax
from nengo.exceptions import (
    BuildError,
    ReadonlyError,
    SimulationError,
    SimulatorClosed,
    ValidationError,
)

import nengojax
from nengojax.callbacks import ModelCheckpoint

HERE = os.path.dirname(os.path.abspath(__file__))
NENGO_ERRORS = (ValidationError, BuildError, SimulationError, SimulatorClosed, ReadonlyError)
CASES = []


class Wrong(Exception):
    """A check of a case failed: the result is wrong or something changed."""


def case(kind: str, expect: str | None = None):
    """Register a case; ``expect``: words the error message must hold."""

    def register(fn):
        CASES.append((kind, fn.__name__, fn, expect))
        return fn

    return register


def _net(minibatch=None):
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1), label="inp")
        ens = nengo.Ensemble(20, 1, label="ens")
        out = nengo.Node(size_in=1, label="out")
        nengo.Connection(inp, ens, synapse=None)
        nengo.Connection(ens, out, synapse=None)
        p = nengo.Probe(out, label="out_p")
    sim = nengojax.Simulator(net, minibatch_size=minibatch, progress_bar=False)
    return sim, inp, ens, p


def _params(sim):
    return {k: np.array(v) for k, v in jax.device_get(sim.params).items()}


def _same(before, sim):
    for k, v in before.items():
        if not np.array_equal(v, np.asarray(sim.params[k])):
            raise Wrong(f"params[{k!r}] changed")


# --- run-time data -------------------------------------------------------------------


@case("data", "inp")
def data_wrong_shape():
    sim, inp, _, _ = _net()
    sim.run_steps(5, data={inp: np.ones((1, 5, 3))})


@case("data", "inp")
def data_nan():
    sim, inp, _, _ = _net()
    sim.run_steps(5, data={inp: np.full((1, 5, 1), np.nan)})


@case("data", "inp")
def data_overflows_float32():
    sim, inp, _, _ = _net()
    sim.run_steps(5, data={inp: np.full((1, 5, 1), 1e39)})


@case("data", "inp")
def data_complex():
    sim, inp, _, _ = _net()
    sim.run_steps(5, data={inp: np.ones((1, 5, 1)) * 1j})


@case("data", "inp")
def data_same_node_twice():
    sim, inp, _, _ = _net()
    key = sim.compiled.key(inp)
    sim.run_steps(5, data={inp: np.ones((1, 5, 1)), key: np.ones((1, 5, 1))})


@case("data", "steps")
def run_steps_nan():
    _net()[0].run_steps(float("nan"))


@case("data", "steps")
def run_steps_string():
    _net()[0].run_steps("10")


@case("data", "steps")
def run_steps_float():
    _net()[0].run_steps(2.5)


@case("data", "time_in_seconds")
def run_negative_time():
    _net()[0].run(-1.0)


# --- simulator arguments ---------------------------------------------------------------


@case("arguments", "dt")
def dt_zero():
    nengojax.Simulator(nengo.Network(), dt=0)


@case("arguments", "network")
def simulator_of_an_ensemble():
    with nengo.Network():
        ens = nengo.Ensemble(5, 1)
    nengojax.Simulator(ens)


@case("arguments", "minibatch_size")
def minibatch_float():
    nengojax.Simulator(nengo.Network(), minibatch_size=2.5)


@case("arguments", "seed")
def reset_negative_seed():
    sim = _net()[0]
    seed = sim.seed
    try:
        sim.reset(seed=-3)
    finally:
        if sim.seed != seed:
            raise Wrong("reset(seed=-3) changed sim.seed")
        sim.run_steps(2)  # still usable


@case("arguments", "closed")
def run_after_close():
    sim = _net()[0]
    sim.close()
    sim.run_steps(2)


# --- params and state ------------------------------------------------------------------


@case("params", "encoders")
def param_wrong_shape():
    sim, _, ens, _ = _net()
    sim.params[sim.compiled.key(ens, "encoders")] = np.zeros(3)
    sim.run_steps(2)


@case("params", "typo")
def functional_unknown_param():
    sim = _net()[0]
    model = sim.compiled
    params = dict(model.init_params(), typo=np.zeros(1))
    model.run(params, model.init_state(), 5)


@case("params", "n_steps")
def functional_negative_steps():
    model = _net()[0].compiled
    model.run(model.init_params(), model.init_state(), -3)


@case("params", "state")
def functional_other_networks_state():
    model = _net()[0].compiled
    with nengo.Network() as other:
        nengo.Ensemble(7, 2)
    state = nengojax.compile(other).init_state()
    model.run(model.init_params(), state, 5)


@case("params", "bias")
def key_of_an_attribute_that_is_not_a_param():
    sim, _, ens, _ = _net()
    sim.compiled.key(ens, "radius")


@case("params")
def key_of_bias_resolves_like_sim_data():
    sim, _, ens, _ = _net()
    key = sim.compiled.key(ens.neurons, "bias")
    if not np.allclose(np.asarray(sim.params[key]), sim.data[ens].bias):
        raise Wrong("key(ens.neurons, 'bias') is not sim.data[ens].bias")


# --- checkpoints -----------------------------------------------------------------------


def _saved(tmp):
    sim, inp, ens, p = _net()
    path = sim.save_params(os.path.join(tmp, "ckpt"))
    return sim, path


def _rewrite(path, change):
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    change(data)
    np.savez(path, **data)


def _load_damaged_encoders(damage):
    """Load a checkpoint whose encoders ``damage`` changed; the params must
    stay as they were."""
    with tempfile.TemporaryDirectory() as tmp:
        sim, path = _saved(tmp)
        key = "param:" + next(k for k in sim.params if "encoders" in k)
        _rewrite(path, lambda d: d.__setitem__(key, damage(d[key])))
        before = _params(sim)
        try:
            sim.load_params(path)
        finally:
            _same(before, sim)


@case("checkpoints", "ckpt")
def load_transposed_array():
    _load_damaged_encoders(lambda a: a.T.copy())


@case("checkpoints", "ckpt")
def load_nan_array():
    _load_damaged_encoders(lambda a: np.full_like(a, np.nan))


@case("checkpoints", "ckpt")
def load_complex_array():
    with tempfile.TemporaryDirectory() as tmp:
        sim, path = _saved(tmp)
        key = "param:" + next(k for k in sim.params if "encoders" in k)
        _rewrite(path, lambda d: d.__setitem__(key, d[key] * 1j))
        sim.load_params(path)


@case("checkpoints", "ckpt")
def load_truncated_file():
    with tempfile.TemporaryDirectory() as tmp:
        sim, path = _saved(tmp)
        with open(path, "rb") as f:
            head = f.read(100)
        with open(path, "wb") as f:
            f.write(head)
        sim.load_params(path)


@case("checkpoints", "npy")
def load_npy_file():
    with tempfile.TemporaryDirectory() as tmp:
        sim = _net()[0]
        path = os.path.join(tmp, "x.npy")
        np.save(path, np.zeros(3))
        sim.load_params(path)


@case("checkpoints", "no file")
def load_missing_file():
    _net()[0].load_params("/nonexistent/ckpt.npz")


def _fit_with_checkpoint(path, monitor="loss"):
    sim, inp, _, p = _net()
    sim.compile(optax.sgd(0.1), loss="mse")
    before = _params(sim)
    x = np.ones((4, 1, 1))
    try:
        sim.fit({inp: x}, {p: x}, epochs=2, callbacks=[ModelCheckpoint(path, monitor)], verbose=0)
    except NENGO_ERRORS:
        _same(before, sim)  # refused before the first epoch
        raise


@case("checkpoints")
def checkpoint_into_a_new_directory():
    with tempfile.TemporaryDirectory() as tmp:
        _fit_with_checkpoint(os.path.join(tmp, "new", "dir", "ckpt.npz"))
        if not os.path.exists(os.path.join(tmp, "new", "dir", "ckpt.npz")):
            raise Wrong("no checkpoint written")


@case("checkpoints", "cannot create the directory")
def checkpoint_under_a_file():
    with tempfile.TemporaryDirectory() as tmp:
        open(os.path.join(tmp, "file"), "w").close()
        _fit_with_checkpoint(os.path.join(tmp, "file", "ckpt.npz"))


@case("checkpoints", "val_loss")
def checkpoint_named_by_val_loss_without_validation_data():
    with tempfile.TemporaryDirectory() as tmp:
        _fit_with_checkpoint(os.path.join(tmp, "ckpt_{val_loss:.3f}.npz"), monitor="val_loss")


# --- training --------------------------------------------------------------------------


@case("training", "fit stopped")
def fit_with_a_learning_rate_that_overflows():
    sim, inp, _, p = _net()
    sim.compile(optax.sgd(1e38), loss="mse")
    x = np.ones((4, 1, 1)) * 100
    try:
        sim.fit({inp: x}, {p: -x}, epochs=5, verbose=0)
    finally:
        for k, v in jax.device_get(sim.params).items():
            if not np.all(np.isfinite(v)):
                raise Wrong(f"params[{k!r}] left non-finite")


@case("training", "has no loss")
def loss_weight_for_a_probe_without_loss():
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(10, 1)
        p, q = nengo.Probe(ens), nengo.Probe(ens.neurons)
    sim = nengojax.Simulator(net, progress_bar=False)
    sim.compile(optax.sgd(0.1), loss={p: "mse"}, loss_weights={p: 1.0, q: 2.0})


@case("training", "pynode")
def fit_through_a_host_node():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1))
        a = nengo.Ensemble(20, 1)
        node = nengo.Node(lambda t, x: x**2 + (np.random.rand() > 2), size_in=1, label="pynode")
        b = nengo.Ensemble(20, 1)
        nengo.Connection(inp, a)
        nengo.Connection(a, node, synapse=None)
        nengo.Connection(node, b)
        p = nengo.Probe(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = nengojax.Simulator(net, minibatch_size=2, progress_bar=False)
    sim.compile(optax.sgd(0.1), loss="mse")
    sim.fit({inp: np.ones((2, 3, 1))}, {p: np.ones((2, 3, 1))}, epochs=1, verbose=0)


@case("training", "n_steps")
def predict_negative_steps():
    _net(minibatch=2)[0].predict(n_steps=-3)


# --- faults during a run ---------------------------------------------------------------


class _RaiseAt:
    def __init__(self, at, exc, with_input):
        self.at, self.exc, self.with_input, self.done = at, exc, with_input, False

    def __call__(self, t, *x):
        if not self.done and t > self.at:
            self.done = True
            raise self.exc("fault injected")
        return np.sin(9 * t) + (0.5 * x[0] if x else 0)


def _fault_net(fn, with_input):
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: np.cos(5 * t))
        node = nengo.Node(fn, size_in=1 if with_input else 0, size_out=1)
        ens = nengo.Ensemble(30, 1)
        if with_input:
            nengo.Connection(stim, node, synapse=None)
        nengo.Connection(node, ens)
        p = nengo.Probe(ens, synapse=0.01)
    return net, p


def _fault_case(exc, with_input):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net, p = _fault_net(_RaiseAt(0.7005, exc, with_input), with_input)
            sim = nengojax.Simulator(net, progress_bar=False)
            ref_net, rp = _fault_net(_RaiseAt(99, exc, with_input), with_input)
            ref = nengojax.Simulator(ref_net, progress_bar=False)
        try:
            sim.run(1.0)
        except exc:
            if sim.n_steps != 700 or sim.data[p].shape[0] != 700:
                raise Wrong(f"kept {sim.n_steps} steps of 700 before the fault") from None
            sim.run_steps(300)
            ref.run(1.0)
            if not np.allclose(sim.data[p], ref.data[rp], atol=1e-6):
                raise Wrong("continuing differs from an uninterrupted run") from None
            return "kept"
        raise Wrong("the fault did not reach the user")

    return run


for _exc in (RuntimeError, KeyboardInterrupt):
    for _inp in (False, True):
        _name = f"{_exc.__name__}_in_node_{'with_input' if _inp else 'of_time'}_mid_run"
        CASES.append(("run faults", _name, _fault_case(_exc, _inp), None))


@case("run faults", "non-finite")
def node_returning_nan():
    with nengo.Network() as net:
        nengo.Probe(nengo.Node(lambda t: np.nan if t > 0.005 else 1.0))
    nengojax.Simulator(net, progress_bar=False).run(0.01)


@case("run faults", "non-finite")
def jax_node_returning_nan():
    with nengo.Network() as net:
        node = nengojax.JaxNode(
            lambda t: jax.numpy.where(t > 0.005, jax.numpy.nan, 1.0) * jax.numpy.ones(1),
            shape_out=(1,),
        )
        nengo.Probe(node)
    nengojax.Simulator(net, progress_bar=False).run(0.01)


@case("run faults")
def sample_every_and_restart_keep_nengos_rows():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(9 * t))
        p = nengo.Probe(stim, sample_every=0.0035)
    rows = []
    for cls in (nengo.Simulator, nengojax.Simulator):
        with cls(net, progress_bar=False) as sim:
            for n in (1, 7, 600, 4500):
                sim.run_steps(n)
            rows.append(np.array(sim.data[p]))
    if rows[0].shape != rows[1].shape or not np.allclose(rows[0], rows[1], atol=1e-6):
        raise Wrong("sample_every rows differ from nengo's")


def run_case(fn, expect):
    try:
        out = fn()
    except Wrong as e:
        return "wrong", str(e)
    except NENGO_ERRORS as e:
        msg = str(e)
        if expect is not None and expect.lower() not in msg.lower():
            return "unclear", f"{type(e).__name__}: {msg[:120]} (no {expect!r})"
        return "error", f"{type(e).__name__}: {msg[:120]}"
    except BaseException as e:  # noqa: BLE001  (KeyboardInterrupt is a case too)
        return "unclear", f"{type(e).__name__}: {str(e)[:120]}"
    if out == "kept":
        return "kept", "the user's exception; completed steps kept, continues as uninterrupted"
    if expect is not None:
        return "wrong", "ran without an error"
    return "ok", "right result"


def main():
    rows, counts = [], Counter()
    for kind, name, fn, expect in CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome, detail = run_case(fn, expect)
        counts[outcome] += 1
        rows.append(f"| {kind} | {name} | {outcome} | {detail.replace('|', '/')} |")
        print(f"{outcome:8s} {kind:12s} {name}")
    text = (
        "# Bad input and faults: how each case ends\n\n"
        f"`python benchmarks/faults.py` ({platform.platform()}, nengojax "
        f"{nengojax.__version__}). Classes as in the script's docstring.\n\n"
        f"{len(CASES)} cases: "
        + ", ".join(f"{k} {counts[k]}" for k in ("error", "kept", "ok", "wrong", "unclear"))
        + ".\n\n| kind | case | outcome | what the user gets |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    path = os.path.join(HERE, "results", "faults.md")
    with open(path, "w") as f:
        f.write(text)
    print(text.split("\n\n")[2])


if __name__ == "__main__":
    main()
