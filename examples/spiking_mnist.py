"""NengoDL's "Optimizing a spiking neural network" (spiking-mnist), ported to nengojax.

The notebook trains a spiking convolutional network on MNIST with NengoDL and
TensorFlow. This port keeps its network, settings and procedure; it differs in

- the package (``nengo_dl`` -> ``nengojax``) and the optimizer
  (``tf.optimizers.RMSprop(0.001)`` -> ``optax.rmsprop(0.001)``);
- the Keras layers, rewritten as JAX functions with their own params
  (``nengojax.Layer(fn)(x, params=...)``): ``Conv2D`` is
  ``lax.conv_general_dilated`` plus a bias, ``Dense`` a matmul plus a bias,
  both with Keras' Glorot-uniform initial kernels and zero biases;
- the data: MNIST needs a download, so scikit-learn's 8x8 digits (shipped with
  it) are upsampled to 28x28 and scaled to MNIST's 0-255 range; 20 % are held
  out for testing, and the 1,437 training images get copies shifted by two
  pixels each way (MNIST has 60,000);
- the notebook downloads trained weights; here the network is always trained
  (``sim.fit``, 10 epochs as in the notebook).

As in the notebook: LIF neurons with ``amplitude=0.01``, ``max_rates`` 100 Hz
and ``intercepts`` 0 from the network config (NengoDL's Layer semantics), no
synapses, ``stateful=False``, minibatches of 200, one-step training examples
(``fit`` runs the rate counterpart of the neurons), sparse categorical
cross-entropy on the unfiltered output probe; testing runs the spiking network
for 30 steps per image and reads the class from the last step of a probe
filtered with a 0.1 s synapse. The rate model's accuracy on the test images is
reported too.

The notebook's pretrained MNIST network tests at ~99 % (spiking); on the
smaller digits data set this port reaches ~98 % rate and ~97 % spiking (the
issue's target: >= 95 % rate, >= 90 % spiking).

Usage: ``python examples/spiking_mnist.py [--quick] [--outdir DIR]``
(``--quick``: one epoch on part of the data and a short test, for CI; no
accuracy target).
"""

import argparse
import os
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from scipy.ndimage import zoom  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import nengojax  # noqa: E402

SEED = 0
MINIBATCH = 200


# --- the Keras layers, as JAX functions -----------------------------------------------


