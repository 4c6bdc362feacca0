"""Coming from Nengo to nengojax: the NengoDL tutorial as a script.

Every step of the tutorial "Coming from Nengo to NengoDL", on nengojax:

1. the tutorial network ("compute sin(x^2)") in ``nengo.Simulator`` and in
   ``nengojax.Simulator``: the same output;
2. a minibatch of 3 (three simulations in one call) next to three sequential
   nengo runs;
3. input given at run time: a ramp for one item, then a different ramp per item;
4. removing the synapses (one-step training examples cannot use them);
5. training the encoders and biases only (``configure_settings(trainable=False)``
   then ``net.config[nengo.Ensemble].trainable = True``) with ``sim.fit`` and
   ``optax.rmsprop(0.01)`` on 4096 one-step examples, minibatch 32, 25 epochs;
6. the spiking test error (mse of the last 10 of 100 steps, probe synapse 0.04)
   with ``sim.evaluate`` before and after training; then ``freeze_params`` so
   that plain ``nengo.Simulator`` runs the trained model;
7. a `nengojax.JaxNode` computing ``jnp.exp(x)`` next to a NumPy Node doing the
   same (the tutorial's ``TensorNode``);
8. and, beyond the tutorial, the pure functions underneath: a ``jax.vmap``
   sweep over the output decoders in one call.

Usage: ``python examples/from_nengo.py [--quick] [--outdir DIR]``

``--quick`` runs shorter simulations and trains on fewer examples for fewer
epochs (a few seconds; for CI). Figures go to ``DIR`` (default
``./from_nengo_out``).
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

import nengojax  # noqa: E402

SEED = 0
# NengoDL 3.6 on the same tutorial (seed 0, /work/shared/reference): spiking test
# error before -> after 25 epochs of RMSprop(0.01), and TensorNode vs Node
NENGODL_TEST_ERROR = (0.003992, 0.003652)
NENGODL_TENSORNODE_DIFF = 1.2e-7


def build(seed=SEED):
    """The tutorial network: x -> square (x^2) -> sin (sin(x^2)) -> outpt."""
    with nengo.Network(seed=seed) as net:
        # input node outputting a random signal for x
        inpt = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3), label="inpt")
        square = nengo.Ensemble(20, 1, label="square")  # computes x^2
        sin = nengo.Ensemble(20, 1, label="sin")  # computes sin(x^2)
        outpt = nengo.Node(size_in=1, label="outpt")
        nengo.Connection(inpt, square)
        nengo.Connection(square, sin, function=np.square)
        nengo.Connection(sin, outpt, function=np.sin)
        inpt_p = nengo.Probe(inpt)
        outpt_p = nengo.Probe(outpt, synapse=0.01)
    return net, inpt, outpt, inpt_p, outpt_p


def plot(ax, t, x, y, title):
    ax.plot(t, x, label="x")
    ax.plot(t, np.sin(x**2), label="sin(x^2)")
    ax.plot(t, y, label="output")
    ax.set_title(title)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("value (decoded)")
    ax.legend(loc="upper right", fontsize="small")


def save(fig, outdir, name):
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, name), dpi=70)
    plt.close(fig)


def test_mse(y_true, y_pred):
    """The tutorial's test error: mse of the last 10 steps."""
    return jnp.mean(jnp.square(y_pred[:, -10:] - y_true[:, -10:]))


