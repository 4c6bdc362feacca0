"""A spiking convolutional network on scikit-learn's 8x8 handwritten digits.

The network is built from nengo objects: two convolutional layers
(``nengo.Convolution`` transforms into ensembles of spiking
``nengo.SpikingRectifiedLinear`` neurons, made with `nengojax.Layer`) and a
dense readout (a ``nengo.Dense`` transform into an output Node).

1. **Training.** ``sim.fit`` with optax (Adam, softmax cross-entropy) on
   one-step examples: during ``fit`` the spiking neurons run as their rate
   counterparts (``RectifiedLinear``), and the connections have no synapses
   (a one-step example could not use them). The training images are the
   originals plus copies shifted by one pixel.
2. **Rate accuracy.** The trained model in ``"rate"`` mode on the held-out
   images, one step each (`nengojax.training.make_predict_fn`).
3. **Spiking accuracy.** The same network and parameters, rebuilt for spiking:
   each image is shown for ``--steps`` steps, the connections get a short
   synapse (0.005 s), the output probe a longer one (0.02 s), and the class is
   read from the probe's last step (``sim.evaluate`` with a classification-error
   "loss"). Firing rates are scaled: each neuron gets gain ``scale``, its bias
   is multiplied by ``scale`` and its spike amplitude is ``1 / scale``, which
   leaves the rate model unchanged (``relu(scale * (w x + b)) / scale = relu(w x
   + b)``) and makes neurons fire ``scale`` times faster. The spiking accuracy
   is reported for several scales.

The data are ``sklearn.datasets.load_digits`` (1797 images of 8x8 pixels,
shipped with scikit-learn: nothing is downloaded); 20 % are held out for testing.

Usage: ``python examples/spiking_digits.py [--quick] [--outdir DIR]``
(``--quick``: a small network, a few epochs and one scale, for CI; no accuracy
target).
"""

import argparse
import os
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import nengojax  # noqa: E402

SEED = 0
DT = 0.001
MINIBATCH = 32


def glorot(fan_in, fan_out):
    """Glorot-uniform initial weights (nengo's default Uniform(-1, 1) is too wide)."""
    limit = np.sqrt(6 / (fan_in + fan_out))
    return nengo.dists.Uniform(-limit, limit)


def build(filters=(16, 32), scale=1.0, synapse=None, probe_synapse=0.02):
    """The network: returns ``net, input node, probes`` (a dict of probes).

    ``scale`` is the firing-rate scale (gain ``scale``, amplitude ``1 / scale``);
    ``synapse`` is the synapse of every connection (None for training).
    """
    neuron = nengo.SpikingRectifiedLinear(amplitude=1 / scale)
    with nengo.Network(seed=SEED) as net:
        net.config[nengo.Connection].synapse = synapse
        inp = nengo.Node(np.zeros(64), label="pixels")
        shape = (8, 8, 1)
        x = inp
        for i, (n_filters, strides) in enumerate(zip(filters, [(1, 1), (2, 2)], strict=True)):
            conv = nengo.Convolution(
                n_filters,
                shape,
                kernel_size=(3, 3),
                strides=strides,
                init=glorot(9 * shape[2], 9 * n_filters),
            )
            # an Ensemble of spiking neurons, one per output of the convolution
            x, conn = nengojax.Layer(neuron)(
                x,
                transform=conv,
                synapse=synapse,
                gain=nengo.dists.Choice([scale]),
                bias=nengo.dists.Choice([0]),
                label=f"conv{i}",
                return_conn=True,
            )
            # a Layer's input connection is not trained (as in NengoDL); this
            # one holds the convolution's kernel, so train it
            net.config[conn].trainable = True
            shape = conv.output_shape.shape
        n_hidden = int(np.prod(shape))
        out = nengo.Node(size_in=10, label="logits")
        nengo.Connection(x, out, transform=nengo.Dense((10, n_hidden), init=glorot(n_hidden, 10)))
        probes = {
            "out": nengo.Probe(out, label="out"),
            "filtered": nengo.Probe(out, synapse=probe_synapse, label="out_filtered"),
            "spikes": nengo.Probe(x, label="spikes"),  # the last conv layer's neurons
        }
    return net, inp, probes


