"""Accuracy of `nengojax.Converter` on scikit-learn's 8x8 digits.

Trains an Equinox CNN and a Flax NNX MLP in plain JAX, converts each with
`nengojax.Converter` (rate: as trained; spiking: ``jax.nn.relu`` swapped for
`nengo.SpikingRectifiedLinear`, with ``scale_firing_rates`` and a synapse) and
reports test accuracy in nengojax (all 450 test images) and in
``nengo.Simulator`` (a subset). Writes ``benchmarks/results/converter.md``.

Run with ``python benchmarks/converter_digits.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import nengo
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import nengojax  # noqa: E402

N_STEPS = 50
SYNAPSE = 0.005


def data():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    return train_test_split(x, digits.target, test_size=450, random_state=0)


def eqx_cnn(key):
    k = jax.random.split(key, 3)
    return eqx.nn.Sequential(
        [
            eqx.nn.Conv2d(1, 16, 3, padding=1, key=k[0]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.AvgPool2d(2, 2),
            eqx.nn.Lambda(jnp.ravel),
            eqx.nn.Linear(256, 64, key=k[1]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.Linear(64, 10, key=k[2]),
        ]
    )


def flax_mlp(seed):
    rngs = nnx.Rngs(seed)
    return nnx.Sequential(
        nnx.Linear(64, 128, rngs=rngs),
        jax.nn.relu,
        nnx.Linear(128, 64, rngs=rngs),
        jax.nn.relu,
        nnx.Linear(64, 10, rngs=rngs),
    )


def xent(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train_eqx(model, x, y, epochs, seed=0):
    opt = optax.adam(1e-3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = opt.init(params)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            return xent(jax.vmap(eqx.combine(p, static))(xb), yb)

        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state

    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x) - 31, 32):
            idx = order[i : i + 32]
            params, state = step(params, state, x[idx], y[idx])
    return eqx.combine(params, static)


def train_flax(model, x, y, epochs, seed=0):
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        grads = nnx.grad(lambda m: xent(m(xb), yb))(model)
        optimizer.update(model, grads)

    rng = np.random.RandomState(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x) - 31, 32):
            idx = order[i : i + 32]
            step(model, optimizer, x[idx], y[idx])
    return model


def nengojax_accuracy(conv, x, y, n_steps):
    """Accuracy from the output at the last of ``n_steps`` steps per image."""
    flat = x.reshape(len(x), 1, -1)
    with nengojax.Simulator(conv.net, minibatch_size=50, progress_bar=False) as sim:
        out = sim.predict({conv.input: np.tile(flat, (1, n_steps, 1))})[conv.output]
    return float(np.mean(np.argmax(out[:, -1], axis=-1) == y)), out[:, -1]


def nengo_accuracy(conv, x, y, n_steps):
    """The same with ``nengo.Simulator``, one image at a time (state reset)."""
    flat = x.reshape(len(x), -1)
    current = [flat[0]]
    conv.input.output = lambda t: current[0]
    correct = 0
    with nengo.Simulator(conv.net, progress_bar=False) as sim:
        for xi, yi in zip(flat, y, strict=True):
            current[0] = xi
            sim.reset()
            sim.run_steps(n_steps)
            correct += int(np.argmax(sim.data[conv.output][-1]) == yi)
    conv.input.output = np.zeros(flat.shape[1])
    return correct / len(x)


def evaluate(name, model, jax_fn, input_shape, x_test, y_test, n_nengo, scales, lines):
    jax_out = np.asarray(jax_fn(x_test))
    jax_acc = float(np.mean(np.argmax(jax_out, -1) == y_test))
    rate = nengojax.Converter(model, input_shape)
    t0 = time.time()
    rate_acc, rate_out = nengojax_accuracy(rate, x_test, y_test, 1)
    t_rate = time.time() - t0
    diff = float(np.abs(rate_out - jax_out).max())
    rate_nengo = nengo_accuracy(rate, x_test[:n_nengo], y_test[:n_nengo], 1)
    lines.append(f"## {name}\n")
    lines.append(f"- JAX test accuracy: {jax_acc:.4f} (450 images)")
    lines.append(
        f"- rate conversion, nengojax: {rate_acc:.4f} (450 images, {t_rate:.1f} s); "
        f"max |nengojax - JAX| output difference {diff:.2e}"
    )
    lines.append(f"- rate conversion, nengo.Simulator: {rate_nengo:.4f} (first {n_nengo} images)")
    lines.append("")
    lines.append(
        f"Spiking (`SpikingRectifiedLinear`, synapse {SYNAPSE}, {N_STEPS} steps of 1 ms, "
        "output at the last step):\n"
    )
    lines.append("| scale_firing_rates | nengojax (450) | nengo.Simulator (subset) |")
    lines.append("|---|---|---|")
    for scale in scales:
        spk = nengojax.Converter(
            model,
            input_shape,
            swap_activations={jax.nn.relu: nengo.SpikingRectifiedLinear()},
            scale_firing_rates=scale,
            synapse=SYNAPSE,
        )
        spk.net.seed = 0  # initial voltages of the spiking neurons
        acc, _ = nengojax_accuracy(spk, x_test, y_test, N_STEPS)
        acc_nengo = nengo_accuracy(spk, x_test[:n_nengo], y_test[:n_nengo], N_STEPS)
        lines.append(f"| {scale} | {acc:.4f} | {acc_nengo:.4f} ({n_nengo}) |")
        print(name, scale, acc, acc_nengo, flush=True)
    lines.append("")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs and images")
    args = parser.parse_args()
    epochs = 5 if args.quick else 40
    n_nengo = 20 if args.quick else 100
    scales = [100] if args.quick else [20, 50, 100, 200]
    x_train, x_test, y_train, y_test = data()
    lines = [
        "# Converter: scikit-learn digits\n",
        "Generated by `python benchmarks/converter_digits.py`: models trained in plain JAX "
        f"({epochs} epochs of Adam(1e-3), batch 32, on 1347 images), converted with "
        "`nengojax.Converter`, tested on the other 450 images.\n",
    ]
    t0 = time.time()
    cnn = train_eqx(eqx_cnn(jax.random.PRNGKey(0)), x_train[:, None], y_train, epochs)
    evaluate(
        "Equinox CNN (Conv2d 16x3x3 - relu - AvgPool2d - Linear 64 - relu - Linear 10)",
        cnn,
        jax.vmap(cnn),
        (1, 8, 8),
        x_test[:, None],
        y_test,
        n_nengo,
        scales,
        lines,
    )
    mlp = train_flax(flax_mlp(0), x_train.reshape(-1, 64), y_train, epochs)
    evaluate(
        "Flax NNX MLP (Linear 128 - relu - Linear 64 - relu - Linear 10)",
        mlp,
        mlp,
        (64,),
        x_test.reshape(-1, 64),
        y_test,
        n_nengo,
        scales,
        lines,
    )
    lines.append(f"Total time: {time.time() - t0:.0f} s (2-core CPU).")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "converter.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
