"""Coming from Nengo to nengojax: the tutorial as a script.

Runs the tutorial network ("compute sin(x^2)") in ``nengo.Simulator`` and in
``nengojax.Simulator``, compares their outputs, runs a minibatch of 3, gives a
ramp as input at run time (the same for every item, then one per item),
removes synapses, and shows the pure functional API underneath.

Usage: ``python examples/from_nengo.py [--quick] [--outdir DIR]``
"""

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402

import nengojax  # noqa: E402


def build(seed=0):
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
    return net, inpt, inpt_p, outpt_p


def plot(ax, t, x, y, title):
    ax.plot(t, x, label="x")
    ax.plot(t, np.sin(x**2), label="sin(x^2)")
    ax.plot(t, y, label="output")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (for CI)")
    parser.add_argument("--outdir", default="from_nengo_out", help="where figures go")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    nengo.rc.set("decoder_cache", "enabled", "False")
    run_time = 0.3 if args.quick else 1.0
    n_steps = int(round(run_time / 0.001))

    net, inpt, inpt_p, outpt_p = build()

    # 1. the same model in nengo and in nengojax
    t0 = time.perf_counter()
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run(run_time)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    with nengojax.Simulator(net, seed=0, progress_bar=False) as sim:
        sim.run(run_time)
    t_jax = time.perf_counter() - t0
    diff = np.abs(sim.data[outpt_p] - ref.data[outpt_p]).max()
    print(f"nengo vs nengojax output, max abs diff: {diff:.2e}")
    print(f"build+run {run_time} s: nengo {t_ref:.3f} s, nengojax {t_jax:.3f} s (incl. compile)")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    plot(axes[0], ref.trange(), ref.data[inpt_p], ref.data[outpt_p], "nengo.Simulator")
    plot(axes[1], sim.trange(), sim.data[inpt_p], sim.data[outpt_p], "nengojax.Simulator")
    fig.savefig(os.path.join(args.outdir, "fig01_nengo_vs_nengojax.png"), dpi=80)

    # 2. a minibatch of 3: three simulations in one call
    with nengojax.Simulator(net, minibatch_size=3, seed=0, progress_bar=False) as sim:
        sim.run(run_time)
        print(f"minibatch of 3: probe data shape {sim.data[outpt_p].shape}")

        # 3. input given at run time: a ramp, the same for every item ...
        ramp = np.linspace(0, 1, n_steps)[None, :, None]
        sim.reset()
        sim.run_steps(n_steps, data={inpt: np.tile(ramp, (3, 1, 1))})
        same = np.abs(sim.data[outpt_p][0] - sim.data[outpt_p][2]).max()
        print(f"same ramp for every item: items differ by at most {same:.1e}")

        # ... and a different ramp for each item
        sim.reset()
        sim.run_steps(n_steps, data={inpt: ramp * np.array([1.0, 0.5, -1.0])[:, None, None]})
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
        for i, ax in enumerate(axes):
            plot(ax, sim.trange(), sim.data[inpt_p][i], sim.data[outpt_p][i], f"item {i}")
        fig.savefig(os.path.join(args.outdir, "fig02_ramps_per_item.png"), dpi=80)
        ends = ", ".join(f"{v:.3f}" for v in sim.data[outpt_p][:, -1, 0])
        print(f"one ramp per item: final outputs {ends}")

    # 4. removing synapses (as for training with n_steps=1)
    for conn in net.all_connections:
        conn.synapse = None
    outpt_p.synapse = None
    with nengojax.Simulator(net, seed=0, progress_bar=False) as sim:
        sim.run(run_time)
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run(run_time)
    diff = np.abs(sim.data[outpt_p] - ref.data[outpt_p]).max()
    print(f"without synapses, nengo vs nengojax max abs diff: {diff:.2e}")

    # 5. the pure functions underneath: a vmapped sweep over the output gain
    model = nengojax.compile(net, seed=0)
    params, state = model.init_params(), model.init_state()
    key = model.key(net.all_connections[-1], "weights")

    def output_for(scale):
        prm = dict(params, **{key: params[key] * scale})
        return model.run(prm, state, n_steps)[1][model.key(outpt_p)]

    outs = jax.jit(jax.vmap(output_for))(np.linspace(0.5, 1.5, 5))
    print(f"vmapped sweep over 5 decoder scales: output shape {outs.shape}")
    print(f"figures written to {args.outdir}")


if __name__ == "__main__":
    main()