def main():  # noqa: PLR0915 (one step of the tutorial after the other)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (for CI)")
    parser.add_argument("--outdir", default="from_nengo_out", help="where figures go")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    nengo.rc.set("decoder_cache", "enabled", "False")
    t_start = time.perf_counter()
    run_time = 0.3 if args.quick else 1.0
    n_steps = int(round(run_time / 0.001))
    n_train, epochs, n_test = (512, 3, 128) if args.quick else (4096, 25, 1024)
    minibatch_size, test_steps = 32, 100
    rng = np.random.RandomState(SEED)  # the tutorial's np.random.seed(0)

    net, inpt, outpt, inpt_p, outpt_p = build()

    # 1. the same model in nengo and in nengojax -------------------------------------
    t0 = time.perf_counter()
    with nengo.Simulator(net, seed=SEED, progress_bar=False) as ref:
        ref.run(run_time)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    with nengojax.Simulator(net, seed=SEED, progress_bar=False) as sim:
        sim.run(run_time)
        t_first = time.perf_counter() - t0
        sim.reset()
        t0 = time.perf_counter()
        sim.run(run_time)
        t_second = time.perf_counter() - t0
    diff = np.abs(sim.data[outpt_p] - ref.data[outpt_p]).max()
    print(f"nengo vs nengojax output, max abs diff: {diff:.2e}")
    print(
        f"build+run {run_time} s: nengo {t_ref:.3f} s, nengojax {t_first:.3f} s (incl. "
        f"compile); nengojax second run {t_second * 1e3:.1f} ms"
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    plot(axes[0], ref.trange(), ref.data[inpt_p], ref.data[outpt_p], "nengo.Simulator")
    plot(axes[1], sim.trange(), sim.data[inpt_p], sim.data[outpt_p], "nengojax.Simulator")
    save(fig, args.outdir, "fig01_nengo_vs_nengojax.png")

    # 2. three simulations: one after the other in nengo, one call in nengojax ---------
    reps = 3
    fig, axes = plt.subplots(2, reps, figsize=(13, 5.5), sharey=True)
    t0 = time.perf_counter()
    with nengo.Simulator(net, progress_bar=False) as ref:
        for i in range(reps):
            ref.run(run_time)
            plot(axes[0, i], ref.trange(), ref.data[inpt_p], ref.data[outpt_p], f"nengo run {i}")
            ref.reset(seed=i + 10)
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    with nengojax.Simulator(net, minibatch_size=reps, progress_bar=False) as sim:
        sim.run(run_time)
    t_mb = time.perf_counter() - t0
    for i in range(reps):
        title = f"nengojax minibatch item {i}"
        plot(axes[1, i], sim.trange(), sim.data[inpt_p][i], sim.data[outpt_p][i], title)
    save(fig, args.outdir, "fig02_minibatch3.png")
    spread = np.abs(sim.data[inpt_p][0] - sim.data[inpt_p][1]).max()
    print(
        f"minibatch of 3: probe data shape {sim.data[outpt_p].shape}, items have their "
        f"own input signals (items 0 and 1 differ by up to {spread:.2f}); "
        f"nengo 3 sequential runs {t_seq:.2f} s, nengojax one call {t_mb:.2f} s"
    )

    # 3. input given at run time -----------------------------------------------------------
    ramp = np.linspace(-1, 1, n_steps)[None, :, None]  # (items, steps, dims)
    with nengojax.Simulator(net, progress_bar=False) as sim:
        sim.run(run_time, data={inpt: ramp})
    fig, axes = plt.subplots(1, 1 + reps, figsize=(16, 3.2), sharey=True)
    plot(axes[0], sim.trange(), sim.data[inpt_p], sim.data[outpt_p], "ramp (one item)")
    print(
        f"ramp given at run time: output at the end {sim.data[outpt_p][-1, 0]:.3f} "
        f"(x = 1, sin(x^2) = {np.sin(1):.3f})"
    )
    scales = np.linspace(0.5, 1, reps)
    with nengojax.Simulator(net, minibatch_size=reps, progress_bar=False) as sim:
        sim.run(run_time, data={inpt: scales[:, None, None] * ramp})
    for i in range(reps):
        title = f"minibatch item {i}: ramp x {scales[i]:g}"
        plot(axes[1 + i], sim.trange(), sim.data[inpt_p][i], sim.data[outpt_p][i], title)
        axes[1 + i].set_ylim(-1, 1)
    save(fig, args.outdir, "fig03_ramps.png")
    ends = ", ".join(f"{v:.3f}" for v in sim.data[outpt_p][:, -1, 0])
    print(f"one ramp per item (scaled by 0.5, 0.75, 1): final outputs {ends}")

    # 4. removing synapses --------------------------------------------------------------------
    for conn in net.all_connections:
        conn.synapse = None
    with net:
        outpt_p_nofilt = nengo.Probe(outpt)
    outpt_p.synapse = 0.04
    with nengo.Simulator(net, seed=SEED, progress_bar=False) as ref:
        ref.run(run_time)
    with nengojax.Simulator(net, seed=SEED, progress_bar=False) as sim:
        sim.run(run_time)
    diff = max(np.abs(sim.data[p] - ref.data[p]).max() for p in (outpt_p, outpt_p_nofilt))
    print(f"without synapses, nengo vs nengojax max abs diff: {diff:.2e}")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    plot(ax, sim.trange(), sim.data[inpt_p], sim.data[outpt_p], "no synapses (probe 0.04)")
    save(fig, args.outdir, "fig04_no_synapses.png")

    # 5. training encoders and biases only -------------------------------------------------------
    with net:
        nengojax.configure_settings(trainable=False)
        net.config[nengo.Ensemble].trainable = True
    vals = rng.uniform(-1, 1, size=(n_train, 1, 1))  # n_steps=1: one step per example
    inputs, targets = {inpt: vals}, {outpt_p_nofilt: np.sin(vals**2)}
    test_vals = np.tile(rng.uniform(-1, 1, size=(n_test, 1, 1)), (1, test_steps, 1))
    test_inputs, test_targets = {inpt: test_vals}, {outpt_p: np.sin(test_vals**2)}

    with nengojax.Simulator(
        net, minibatch_size=minibatch_size, seed=SEED, progress_bar=False
    ) as sim:
        print(
            "trainable params:",
            ", ".join(nengojax.training.trainable_keys(sim.compiled, net)),
        )
        # 6. the spiking test error before training
        sim.compile(loss={outpt_p: test_mse})
        t0 = time.perf_counter()
        before = sim.evaluate(test_inputs, test_targets)["loss"]
        t_eval = time.perf_counter() - t0
        show = {inpt: test_vals[:minibatch_size]}
        pred_before = sim.predict(show)[outpt_p]

        sim.compile(optimizer=optax.rmsprop(0.01), loss={outpt_p_nofilt: nengojax.losses.mse})
        t0 = time.perf_counter()
        history = sim.fit(inputs, targets, epochs=epochs, verbose=0)
        t_fit = time.perf_counter() - t0
        losses = history.history["loss"]
        print(
            f"fit: {epochs} epochs x {n_train} examples, minibatch {minibatch_size}, "
            f"optax.rmsprop(0.01): {t_fit:.2f} s (incl. compile); training loss "
            f"{losses[0]:.5f} -> {losses[-1]:.5f}"
        )

        sim.compile(loss={outpt_p: test_mse})
        after = sim.evaluate(test_inputs, test_targets)["loss"]
        pred_after = sim.predict(show)[outpt_p]
        print(
            f"spiking test error ({n_test} items x {test_steps} steps, mse of the last 10): "
            f"before {before:.6f}, after {after:.6f} ({100 * (1 - after / before):.1f} % "
            f"lower; evaluate took {t_eval:.2f} s). NengoDL 3.6 with RMSprop(0.01): "
            f"{NENGODL_TEST_ERROR[0]} -> {NENGODL_TEST_ERROR[1]}"
        )

        sim.run(run_time)  # the trained model on the white-noise input (item 0)
        trained = (sim.trange(), sim.data[inpt_p][0], sim.data[outpt_p][0])

        # ... and back into nengo: write the trained values into the network
        sim.freeze_params(net)

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
    axes[0].semilogy(np.arange(1, len(losses) + 1), losses, "o-")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("MSE loss")
    axes[0].set_title("training loss (rate neurons, 1 step)")
    t_test = (np.arange(test_steps) + 1) * 0.001
    for i, color in zip(range(3), ("C0", "C1", "C2"), strict=True):
        axes[1].plot(t_test, pred_before[i, :, 0], color=color, ls=":", lw=1)
        axes[1].plot(t_test, pred_after[i, :, 0], color=color, lw=1.5)
        axes[1].axhline(np.sin(test_vals[i, 0, 0] ** 2), color=color, ls="--", lw=0.8)
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("output (decoded)")
    axes[1].set_title("spiking test: before (dotted), after, target (dashed)")
    plot(axes[2], *trained, "after training (item 0)")
    save(fig, args.outdir, "fig05_training.png")

    with nengo.Simulator(net, seed=SEED, progress_bar=False) as ref:
        ref.run(run_time)
    with nengojax.Simulator(net, seed=SEED, progress_bar=False) as sim:
        sim.run(run_time)
    diff = np.abs(sim.data[outpt_p] - ref.data[outpt_p]).max()
    print(f"after freeze_params, trained model: nengo vs nengojax max abs diff {diff:.2e}")

    # 7. JAX code inside the model: a JaxNode next to a NumPy Node ---------------------------
    with net:
        exp_np = nengo.Node(lambda t, x: np.exp(x), size_in=1, label="exp_np")
        nengo.Connection(outpt, exp_np)
        np_probe = nengo.Probe(exp_np, synapse=0.01)

        exp_jax = nengojax.JaxNode(lambda t, x: jnp.exp(x), shape_in=(1,), label="exp_jax")
        nengo.Connection(outpt, exp_jax)
        jax_probe = nengo.Probe(exp_jax, synapse=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NumPy node runs through a host callback
        with nengojax.Simulator(net, seed=SEED, progress_bar=False) as sim:
            sim.run(run_time)
    diff = np.abs(sim.data[np_probe] - sim.data[jax_probe]).max()
    print(
        f"JaxNode vs NumPy Node, max abs diff: {diff:.1e} "
        f"(NengoDL TensorNode vs Node: {NENGODL_TENSORNODE_DIFF:.1e})"
    )
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(sim.trange(), np.exp(np.sin(sim.data[inpt_p] ** 2)), label="e^sin(x^2)")
    ax.plot(sim.trange(), sim.data[np_probe], label="Node output")
    ax.plot(sim.trange(), sim.data[jax_probe], "--", label="JaxNode output")
    ax.set_ylim(0.8, 1.4)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("value")
    ax.legend(loc="upper right", fontsize="small")
    save(fig, args.outdir, "fig06_jaxnode.png")

    # 8. the pure functions underneath: a vmapped sweep over the output decoders -------------
    net2, _, _, _, outpt_p2 = build()
    model = nengojax.compile(net2, seed=SEED)
    params, state = model.init_params(), model.init_state()
    key = model.key(net2.all_connections[-1], "weights")

    def output_for(scale):
        prm = dict(params, **{key: params[key] * scale})
        return model.run(prm, state, n_steps)[1][model.key(outpt_p2)]

    outs = jax.jit(jax.vmap(output_for))(np.linspace(0.5, 1.5, 5))
    print(f"vmapped sweep over 5 decoder scales: output shape {outs.shape}")
    print(f"figures written to {args.outdir}; total {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
