"""A Legendre Memory Unit (LMU) classifying permuted sequential digits.

A port of NengoDL's example "Legendre Memory Units in NengoDL" (its notebook
``docs/examples/lmu.ipynb``) to nengojax. The LMU (Voelker, Kajic and Eliasmith,
NeurIPS 2019) is a recurrent cell whose linear memory ``m`` holds a Legendre
approximation of its input over a sliding window of ``theta`` steps; a
nonlinear hidden state ``h`` reads that memory. As in the notebook, the cell is
a nengo network:

- Nodes ``x`` (the input), ``u`` (``u_t = e_x . x_t``), ``m`` (the memory) and
  ``h`` (a `nengojax.JaxNode` computing ``jnp.tanh``, NengoDL's TensorNode of
  ``tf.nn.tanh``);
- ``m_t = A m_{t-1} + B u_t``: a recurrent Connection ``m -> m`` with
  ``synapse=0`` (a one-step delay) and transform ``A``, and ``u -> m`` with
  transform ``B``; ``A`` and ``B`` are the LMU's continuous-time matrices
  discretised with zero-order hold (``scipy.signal.cont2discrete``, dt = 1
  step) and are not trained;
- ``h_t = tanh(W_x x_t + W_h h_{t-1} + W_m m_t)``: Connections with
  `nengojax.dists.Glorot` transforms (``h -> h`` with ``synapse=0``);
- a linear readout: a Connection ``h -> out`` (Glorot) into a 10-dimensional
  Node (the notebook's readout is such a Connection too, not a Keras layer),
  probed on the last step only (``keep_history=False``).

Training is the notebook's: ``sim.compile`` with ``optax.adam()`` (Keras'
``Adam()`` defaults: learning rate 1e-3), the loss
``"sparse_categorical_crossentropy"`` on the logits of the last step and the
``"accuracy"`` metric, minibatches of 100, ``configure_settings(trainable=None,
stateful=False, keep_history=False)``, ``unroll_simulation=16``.

**Data.** The notebook's psMNIST (784-pixel MNIST images, one pixel per step)
needs a download; here the task is the same on scikit-learn's 8x8 digits
(``sklearn.datasets.load_digits``, 1797 images shipped with scikit-learn):
each image is flattened to 64 pixels (scaled to [0, 1]), a fixed random
permutation of the pixels is applied to every image, and the network sees one
pixel per step, 64 steps; 20 % of the images are held out for testing.

**Sizes.** The notebook's cell has ``units=212``, ``order=256`` and ``theta``
equal to the sequence length (784). Here ``units=212`` and ``theta=64`` (the
sequence length), and ``order=64``: the notebook's order is about a third of
its 784 steps; here 64 Legendre coefficients already hold as many numbers
as the 64-step sequence has, so a higher order would mostly add compute
(``--order`` changes it). Training runs for the notebook's 10
epochs (``--epochs``), on 1437 training images instead of 60000.

**Plain JAX.** `plain_jax_lmu` is the same model written directly in JAX (a
``lax.scan`` over the steps, the parameters in a dict) and
`plain_jax_params` reads that dict from a nengojax Simulator, so the two can
be compared output for output (this script does so on test images) and a
training step of ``sim.fit`` can be timed against a plain JAX + optax one.

Usage: ``python examples/lmu.py [--quick] [--outdir DIR] [--epochs N]``
(``--quick``: a small cell and 3 epochs, for CI; no accuracy target).
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
from scipy.signal import cont2discrete  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import nengojax  # noqa: E402

SEED = 0
MINIBATCH = 100


def lmu_matrices(order, theta):
    """The LMU's ``A`` (``order x order``) and ``B`` (``order x 1``) matrices,
    discretised with zero-order hold for a step of 1 (float64)."""
    q = np.arange(order, dtype=np.float64)
    r = (2 * q + 1)[:, None] / theta
    j, i = np.meshgrid(q, q)
    a = np.where(i < j, -1, (-1.0) ** (i - j + 1)) * r
    b = (-1.0) ** q[:, None] * r
    c = np.ones((1, order))
    d = np.zeros((1,))
    a, b, _, _, _ = cont2discrete((a, b, c, d), dt=1.0, method="zoh")
    return a, b


class LMUCell(nengo.Network):
    """One LMU cell: Nodes ``x`` (input), ``u``, ``m`` (memory) and ``h`` (output),
    connected as in the module docstring."""

    def __init__(self, units, order, theta, input_d, **kwargs):
        super().__init__(**kwargs)
        a, b = lmu_matrices(order, theta)
        with self:
            nengojax.configure_settings(trainable=None)
            self.x = nengo.Node(size_in=input_d)
            self.u = nengo.Node(size_in=1)
            self.m = nengo.Node(size_in=order)
            self.h = nengojax.JaxNode(jnp.tanh, shape_in=(units,), pass_time=False)

            # u_t (the notebook's cell without its e_h, e_m terms)
            self.conn_u = nengo.Connection(
                self.x, self.u, transform=np.ones((1, input_d)), synapse=None
            )
            # m_t = A m_{t-1} + B u_t; synapse=0 delays by one step. A, B are fixed
            self.conn_a = nengo.Connection(self.m, self.m, transform=a, synapse=0)
            self.config[self.conn_a].trainable = False
            self.conn_b = nengo.Connection(self.u, self.m, transform=b, synapse=None)
            self.config[self.conn_b].trainable = False
            # h_t = tanh(W_x x_t + W_h h_{t-1} + W_m m_t)
            glorot = nengojax.dists.Glorot
            self.conn_xh = nengo.Connection(self.x, self.h, transform=glorot(), synapse=None)
            self.conn_hh = nengo.Connection(self.h, self.h, transform=glorot(), synapse=0)
            self.conn_mh = nengo.Connection(self.m, self.h, transform=glorot(), synapse=None)


def build_lmu_network(units=212, order=64, theta=64, input_d=1, n_classes=10, seed=SEED):
    """The network: an input Node, one `LMUCell`, a linear readout.

    Returns ``(net, inp, probe)``: the network, its input Node (size
    ``input_d``) and the Probe of the readout (``n_classes`` logits, last step
    only). ``net.lmu`` is the cell and ``net.readout`` the readout Connection.
    """
    with nengo.Network(seed=seed) as net:
        nengojax.configure_settings(trainable=None, stateful=False, keep_history=False)
        inp = nengo.Node(np.zeros(input_d))
        lmu = LMUCell(units=units, order=order, theta=theta, input_d=input_d)
        conn = nengo.Connection(inp, lmu.x, synapse=None)
        net.config[conn].trainable = False
        out = nengo.Node(size_in=n_classes)
        readout = nengo.Connection(lmu.h, out, transform=nengojax.dists.Glorot(), synapse=None)
        # keep_history=False: the probe keeps the last step (all this task needs);
        # labelled "probe" so that its logs are named as NengoDL names them
        probe = nengo.Probe(out, label="probe")
    net.lmu, net.readout = lmu, readout
    return net, inp, probe


# --- the same model in plain JAX ----------------------------------------------------


def plain_jax_lmu(order, theta, dtype=jnp.float32):
    """The LMU model of `build_lmu_network` in plain JAX.

    Returns ``forward(params, x) -> logits``: ``x`` of shape ``(batch, n_steps,
    input_d)``, the logits ``(batch, n_classes)`` of the last step. ``params``
    is a dict of the trained weights (each ``(n_out, n_in)``, as nengo's
    transforms): ``"u"`` (x -> u), ``"xh"``, ``"hh"``, ``"mh"`` (into ``h``) and
    ``"out"`` (the readout); `plain_jax_params` reads them from a Simulator.
    """
    a, b = lmu_matrices(order, theta)
    a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)

    def forward(params, x):
        x = jnp.asarray(x, dtype)
        batch = x.shape[0]
        units = params["hh"].shape[0]

        def step(carry, x_t):
            m, h = carry
            u = x_t @ params["u"].T
            m = m @ a.T + u @ b.T
            h = jnp.tanh(x_t @ params["xh"].T + h @ params["hh"].T + m @ params["mh"].T)
            return (m, h), None

        init = (jnp.zeros((batch, order), dtype), jnp.zeros((batch, units), dtype))
        (_, h), _ = jax.lax.scan(step, init, jnp.swapaxes(x, 0, 1))
        return h @ params["out"].T

    return forward


def plain_jax_params(sim, net):
    """The trainable weights of `build_lmu_network`'s network in ``sim`` (a
    nengojax Simulator of it), as the params dict of `plain_jax_lmu`."""
    lmu = net.lmu
    conns = {
        "u": lmu.conn_u,
        "xh": lmu.conn_xh,
        "hh": lmu.conn_hh,
        "mh": lmu.conn_mh,
        "out": net.readout,
    }
    return {
        name: jnp.asarray(sim.params[sim.compiled.key(conn, "weights")])
        for name, conn in conns.items()
    }


def plain_jax_train_step(forward, optimizer):
    """A jitted optax training step of `plain_jax_lmu`'s model with the same loss
    as the example (softmax cross-entropy of the last step's logits against
    integer labels, averaged over the minibatch):
    ``step(params, opt_state, x, labels) -> (params, opt_state, loss)``, with
    ``labels`` of shape ``(batch,)`` or ``(batch, 1, 1)``."""

    def loss_fn(params, x, labels):
        logits = forward(params, x)
        labels = jnp.reshape(labels, (-1,)).astype(jnp.int32)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))

    @jax.jit
    def step(params, opt_state, x, labels):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


# --- data -------------------------------------------------------------------------------


def load_data(seed=SEED):
    """Permuted sequential digits: ``(x_train, y_train, x_test, y_test, perm)``.

    Images ``(n, 64, 1)`` (one pixel per step, permuted by ``perm``), labels
    ``(n, 1, 1)`` (the label of the last step, as the probe keeps only that).
    """
    rng = np.random.RandomState(seed)
    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)  # (1797, 64) in [0, 1]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.2, random_state=seed, stratify=digits.target
    )
    perm = rng.permutation(images.shape[1])
    x_train, x_test = x_train[:, perm, None], x_test[:, perm, None]
    return x_train, y_train[:, None, None], x_test, y_test[:, None, None], perm


class EpochTimer(nengojax.callbacks.Callback):
    """Records the wall time of each fit epoch."""

    def __init__(self):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short (for CI)")
    parser.add_argument("--outdir", default="lmu_out", help="where the figure goes")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--units", type=int, default=212, help="hidden units of the cell")
    parser.add_argument("--order", type=int, default=64, help="order of the LMU memory")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    nengo.rc.set("decoder_cache", "enabled", "False")
    # fit drops the items past the last whole minibatch of each epoch (it warns)
    warnings.filterwarnings("ignore", message=".*not a multiple of minibatch_size")
    t_start = time.perf_counter()

    x_train, y_train, x_test, y_test, perm = load_data()
    units, order, epochs = args.units, args.order, args.epochs
    if args.quick:
        x_train, y_train = x_train[:400], y_train[:400]
        units, order, epochs = 32, 16, 3
    n_steps = x_train.shape[1]
    print(
        f"permuted sequential digits: {len(x_train)} training and {len(x_test)} test "
        f"sequences of {n_steps} steps; LMU cell with {units} units, order {order}"
    )

    net, inp, p = build_lmu_network(units=units, order=order, theta=n_steps)
    with nengojax.Simulator(
        net, minibatch_size=MINIBATCH, unroll_simulation=16, seed=SEED, progress_bar=False
    ) as sim:
        sim.compile(
            loss="sparse_categorical_crossentropy",  # from the logits, as Keras' from_logits
            optimizer=optax.adam(1e-3),
            metrics=["accuracy"],
        )
        test_acc = sim.evaluate(x_test, y_test, verbose=0)["probe_accuracy"]
        print(f"Initial test accuracy: {test_acc * 100:.2f}%")

        # the same model in plain JAX gives the same outputs
        forward = plain_jax_lmu(order, n_steps)

        def plain_jax_diff():
            """Max abs difference of the logits of nengojax and plain JAX."""
            x = x_test[:MINIBATCH]
            plain = forward(plain_jax_params(sim, net), x)
            return float(np.max(np.abs(sim.predict(x)[p][:, -1] - plain)))

        print(f"nengojax vs plain JAX forward pass, max abs diff: {plain_jax_diff():.2e}")

        timer = EpochTimer()
        t0 = time.perf_counter()
        history = sim.fit(x_train, y_train, epochs=epochs, callbacks=[timer], verbose=0)
        t_fit = time.perf_counter() - t0
        n_batches = len(x_train) // MINIBATCH
        later = timer.times[1:] or timer.times
        epoch_time = float(np.median(later))
        losses = history.history["loss"]
        print(
            f"fit: {epochs} epochs x {n_batches} minibatches of {MINIBATCH}, optax.adam: "
            f"{t_fit:.1f} s; first epoch (with compilation) {timer.times[0]:.2f} s, then "
            f"{epoch_time:.3f} s per epoch ({1e3 * epoch_time / n_batches:.1f} ms per "
            f"training step); loss {losses[0]:.3f} -> {losses[-1]:.3f}"
        )

        logs = sim.evaluate(x_test, y_test, verbose=0)
        test_acc = logs["probe_accuracy"]
        logits = sim.predict(x_test)[p][:, -1]
        print(f"after training, nengojax vs plain JAX, max abs diff: {plain_jax_diff():.2e}")
    print(f"Final test accuracy: {test_acc * 100:.2f}%")

    # the figure ------------------------------------------------------------------------
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.3), gridspec_kw={"width_ratios": [1, 4, 3, 3]})
    image = np.zeros(64)
    image[perm] = x_test[0, :, 0]  # undo the permutation
    axes[0].imshow(image.reshape(8, 8), cmap="gray")
    axes[0].set_title(f"test image ({y_test[0, 0, 0]})")
    axes[1].imshow(x_test[0].reshape(4, 16), cmap="gray")
    axes[1].set_title("its permuted sequence (in 4 rows)")
    for ax in axes[:2]:
        ax.axis("off")
    axes[2].plot(np.arange(1, len(losses) + 1), losses, "o-", ms=3, label="loss")
    axes[2].plot(
        np.arange(1, len(losses) + 1),
        history.history["probe_accuracy"],
        "o-",
        ms=3,
        label="training accuracy",
    )
    axes[2].set_xlabel("epoch")
    axes[2].set_title("training")
    axes[2].legend()
    correct = np.argmax(logits, -1) == y_test[:, 0, 0]
    per_class = [np.mean(correct[y_test[:, 0, 0] == c]) * 100 for c in range(10)]
    axes[3].bar(np.arange(10), per_class)
    axes[3].set_ylim(0, 100)
    axes[3].set_xticks(np.arange(10))
    axes[3].set_xlabel("digit")
    axes[3].set_ylabel("test accuracy (%)")
    axes[3].set_title(f"test accuracy {test_acc * 100:.1f} %")
    fig.tight_layout()
    path = os.path.join(args.outdir, "lmu.png")
    fig.savefig(path, dpi=70)
    plt.close(fig)
    print(f"figure written to {path}; total {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