def shifted(images, labels):
    """The images plus copies shifted by one pixel up, down, left and right."""
    ims = images.reshape(-1, 8, 8)
    out = [ims]
    for axis in (1, 2):
        for step in (-1, 1):
            moved = np.roll(ims, step, axis=axis)
            edge = [slice(None)] * 3
            edge[axis] = 0 if step == 1 else -1
            moved[tuple(edge)] = 0  # what rolled over the edge
            out.append(moved)
    return np.concatenate(out).reshape(-1, 64), np.tile(labels, len(out))


def crossentropy(y_true, y_pred):
    """Softmax cross-entropy of the logits ``y_pred`` against one-hot ``y_true``."""
    return jnp.mean(optax.softmax_cross_entropy(y_pred, y_true))


def error_last_step(y_true, y_pred):
    """Classification error on the last step (the output after the presentation)."""
    return jnp.mean(jnp.argmax(y_pred[:, -1], axis=-1) != jnp.argmax(y_true[:, -1], axis=-1))


def rate_logits(sim, inp, out_p, images):
    """Outputs of the trained model in "rate" mode, one step per image."""
    predict = nengojax.training.make_predict_fn(sim.compiled, mode="rate")
    state = sim.compiled.init_state(MINIBATCH, seed=SEED)
    key_in, key_out = sim.compiled.key(inp), sim.compiled.key(out_p)
    logits = []
    for start in range(0, len(images), MINIBATCH):
        xb = images[start : start + MINIBATCH]
        xb = np.concatenate([xb, np.zeros((MINIBATCH - len(xb), 64), xb.dtype)])
        _, probes = predict(sim.params, state, {key_in: xb[:, None, :]}, 1)
        logits.append(np.asarray(probes[key_out][:, 0]))
    return np.concatenate(logits)[: len(images)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short (for CI)")
    parser.add_argument("--outdir", default="spiking_digits_out", help="where figures go")
    parser.add_argument("--steps", type=int, default=60, help="presentation steps (spiking)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    nengo.rc.set("decoder_cache", "enabled", "False")
    # fit drops the items past the last whole minibatch of each epoch (it warns)
    warnings.filterwarnings("ignore", message=".*not a multiple of minibatch_size")
    t_start = time.perf_counter()

    digits = load_digits()
    images = digits.data.astype(np.float32) / 16.0  # (1797, 64) in [0, 1]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.2, random_state=SEED, stratify=digits.target
    )
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:512], y_train[:512], x_test[:64], y_test[:64]
        filters, epochs, steps, scales, main_scale = (4, 8), 3, 20, [100.0], 100.0
    else:
        x_train, y_train = shifted(x_train, y_train)
        filters, epochs, steps = (16, 32), args.epochs, args.steps
        scales, main_scale = [10.0, 20.0, 50.0, 100.0, 200.0], 100.0
    onehot = np.eye(10, dtype=np.float32)
    print(
        f"digits: {len(x_train)} training images (with shifted copies), {len(x_test)} "
        f"held-out test images; convolution filters {filters}"
    )

    # 1. training: one step per image, spiking neurons run as rate neurons --------------
    net, inp, probes = build(filters)
    n_neurons = sum(e.n_neurons for e in net.all_ensembles)
    with nengojax.Simulator(net, minibatch_size=MINIBATCH, seed=SEED, progress_bar=False) as sim:
        n_updates = epochs * (len(x_train) // MINIBATCH)
        sim.compile(
            optimizer=optax.adam(
                optax.cosine_decay_schedule(1e-2 if args.quick else 3e-3, n_updates)
            ),
            loss={probes["out"]: crossentropy},
        )
        t0 = time.perf_counter()
        history = sim.fit(
            {inp: x_train[:, None, :]},
            {probes["out"]: onehot[y_train][:, None, :]},
            epochs=epochs,
            verbose=0,
        )
        t_fit = time.perf_counter() - t0
        losses = history.history["loss"]
        print(
            f"fit: {n_neurons} neurons, {epochs} epochs x {len(x_train)} images, minibatch "
            f"{MINIBATCH}, optax.adam: {t_fit:.1f} s (incl. compile); loss "
            f"{losses[0]:.3f} -> {losses[-1]:.3f}"
        )
        # 2. rate accuracy
        rate_acc = float(
            np.mean(np.argmax(rate_logits(sim, inp, probes["out"], x_test), -1) == y_test)
        )
        trained = dict(sim.params)
    print(f"rate accuracy on the test set: {100 * rate_acc:.1f} %")

    # 3. spiking accuracy at several firing-rate scales ----------------------------------
    test_x = np.tile(x_test[:, None, :], (1, steps, 1))
    test_y = np.tile(onehot[y_test][:, None, :], (1, steps, 1))
    spiking = {}
    for scale in scales:
        snet, sinp, sprobes = build(filters, scale, synapse=0.005)
        with nengojax.Simulator(
            snet, minibatch_size=MINIBATCH, seed=SEED, progress_bar=False
        ) as ssim:
            # the trained params; biases are currents, so they scale with the gains
            ssim.params = {k: v * scale if k.endswith(".bias") else v for k, v in trained.items()}
            ssim.compile(loss={sprobes["filtered"]: error_last_step})
            t0 = time.perf_counter()
            err = ssim.evaluate({sinp: test_x}, {sprobes["filtered"]: test_y})["loss"]
            t_eval = time.perf_counter() - t0
            pred = ssim.predict({sinp: test_x[:MINIBATCH]})
        spikes = pred[sprobes["spikes"]] * DT * scale  # spikes per step (amplitude 1/scale)
        rate_hz = float(np.mean(spikes) / DT)
        spiking[scale] = (1 - err, rate_hz, pred[sprobes["filtered"]], spikes)
        print(
            f"spiking accuracy, scale {scale:g}: {100 * (1 - err):.1f} % "
            f"({steps} steps per image, mean rate of the last conv layer {rate_hz:.0f} Hz; "
            f"evaluate {t_eval:.1f} s)"
        )
    spike_acc = spiking[main_scale][0]
    print(
        f"test accuracy: rate {100 * rate_acc:.1f} %, spiking {100 * spike_acc:.1f} % "
        f"(scale {main_scale:g}, {steps} steps of {DT * 1e3:g} ms)"
    )

    # the figure ----------------------------------------------------------------------------
    fig, axes = plt.subplots(
        1, 5, figsize=(17, 3.3), gridspec_kw={"width_ratios": [3, 3, 1.2, 3, 3]}
    )
    axes[0].plot(np.arange(1, len(losses) + 1), losses, "o-")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].set_title("training loss (rate neurons)")
    accs = [100 * spiking[s][0] for s in scales]
    axes[1].semilogx(scales, accs, "o-", label="spiking")
    axes[1].axhline(100 * rate_acc, color="k", ls="--", lw=1, label="rate")
    axes[1].set_xlabel("firing-rate scale")
    axes[1].set_ylabel("test accuracy (%)")
    axes[1].set_title(f"accuracy ({steps} steps per image)")
    axes[1].legend(loc="lower right")
    axes[2].imshow(x_test[0].reshape(8, 8), cmap="gray_r")
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    axes[2].set_title(f"test image (label {y_test[0]})")
    _, _, outputs, spikes = spiking[main_scale]
    t = (np.arange(steps) + 1) * DT * 1e3
    for digit in range(10):
        axes[3].plot(
            t, outputs[0, :, digit], lw=2.5 if digit == y_test[0] else 1, label=str(digit)
        )
    axes[3].set_title("its spiking output (thick: the label)")
    axes[3].set_xlabel("time (ms)")
    axes[3].set_ylabel("output (filtered)")
    axes[3].legend(title="digit", fontsize="x-small", ncol=2, loc="upper left")
    active = np.flatnonzero(spikes[0].sum(0))[:50]
    tt, nn = np.nonzero(spikes[0][:, active])
    axes[4].scatter(t[tt], nn, s=6, marker="|")
    axes[4].set_xlabel("time (ms)")
    axes[4].set_ylabel("neuron")
    axes[4].set_title(f"spikes of 50 neurons (scale {main_scale:g})")
    fig.tight_layout()
    path = os.path.join(args.outdir, "spiking_digits.png")
    fig.savefig(path, dpi=70)
    plt.close(fig)
    print(f"figure written to {path}; total {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
