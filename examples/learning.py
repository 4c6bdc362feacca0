"""Learning x -> x^2 two ways: online with PES, and offline with ``fit``.

The network is a channel ``stim -> pre -> post`` of spiking LIF ensembles
(100 neurons each) whose ``pre -> post`` connection starts out computing
nothing (zero decoders) and has to learn ``f(x) = x^2``. The input is a smooth
random signal spread evenly over [-1, 1].

1. **Online (PES).** nengo's PES rule changes the decoders while the simulation
   runs, driven by an error ensemble computing ``post - f(stim)`` (``f(stim)``
   comes from a `nengojax.JaxNode`). After the learning period (100 s) the
   error ensemble is inhibited, so learning stops, and the network is tested on
   the next 10 s of the signal. Learning and testing are one
   ``nengojax.Simulator.run_steps`` call (jitted ``lax.scan`` loops).
2. **Offline (fit).** The same network without the learning rule (the same
   ``pre`` and ``post`` neurons): only the ``pre -> post`` decoders are
   trainable (``configure_settings(trainable=False)`` and
   ``net.config[conn].trainable = True``); ``sim.fit`` trains them with optax
   on one-step examples ``x -> x^2`` (rate neurons, synapses removed).
   ``freeze_params`` writes them into the network, which is then tested with
   its synapses back, spiking, on the same test signal.

The error is the RMSE between ``post``'s decoded output and ``x^2`` filtered by
the same synapses, over the test period. The figure shows PES's error while it
learns, both outputs in the test period, and the function each set of decoders
reads out of ``pre`` (its tuning curves times the decoders).

Usage: ``python examples/learning.py [--quick] [--outdir DIR] [--t-learn S]
[--pes-rate R]`` (``--quick``: 4 s of learning, few examples; for CI).
"""

import argparse
import math
import os
import time

import matplotlib

matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import nengojax  # noqa: E402

SEED = 0
DT = 0.001
N_NEURONS = 100
SYNAPSE = 0.005  # of every connection (nengo's default)
PROBE_SYNAPSE = 0.01


def target(x):
    return np.square(x)


def build(learning, t_learn=0.0, learning_rate=1e-4):
    """The channel; with ``learning``, a PES rule and an error ensemble that is
    inhibited from ``t_learn`` on. Returns ``net, stim, conn, post_p``."""
    with nengo.Network(seed=SEED) as net:
        stim = nengo.Node(np.zeros(1), label="stim")  # the input is given at run time
        # own seeds: the same neurons with and without the learning rule
        pre = nengo.Ensemble(N_NEURONS, 1, label="pre", seed=SEED + 1)
        post = nengo.Ensemble(N_NEURONS, 1, label="post", seed=SEED + 2)
        nengo.Connection(stim, pre, synapse=SYNAPSE)
        conn = nengo.Connection(
            pre,
            post,
            function=lambda x: [0.0],  # start from zero decoders
            synapse=SYNAPSE,
            learning_rule_type=nengo.PES(learning_rate=learning_rate) if learning else None,
        )
        if learning:
            error = nengo.Ensemble(N_NEURONS, 1, label="error")
            nengo.Connection(post, error, synapse=SYNAPSE)
            # the target f(x), computed in JAX inside the model (a connection function
            # on a Node would run on the host every step, which is slow)
            f_x = nengojax.JaxNode(lambda t, x: jnp.square(x), shape_in=(1,), label="f(x)")
            nengo.Connection(stim, f_x, synapse=None)
            nengo.Connection(f_x, error, transform=-1, synapse=SYNAPSE)
            nengo.Connection(error, conn.learning_rule, synapse=SYNAPSE)
            # stop learning at t_learn: strong inhibition silences the error ensemble
            stop = nengo.Node(lambda t: float(t >= t_learn), label="stop")
            nengo.Connection(stop, error.neurons, transform=-20 * np.ones((N_NEURONS, 1)))
        post_p = nengo.Probe(post, synapse=PROBE_SYNAPSE)
    return net, stim, conn, post_p


def ideal(x):
    """``f(x)`` through the synapses between ``stim`` and the probe."""
    y = target(nengo.Lowpass(SYNAPSE).filt(x, dt=DT, y0=0))
    for tau in (SYNAPSE, PROBE_SYNAPSE):
        y = nengo.Lowpass(tau).filt(y, dt=DT, y0=0)
    return y