def glorot_uniform(rng, shape, fan_in, fan_out):
    """Keras' default kernel initializer."""
    limit = np.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def conv2d(rng, c_in, filters, kernel_size, strides=1):
    """``tf.keras.layers.Conv2D(filters, kernel_size, strides)`` ("valid" padding,
    channels last) for one image: ``(fn, params)``."""
    shape = (kernel_size, kernel_size, c_in, filters)
    params = {
        "kernel": glorot_uniform(rng, shape, kernel_size**2 * c_in, kernel_size**2 * filters),
        "bias": np.zeros(filters, np.float32),
    }

    def fn(p, x):
        y = jax.lax.conv_general_dilated(
            x[None], p["kernel"], (strides, strides), "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )  # fmt: skip
        return y[0] + p["bias"]

    return fn, params


def dense(rng, n_in, units):
    """``tf.keras.layers.Dense(units)`` on the flattened input: ``(fn, params)``."""
    params = {
        "kernel": glorot_uniform(rng, (n_in, units), n_in, units),
        "bias": np.zeros(units, np.float32),
    }

    def fn(p, x):
        return jnp.ravel(x) @ p["kernel"] + p["bias"]

    return fn, params


# --- the network ------------------------------------------------------------------------


def build_network(seed=SEED):
    """The notebook's network: three conv layers of LIF neurons and a dense readout.

    Returns ``(net, inp, out_p, out_p_filt)``.
    """
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        # defaults that make training smoother (as in the notebook)
        net.config[nengo.Ensemble].max_rates = nengo.dists.Choice([100])
        net.config[nengo.Ensemble].intercepts = nengo.dists.Choice([0])
        net.config[nengo.Connection].synapse = None
        neuron_type = nengo.LIF(amplitude=0.01)

        # no state carried between minibatches is needed here
        nengojax.configure_settings(stateful=False)

        inp = nengo.Node(np.zeros(28 * 28))

        fn, params = conv2d(rng, 1, filters=32, kernel_size=3)
        x = nengojax.Layer(fn)(inp, shape_in=(28, 28, 1), params=params)
        x = nengojax.Layer(neuron_type)(x)

        fn, params = conv2d(rng, 32, filters=64, kernel_size=3, strides=2)
        x = nengojax.Layer(fn)(x, shape_in=(26, 26, 32), params=params)
        x = nengojax.Layer(neuron_type)(x)

        fn, params = conv2d(rng, 64, filters=128, kernel_size=3, strides=2)
        x = nengojax.Layer(fn)(x, shape_in=(12, 12, 64), params=params)
        x = nengojax.Layer(neuron_type)(x)

        fn, params = dense(rng, 5 * 5 * 128, units=10)
        out = nengojax.Layer(fn)(x, shape_in=(5, 5, 128), params=params)

        # unfiltered for training (rates), filtered for testing over time (spikes)
        out_p = nengo.Probe(out, label="out_p")
        out_p_filt = nengo.Probe(out, synapse=0.1, label="out_p_filt")
    return net, inp, out_p, out_p_filt


# --- data -------------------------------------------------------------------------------


def digits_28x28():
    """scikit-learn's digits upsampled to MNIST's size and range: ``(images, labels)``
    with images ``(n, 784)`` in [0, 255]."""
    digits = load_digits()
    images = zoom(digits.images, (1, 3.5, 3.5), order=1)  # (1797, 28, 28)
    images = np.clip(images * (255.0 / 16.0), 0, 255).astype(np.float32)
    return images.reshape(len(images), -1), digits.target


def shifted_copies(images, labels, shift=2):
    """The images plus copies shifted by ``shift`` pixels up, down, left and right
    (zeros fill in): five times the training data (MNIST has 60,000 training
    images, the digits 1,437)."""
    square = images.reshape(-1, 28, 28)
    out = [square]
    for axis, step in [(1, shift), (1, -shift), (2, shift), (2, -shift)]:
        moved = np.roll(square, step, axis=axis)
        edge = [slice(None)] * 3
        edge[axis] = slice(0, step) if step > 0 else slice(step, None)
        moved[tuple(edge)] = 0
        out.append(moved)
    return np.concatenate(out).reshape(-1, 784), np.tile(labels, len(out))


def classification_accuracy(y_true, y_pred):
    """Fraction of items whose last-step output is largest for the target class."""
    return jnp.mean(jnp.argmax(y_pred[:, -1], axis=-1) == y_true[:, -1, 0])


# its targets are integer labels (n_items, n_steps, 1), not outputs' shape: say so
# (nengojax checks targets against the probe's shape otherwise)
classification_accuracy.sparse_labels = True


def rate_accuracy(sim, inp, out_p, images, labels):
    """Accuracy of the rate model (what ``fit`` trains), one step per image."""
    predict = nengojax.training.make_predict_fn(sim.compiled, mode="rate")
    state = sim.compiled.init_state(MINIBATCH)
    key_in, key_out = sim.compiled.key(inp), sim.compiled.key(out_p)
    logits = []
    for start in range(0, len(images), MINIBATCH):
        batch = images[start : start + MINIBATCH]
        pad = np.zeros((MINIBATCH - len(batch), batch.shape[1]), batch.dtype)
        _, probes = predict(sim.params, state, {key_in: np.concatenate([batch, pad])[:, None]}, 1)
        logits.append(np.asarray(probes[key_out][:, 0]))
    return float(np.mean(np.argmax(np.concatenate(logits)[: len(images)], -1) == labels))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short (for CI)")
    parser.add_argument("--outdir", default="spiking_mnist_out", help="where figures go")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--steps", type=int, default=30, help="test presentation steps")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    # fit drops the items past the last whole minibatch of each epoch (it warns)
    warnings.filterwarnings("ignore", message=".*not a multiple of minibatch_size")

    images, labels = digits_28x28()
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, labels, test_size=0.2, random_state=SEED, stratify=labels
    )
    epochs, n_steps = args.epochs, args.steps
    if args.quick:
        train_images, train_labels = train_images[:400], train_labels[:400]
        test_images, test_labels = test_images[:MINIBATCH], test_labels[:MINIBATCH]
        epochs, n_steps = 1, 10
    else:
        train_images, train_labels = shifted_copies(train_images, train_labels)
    # the test set, padded to whole minibatches with copies (not counted below)
    n_test = len(test_images)
    n_pad = -n_test % MINIBATCH
    test_images = np.concatenate([test_images, test_images[:n_pad]])
    test_labels = np.concatenate([test_labels, test_labels[:n_pad]])

    net, inp, out_p, out_p_filt = build_network()
    t0 = time.perf_counter()
    sim = nengojax.Simulator(net, minibatch_size=MINIBATCH, progress_bar=False)
    print(f"Simulator built in {time.perf_counter() - t0:.1f} s")

    # one step per training image; the test images are shown for n_steps steps
    train_x = train_images[:, None, :]
    train_y = train_labels[:, None, None]
    test_x = np.tile(test_images[:, None, :], (1, n_steps, 1))
    test_y = np.tile(test_labels[:, None, None], (1, n_steps, 1))

    def spiking_accuracy():
        sim.compile(loss={out_p_filt: classification_accuracy})
        probes = sim.predict({inp: test_x})
        hits = np.argmax(probes[out_p_filt][:, -1], -1) == test_labels
        return float(np.mean(hits[:n_test])), probes

    before, _ = spiking_accuracy()
    print(f"Accuracy before training (spiking): {before:.4f}")

    sim.compile(
        optimizer=optax.rmsprop(0.001),
        loss={out_p: "sparse_categorical_crossentropy"},
    )
    t0 = time.perf_counter()
    history = sim.fit(train_x, {out_p: train_y}, epochs=epochs, verbose=0)
    t_fit = time.perf_counter() - t0
    n_batches = len(train_x) // MINIBATCH
    print(
        f"fit: {epochs} epochs of {n_batches} minibatches in {t_fit:.1f} s "
        f"(first includes compilation); final loss {history.history['loss'][-1]:.4f}"
    )
    sim.save_params(os.path.join(args.outdir, "mnist_params"))

    rate = rate_accuracy(sim, inp, out_p, test_images[:n_test], test_labels[:n_test])
    spiking, probes = spiking_accuracy()
    print(f"Accuracy after training (rate): {rate:.4f}")
    print(f"Accuracy after training (spiking, {n_steps} steps): {spiking:.4f}")
    # sim.evaluate with the notebook's accuracy "loss" gives the same figure over
    # the padded test set
    sim.compile(loss={out_p_filt: classification_accuracy})
    print(f"evaluate: {sim.evaluate({inp: test_x}, {out_p_filt: test_y})['loss']:.4f}")

    fig, axes = plt.subplots(3, 2, figsize=(8, 9))
    for i in range(3):
        axes[i, 0].imshow(test_images[i].reshape(28, 28), cmap="gray")
        axes[i, 0].set_title(f"label {test_labels[i]}")
        axes[i, 0].axis("off")
        probs = jax.nn.softmax(probes[out_p_filt][i], axis=-1)
        axes[i, 1].plot(np.asarray(probs))
        axes[i, 1].set_xlabel("timestep")
        axes[i, 1].set_ylabel("probability")
    axes[0, 1].legend([str(k) for k in range(10)], loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(args.outdir, "spiking_mnist.png"))
    sim.close()


if __name__ == "__main__":
    main()
