"""A ``Simulator.fit`` training step against the same model written in plain JAX.

Two of NengoDL's example models, as ported in ``examples/``:

``conv_net``
    ``examples/spiking_mnist.py``: three conv layers of LIF neurons
    (``amplitude=0.01``, 100 Hz, intercept 0) and a dense readout on 28x28
    images, one-step examples, minibatch 200, RMSprop, sparse categorical
    cross-entropy. The plain JAX model is the same rate network
    (``lax.conv_general_dilated``, nengo's LIF rate with the ensembles' gains,
    per-neuron biases) with the same trainable params (kernels, conv and neuron
    biases, the dense layer).
``lmu``
    ``examples/lmu.py``: an LMU cell (order 64, 212 units) on 64-step permuted
    digits, minibatch 100, Adam; the plain model is the example's
    `plain_jax_lmu` (a ``lax.scan``).

For each, both models start from the same params; their outputs are checked
equal (max abs diff of the logits), then each runs the same minibatches:
``sim.fit`` (one epoch per timing, time per minibatch; the first, compiling,
epoch is not timed) and a jitted plain ``value_and_grad`` + optax step, in
alternation, best of ``--reps``. The issue's target: nengojax within 2x.

Usage: ``python benchmarks/fit_vs_jax.py [--quick] [--reps 3] [--out PATH]``
(writes ``results/fit_vs_jax.md`` and ``.json``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
import warnings

import jax
import jax.numpy as jnp
import nengo
import numpy as np
import optax

import nengojax

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


def _example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _alternate(fns: dict, reps: int) -> dict:
    """Best time of each function, the functions run in alternation."""
    for fn in fns.values():
        fn()  # compile / warm up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _time_epochs(sim, inp, probe, x, y, opt, plain_step, p0, xs, ys, reps) -> dict:
    """Seconds per minibatch of ``sim.fit`` and of the plain step over the same
    minibatches (``xs``, ``ys``: stacked per minibatch), in alternation."""
    n_batches = len(xs)
    state = {"p": p0, "s": opt.init(p0)}

    def plain_epoch():
        p, s = state["p"], state["s"]
        for b in range(n_batches):
            p, s, loss = plain_step(p, s, xs[b], ys[b])
        jax.block_until_ready(loss)
        state["p"], state["s"] = p, s

    sim.compile(optimizer=opt, loss={probe: "sparse_categorical_crossentropy"})

    def nengojax_epoch():
        sim.fit({inp: x}, {probe: y}, epochs=1, verbose=0, shuffle=False)

    times = _alternate({"nengojax": nengojax_epoch, "plain": plain_epoch}, reps)
    sim.close()
    return {k: v / n_batches for k, v in times.items()}


# --- conv net -------------------------------------------------------------------------


def conv_net(n_batches, reps, quick):
    ex = _example("spiking_mnist")
    mb = ex.MINIBATCH
    net, inp, out_p, _ = ex.build_network()
    ens = [e for e in net.all_ensembles]
    convs = [n for n in net.all_nodes if isinstance(n, nengojax.JaxNode)]
    sim = nengojax.Simulator(net, minibatch_size=mb, progress_bar=False)
    key = sim.compiled.key

    images, labels = ex.digits_28x28()
    n_items = n_batches * mb
    idx = np.arange(n_items) % len(images)
    x, y = images[idx][:, None, :], labels[idx][:, None, None]

    # the plain model: the network's rate counterpart, with its params
    gain = [np.asarray(sim.data[e].gain, np.float32) for e in ens]
    strides = [1, 2, 2]
    lif = nengo.LIF(amplitude=0.01)

    def rate(j):
        # nengo's LIFRate: amplitude / (tau_ref + tau_rc log1p(1 / (J - 1))) for J > 1
        jm = jnp.where(j > 1, j - 1, 1.0)
        r = lif.amplitude / (lif.tau_ref + lif.tau_rc * jnp.log1p(1 / jm))
        return jnp.where(j > 1, r, 0.0)

    def forward(p, xb):
        h = xb.reshape(-1, 28, 28, 1)
        for i in range(3):
            h = jax.lax.conv_general_dilated(
                h, p[f"k{i}"], (strides[i], strides[i]), "VALID",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            ) + p[f"c{i}"]  # fmt: skip
            shape = h.shape
            h = rate(gain[i] * h.reshape(len(h), -1) + p[f"b{i}"]).reshape(shape)
        return h.reshape(len(h), -1) @ p["dense"] + p["dense_bias"]

    def params_of(sim):
        p = {}
        for i in range(3):
            p[f"k{i}"] = sim.params[key(convs[i], "params/kernel")]
            p[f"c{i}"] = sim.params[key(convs[i], "params/bias")]
            p[f"b{i}"] = sim.params[key(ens[i].neurons, "bias")]
        p["dense"] = sim.params[key(convs[3], "params/kernel")]
        p["dense_bias"] = sim.params[key(convs[3], "params/bias")]
        return {k: jnp.asarray(v) for k, v in p.items()}

    predict = nengojax.training.make_predict_fn(sim.compiled, mode="rate")
    _, probes = predict(sim.params, sim.compiled.init_state(mb), {key(inp): x[:mb]}, 1)
    diff = float(jnp.max(jnp.abs(probes[key(out_p)][:, 0] - forward(params_of(sim), x[:mb, 0]))))

    opt = optax.rmsprop(0.001)

    def loss_fn(p, xb, yb):
        logits = forward(p, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def plain_step(p, s, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    xs = jnp.asarray(x[:, 0]).reshape(n_batches, mb, -1)
    ys = jnp.asarray(y[:, 0, 0]).reshape(n_batches, mb)
    times = _time_epochs(sim, inp, out_p, x, y, opt, plain_step, params_of(sim), xs, ys, reps)
    return {
        "model": "conv_net (spiking_mnist.py)",
        "minibatch": mb,
        "steps_per_example": 1,
        "max_abs_diff": diff,
        **times,
    }


# --- LMU ------------------------------------------------------------------------------


def lmu(n_batches, reps, quick):
    ex = _example("lmu")
    mb = ex.MINIBATCH
    units, order = (32, 16) if quick else (212, 64)
    net, inp, probe = ex.build_lmu_network(units=units, order=order, theta=64)
    sim = nengojax.Simulator(net, minibatch_size=mb, progress_bar=False)
    x_train, y_train, *_ = ex.load_data()
    n_items = n_batches * mb
    idx = np.arange(n_items) % len(x_train)
    x, y = x_train[idx], y_train[idx]

    forward = ex.plain_jax_lmu(order, 64)
    p0 = ex.plain_jax_params(sim, net)
    logits = sim.predict({inp: x[:mb]})[probe][:, -1]
    diff = float(jnp.max(jnp.abs(logits - forward(p0, x[:mb]))))

    opt = optax.adam(1e-3)
    plain_step = ex.plain_jax_train_step(forward, opt)
    xs = jnp.asarray(x).reshape(n_batches, mb, *x.shape[1:])
    ys = jnp.asarray(y).reshape(n_batches, mb, 1, 1)
    times = _time_epochs(sim, inp, probe, x, y, opt, plain_step, p0, xs, ys, reps)
    return {
        "model": f"lmu (lmu.py, {units} units, order {order})",
        "minibatch": mb,
        "steps_per_example": 64,
        "max_abs_diff": diff,
        **times,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few minibatches (CI)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "fit_vs_jax"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*not a multiple of minibatch_size")
    n_batches = 2 if args.quick else 6
    rows = []
    for bench in (conv_net, lmu):
        row = bench(n_batches, 1 if args.quick else args.reps, args.quick)
        row["ratio"] = row["nengojax"] / row["plain"]
        if row["max_abs_diff"] > 1e-3:  # not the same model: the timings would not compare
            raise SystemExit(f"{row['model']}: logits differ by {row['max_abs_diff']}")
        print(
            f"{row['model']}: nengojax {row['nengojax'] * 1e3:.1f} ms, plain JAX "
            f"{row['plain'] * 1e3:.1f} ms per minibatch: {row['ratio']:.2f}x "
            f"(logits max abs diff {row['max_abs_diff']:.1e})",
            flush=True,
        )
        rows.append(row)
    if args.quick:
        return
    meta = {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, JAX {jax.__version__} "
        f"({jax.default_backend()})",
        "minibatches": n_batches,
        "reps": args.reps,
    }
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [
        "# Training step: `Simulator.fit` vs the same model in plain JAX",
        "",
        f"Machine: {meta['machine']}. Time per minibatch, best of {args.reps} epochs of "
        f"{n_batches} minibatches, the two run in alternation "
        "(`python benchmarks/fit_vs_jax.py`).",
        "",
        "| model | minibatch | steps per example | nengojax fit ms/minibatch | "
        "plain JAX ms/minibatch | ratio | logits max abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['minibatch']} | {r['steps_per_example']} | "
            f"{r['nengojax'] * 1e3:.1f} | {r['plain'] * 1e3:.1f} | {r['ratio']:.2f}x | "
            f"{r['max_abs_diff']:.1e} |"
        )
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