def rmse(a, b):
    return float(np.sqrt(np.mean(np.square(a - b))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (for CI)")
    parser.add_argument("--outdir", default="learning_out", help="where figures go")
    parser.add_argument("--t-learn", type=float, default=100.0, help="PES learning time (s)")
    parser.add_argument("--pes-rate", type=float, default=1e-4, help="PES learning rate")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    nengo.rc.set("decoder_cache", "enabled", "False")
    t_start = time.perf_counter()
    t_learn, t_test = (4.0, 2.0) if args.quick else (args.t_learn, 10.0)
    n_learn, n_test = int(round(t_learn / DT)), int(round(t_test / DT))
    n_items, epochs = (256, 5) if args.quick else (4096, 20)

    # the input: a band-limited white signal, passed through its own normal CDF so
    # that its values spread evenly over [-1, 1] (as the offline examples do)
    process = nengo.processes.WhiteSignal(t_learn + t_test, high=1.0, rms=1.0, seed=SEED)
    x = np.vectorize(math.erf)(process.run(t_learn + t_test, dt=DT) / np.sqrt(2))
    y_ideal = ideal(x)
    test = slice(n_learn, n_learn + n_test)
    t = (np.arange(n_learn + n_test) + 1) * DT

    # 1. online: PES ------------------------------------------------------------------------
    net, stim, conn, post_p = build(learning=True, t_learn=t_learn, learning_rate=args.pes_rate)
    with net:
        weights_p = nengo.Probe(conn, "weights", sample_every=t_learn)
    t0 = time.perf_counter()
    with nengojax.Simulator(net, seed=SEED, progress_bar=False) as sim:
        sim.run_steps(n_learn + n_test, data={stim: x[None]})
    t_pes = time.perf_counter() - t0
    y_pes = sim.data[post_p]
    pes_decoders = sim.data[weights_p][0]  # at the end of learning, (1, N_NEURONS)
    err_pes = rmse(y_pes[test], y_ideal[test])
    print(f"before learning (zero decoders): test RMSE {rmse(0, y_ideal[test]):.4f}")
    print(
        f"PES (online): {t_learn:g} s of learning + {t_test:g} s of testing in one run, "
        f"{t_pes:.2f} s wall time (incl. compile); test RMSE {err_pes:.4f}"
    )

    # 2. offline: fit ------------------------------------------------------------------------
    net2, stim2, conn2, post_p2 = build(learning=False)
    with net2:
        nengojax.configure_settings(trainable=False)
        net2.config[conn2].trainable = True
    synapses = {c: c.synapse for c in net2.all_connections}
    for c in net2.all_connections:
        c.synapse = None  # one-step examples: no synapses
    post_p2.synapse = None
    rng = np.random.RandomState(SEED)
    xs = rng.uniform(-1, 1, size=(n_items, 1, 1))
    t0 = time.perf_counter()
    with nengojax.Simulator(net2, minibatch_size=32, seed=SEED, progress_bar=False) as sim:
        # decoders multiply firing rates of ~100 Hz: small steps, decaying to zero
        n_updates = epochs * (n_items // 32)
        optimizer = optax.adam(optax.cosine_decay_schedule(1e-4, n_updates))
        sim.compile(optimizer=optimizer, loss={post_p2: nengojax.losses.mse})
        history = sim.fit({stim2: xs}, {post_p2: target(xs)}, epochs=epochs, verbose=0)
        fit_decoders = np.asarray(sim.params[sim.compiled.key(conn2, "weights")])
        sim.freeze_params(net2)
    t_fit = time.perf_counter() - t0
    losses = history.history["loss"]
    for c, syn in synapses.items():
        c.synapse = syn
    post_p2.synapse = PROBE_SYNAPSE
    with nengojax.Simulator(net2, seed=SEED, progress_bar=False) as sim:
        sim.run_steps(n_learn + n_test, data={stim2: x[None]})
    y_fit = sim.data[post_p2]
    err_fit = rmse(y_fit[test], y_ideal[test])
    print(
        f"fit (offline): {epochs} epochs x {n_items} examples, {t_fit:.2f} s (incl. compile); "
        f"training loss {losses[0]:.4f} -> {losses[-1]:.5f}; test RMSE {err_fit:.4f}"
    )
    print(f"test RMSE of x -> x^2 over {t_test:g} s: PES {err_pes:.4f}, fit {err_fit:.4f}")

    # the decoded function over x: activities of pre (rate, as nengo computes them)
    with nengo.Simulator(net2, progress_bar=False) as ref:
        xx = np.linspace(-1, 1, 201)
        _, acts = nengo.utils.ensemble.tuning_curves(net2.ensembles[0], ref, inputs=xx[:, None])
    # the same pre ensemble in both networks (same seed): decode with each set of decoders
    curve_pes = acts @ pes_decoders.T
    curve_fit = acts @ fit_decoders.T

    # the figure ---------------------------------------------------------------------------
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.4), gridspec_kw={"width_ratios": [3, 2, 1.5]})
    win = int(2.0 / DT)
    err_t = np.sqrt(
        np.convolve(np.square(y_pes[:, 0] - y_ideal[:, 0]), np.ones(win) / win, mode="same")
    )
    axes[0].plot(t, err_t)
    axes[0].axvline(t_learn, color="k", ls="--", lw=1)
    axes[0].set_xlabel("time (s)")
    axes[0].set_ylabel("RMSE (2 s window)")
    axes[0].set_title("PES: error while learning (dashed: learning stops)")
    tt = t[test]
    axes[1].plot(tt, x[test], lw=0.8, color="gray", label="x")
    axes[1].plot(tt, y_ideal[test], "k", lw=2, label="x^2 (filtered)")
    axes[1].plot(tt, y_pes[test], label=f"PES ({err_pes:.3f})")
    axes[1].plot(tt, y_fit[test], label=f"fit ({err_fit:.3f})")
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("decoded value")
    axes[1].set_title("test: decoded output of post (RMSE)")
    axes[1].legend(fontsize="small", loc="lower left")
    axes[2].plot(xx, target(xx), "k", lw=2, label="x^2")
    axes[2].plot(xx, curve_pes, label="PES")
    axes[2].plot(xx, curve_fit, label="fit")
    axes[2].set_xlabel("x")
    axes[2].set_ylabel("f(x)")
    axes[2].set_title("learned decoders: f(x)")
    axes[2].legend(fontsize="small")
    fig.tight_layout()
    path = os.path.join(args.outdir, "learning.png")
    fig.savefig(path, dpi=70)
    plt.close(fig)
    print(f"figure written to {path}; total {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
