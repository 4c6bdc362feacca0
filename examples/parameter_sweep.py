"""Parameter sweeps with the functional API: 64 simulations in one vmapped call.

A communication channel (``stim -> a -> b``) should pass a sine wave through
unchanged. We scale the input current of ensemble ``a`` (its encoders, which
carry the gain, and its biases) by a factor ``s`` and measure how far the
decoded output of ``b`` drifts from the ideal (the input filtered by the same
synapses): the root-mean-square error (RMSE) as a function of ``s``.

1. The 64 values of ``s`` run in ONE call: ``jax.vmap`` over stacked params.
2. The same 64 points run as 64 separate ``model.run`` calls; the script checks
   they agree with the vmapped sweep and prints the speedup.
3. The number of neurons changes the shapes of the params, so it cannot be
   vmapped: that sweep loops over compiles.

Usage: ``python examples/parameter_sweep.py [--quick] [--outdir DIR]``
"""

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402

import nengojax  # noqa: E402

DT = 0.001
N_POINTS = 64


def build(n_neurons=50, seed=0):
    """The channel: a sine wave through two ensembles; probes on both ends."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t), label="stim")
        a = nengo.Ensemble(n_neurons, 1, label="a")
        b = nengo.Ensemble(n_neurons, 1, label="b")
        nengo.Connection(stim, a)  # synapse 0.005 (nengo's default)
        nengo.Connection(a, b)  # synapse 0.005
        p_stim = nengo.Probe(stim)
        p_out = nengo.Probe(b, synapse=0.01)
    return net, a, p_stim, p_out


def ideal(x):
    """The input filtered by the three synapses on its way to the output probe."""
    for tau in (0.005, 0.005, 0.01):
        x = nengo.Lowpass(tau).filt(x, dt=DT, y0=0)
    return x


def best_time(fn, reps):
    """Shortest wall time of ``reps`` calls of ``fn`` (which blocks until done)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (for CI)")
    parser.add_argument("--outdir", default="parameter_sweep_out", help="where figures go")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    nengo.rc.set("decoder_cache", "enabled", "False")
    run_time = 0.5 if args.quick else 2.0
    n_steps = int(round(run_time / DT))
    reps = 2 if args.quick else 5

    net, a, p_stim, p_out = build()
    model = nengojax.compile(net, dt=DT)
    params, state = model.init_params(), model.init_state()
    k_enc, k_bias = model.key(a, "encoders"), model.key(a.neurons, "bias")
    for k in (k_enc, k_bias):
        if k not in params:
            raise RuntimeError(f"{k} is not a param of this compile (params: {sorted(params)})")
    k_out, k_stim = model.key(p_out), model.key(p_stim)

    # the ideal output, from the input the simulation itself sees
    _, probes = model.run(params, state, n_steps)
    target = jnp.asarray(ideal(np.asarray(probes[k_stim])))
    skip = int(0.05 / DT)  # leave out the first 50 ms (the filters settling)

    def rmse_for(scale):
        """RMSE and output trace of one simulation with ``a``'s current scaled."""
        prm = dict(params)
        prm[k_enc] = params[k_enc] * scale
        prm[k_bias] = params[k_bias] * scale
        out = model.run(prm, state, n_steps)[1][k_out]
        return jnp.sqrt(jnp.mean((out[skip:] - target[skip:]) ** 2)), out

    scales = np.linspace(0.25, 2.0, N_POINTS)

    # 1. the whole sweep in one call
    sweep = jax.jit(jax.vmap(rmse_for))
    t0 = time.perf_counter()
    rmse, outs = jax.block_until_ready(sweep(scales))
    t_first = time.perf_counter() - t0
    t_vmap = best_time(lambda: jax.block_until_ready(sweep(scales)), reps)
    rmse, outs = np.asarray(rmse), np.asarray(outs)
    best = int(np.argmin(rmse))
    print(
        f"vmapped sweep: {N_POINTS} points x {n_steps} steps in one call: "
        f"{t_vmap * 1e3:.1f} ms (first call, incl. compile: {t_first:.2f} s)"
    )
    print(
        f"RMSE at scale 1.0: {np.interp(1.0, scales, rmse):.4f}; "
        f"best {rmse[best]:.4f} at scale {scales[best]:.2f}; "
        f"worst {rmse.max():.4f} at scale {scales[np.argmax(rmse)]:.2f}"
    )

    # 2. the same 64 points as separate runs (model.run compiles once, then reuses)
    def separate():
        return [jax.block_until_ready(rmse_for(s)) for s in scales]

    sep = separate()  # warm up
    t_sep = best_time(separate, reps)
    sep_rmse = np.array([float(r) for r, _ in sep])
    sep_outs = np.stack([np.asarray(o) for _, o in sep])
    diff = np.abs(sep_outs - outs).max()
    print(
        f"{N_POINTS} separate model.run calls: {t_sep * 1e3:.1f} ms; "
        f"vmap speedup: {t_sep / t_vmap:.1f}x"
    )
    rmse_diff = np.abs(sep_rmse - rmse).max()
    print(f"vmapped vs separate runs, max abs diff: RMSE {rmse_diff:.1e}, traces {diff:.1e}")
    # (in float32 a spike may move by one step between the two, hence the traces'
    # larger difference on long runs; the RMSEs agree closely)
    assert rmse_diff < 1e-4, "vmapped sweep differs from separate runs"

    # 3. neuron counts change shapes: one compile per count (not vmappable)
    counts = [10, 50, 200] if args.quick else [10, 20, 50, 100, 200, 500]
    count_rmse = []
    for n in counts:
        net_n, _, p_stim_n, p_out_n = build(n_neurons=n)
        m = nengojax.compile(net_n, dt=DT)
        _, pr = m.run(m.init_params(), m.init_state(), n_steps)
        out = np.asarray(pr[m.key(p_out_n)])
        count_rmse.append(float(np.sqrt(np.mean((out[skip:] - target[skip:]) ** 2))))
    by_count = ", ".join(f"{n}: {r:.4f}" for n, r in zip(counts, count_rmse, strict=True))
    print(f"RMSE by neuron count: {by_count}")

    # the figure
    t = (np.arange(n_steps) + 1) * DT
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    axes[0].plot(scales, rmse, ".-")
    axes[0].axvline(1.0, color="gray", lw=0.8, ls="--")
    axes[0].set_xlabel("scale of a's encoders and biases")
    axes[0].set_ylabel("RMSE")
    axes[0].set_title(f"{N_POINTS}-point sweep, one vmapped call")
    axes[1].plot(t, np.asarray(target), "k", lw=2, label="ideal")
    for i in (0, best, N_POINTS - 1):
        axes[1].plot(t, outs[i, :, 0], lw=1, label=f"scale {scales[i]:.2f}")
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("decoded value")
    axes[1].set_title("output of b")
    axes[1].legend(fontsize="small", loc="lower left")
    axes[2].loglog(counts, count_rmse, "o-")
    axes[2].set_xlabel("neurons per ensemble")
    axes[2].set_ylabel("RMSE")
    axes[2].set_title("neuron counts: one compile each")
    fig.tight_layout()
    path = os.path.join(args.outdir, "parameter_sweep.png")
    fig.savefig(path, dpi=70)
    print(f"figure written to {path}")


if __name__ == "__main__":
    main()
