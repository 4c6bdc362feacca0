"""Training SPA models with temporal dynamics: NengoDL's spa-memory notebook.

A port of NengoDL's notebook ``docs/examples/spa-memory.ipynb`` ("Optimizing a
cognitive model with temporal dynamics") to nengojax. The models, data and
training procedure are the notebook's; what changes:

- ``nengo_dl`` -> ``nengojax``; ``tf.optimizers.RMSprop(1e-4)`` ->
  ``optax.rmsprop(1e-4)``; ``tf.losses.mse`` -> ``nengojax.losses.mse``;
- ``nengo_dl.losses.nan_mse`` -> `nan_mse` below, NengoDL's function written
  in JAX: the mean over *all* entries, NaN targets counting as zero error.
  ``nengojax.losses.nan_mse`` is not the same: it averages over the non-NaN
  targets only, so here (30 of 50 steps have targets) its values are NengoDL's
  divided by 0.6, and in training the output term would weigh 5/3 times as
  much against the two 0.25-weighted terms (see the figures);
- the semantic pointers still come from nengo's legacy ``nengo.spa`` (in nengo
  4.1 too), as in the notebook. With ``max_similarity=1`` the first candidate
  pointer is always taken, so a vocabulary's contents never change the
  vectors: part 2's training set (whose vocabulary is not used) is drawn with
  one small vocabulary per example from the same RandomState, the same numbers
  in linear instead of quadratic time (``shared_vocab=False``);
- the notebook downloads pretrained parameters by default; this script always
  takes its ``do_training=True`` path, saves the parameters with
  ``sim.save_params`` and loads them into a new Simulator with
  ``sim.load_params``, as the notebook does.

Part 1, a memory: a 32-d semantic pointer is presented for 10 ms to an
ensemble of 96 rectified linear neurons with a recurrent connection
(synapse 10 ms), which should hold it for 40 more ms. Test: 32 items; training:
mse against a ramp-then-hold target, RMSprop(1e-4), minibatch 32, 4000
examples, 100 epochs (50 steps each, backpropagation through time). The
figure is the test loss (``sim.evaluate``) before and after training.

Part 2, memory plus binding: two role/filler pairs are presented one after the
other (10 ms each), bound by a circular convolution network, summed in a
memory; then a cue (one of the roles) is presented for 30 ms and a second
circular convolution (with the inverse cue) should output the cued filler.
64 dimensions, 3 neurons per dimension, minibatch 64, no synapses but the
memory's. Training: ``nan_mse`` (targets are NaN before the cue) on the
output, plus targets for the bound pairs and the memory contents with
``loss_weights`` 0.25, RMSprop(1e-4), 10 epochs. The figure is the retrieval
accuracy on 64 test items: the fraction whose output at the last step is most
similar to the cued filler among all the test vocabulary's vectors.

Figures
-------
The notebook's stored outputs are stripped (in every revision of NengoDL's
repository) and its default path loads downloaded parameters, so it prints no
trained figures; its text says the untrained memory is "not particularly
stable" and training improves it "significantly", and that the retrieval
accuracy goes from "poor" to "much higher". Its code, run with
``do_training=True`` on NengoDL 3.6 (TensorFlow 2.12, nengo 3.2, legacy
``nengo.spa``) on the same 2-core machine, and this script's figures (float32,
seed 0, the same data):

=============================================  ==================  ==================
                                               NengoDL 3.6         nengojax
=============================================  ==================  ==================
part 1 test loss (mse), untrained              0.010274            0.010274
part 1 test loss, trained (100 epochs)         8.60e-05            6.18e-05
part 1 ``fit``, 100 x 4000 items x 50 steps    1088 s (*)          25 s (*)
part 2 retrieval accuracy, untrained           0.031 (2/64)        0.031 (2/64)
part 2 test loss (``nan_mse``), untrained      0.019673            0.019673
part 2 training loss, epochs 1, 2 and 10       0.0214, 0.0173,     0.0201, 0.0162,
                                               0.0143              0.0134
part 2 test loss, trained (10 epochs)          0.008520            0.008125
part 2 retrieval accuracy, trained             0.234 (15/64)       0.469 (30/64)
part 2 ``fit``, 10 x 8000 items x 50 steps     3095 s (*)          180 s (*)
=============================================  ==================  ==================

(*) NengoDL ran niced next to other work, nengojax on an idle machine with its
on-disk compilation cache warm (287-330 s next to NengoDL): compare loosely.
On a first run part 2's ``fit`` adds about 90 s of XLA compilation, which
grows with the number of trainable arrays (2130 here).

nengojax trains a little faster per epoch (training losses 6 %, the test
loss 5 % lower), and the accuracy, counted on 64 items, is more sensitive than the
loss: 0.47 against NengoDL's 0.23, both from 0.03. Keras' RMSprop update
(``optax.rmsprop(1e-4, eps=1e-7, eps_in_sqrt=False)``) trains faster still
(test loss 0.00790, accuracy 0.70), and ``nengojax.losses.nan_mse`` in place
of NengoDL's `nan_mse` gives 0.59 (test loss by that measure 0.0328 ->
0.0134). Part 1's test items are the first 32 training items (both are drawn
from vocabulary seed 0, as in the notebook).

``--quick`` (part 1: 512 items, 10 epochs; part 2: 16 dimensions, 640 items,
3 epochs; about 35-40 s in all): part 1 test loss 0.0103 -> 0.0090, part 2
test loss 0.071 -> 0.058 (accuracy 0.047 both: too little training to show).
The full procedure runs in 4-6 minutes here (7 next to other work), so
nothing is scaled down.

Note: nengo's operator merger stores the weights of 5 of part 2's 1608
connections once with an equal weight of another connection, so each pair is
trained as one value, and ``sim.compile`` warns that they are trained tied
(`nengojax.training.untrainable` lists them): scalar weights between
passthrough Nodes inside the ``nengo.networks.Product`` of the circular
convolutions (``connection_10``: ``input_b -> sq1/sq2`` input in the binding
network; ``connection_810``, ``connection_811``: ``input_a``/``input_b`` ->
``sq1/sq2`` inputs, and ``connection_814``, ``connection_815``: ``sq1/sq2``
``square`` outputs -> the product's output, in the unbinding network; all tied
to ``connection_9``, ``connection_13`` or ``connection_14``). NengoDL trains
these 5 scalars apart; ``nengojax.Simulator(net, optimize=False)`` would.
Part 1 has none.

Usage: ``python examples/spa_memory.py [--quick] [--outdir DIR]``
(``--quick``: fewer training examples and epochs, for the tests).
"""

import argparse
import os
import shutil
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from nengo import spa  # noqa: E402

import nengojax  # noqa: E402

SEED = 0
DT = 0.001


def new_vocab(vec_d, rng):
    """A vocabulary that makes each new pointer from ``rng`` when first used."""
    return spa.Vocabulary(dimensions=vec_d, rng=rng, max_similarity=1)


# --- part 1: a memory ------------------------------------------------------------------


def get_memory_data(n_inputs, vec_d, vocab_seed, presentation_time, delay_time, dt=DT):
    """Inputs (a pointer for ``presentation_time``, then zeros) and targets (a ramp
    up to the pointer, then the pointer held), ``(n_inputs, n_steps, vec_d)`` each.

    Returns ``inputs, outputs, vocab``.
    """
    int_steps = int(presentation_time / dt)
    n_steps = int_steps + int(delay_time / dt)
    vocab = new_vocab(vec_d, np.random.RandomState(vocab_seed))
    inputs = np.zeros((n_inputs, n_steps, vec_d))
    outputs = np.zeros((n_inputs, n_steps, vec_d))
    for n in range(n_inputs):
        name = f"SP_{n}"
        vocab.add(name, vocab.create_pointer())
        inputs[n, :int_steps] = vocab[name].v
        outputs[n] = vocab[name].v
    # the target rises linearly while the pointer is presented, then holds
    ramp = np.concatenate([np.arange(int_steps) / int_steps, np.ones(n_steps - int_steps)])
    return inputs, outputs * ramp[None, :, None], vocab


def build_memory(dims=32, t_int=0.01, tau=0.01, seed=SEED):
    """Part 1's network: returns ``net, sp_input, sp_probe, memory_probe``."""
    with nengo.Network(seed=seed) as net:
        net.config[nengo.Ensemble].neuron_type = nengo.RectifiedLinear()
        net.config[nengo.Ensemble].gain = nengo.dists.Choice([1])
        net.config[nengo.Ensemble].bias = nengo.dists.Choice([0])
        sp_input = nengo.Node(np.zeros(dims), label="sp_input")
        memory = nengo.Ensemble(3 * dims, dims, label="memory")
        # the input, scaled so that t_int of it integrates to the pointer
        nengo.Connection(sp_input, memory, transform=tau / t_int, synapse=tau)
        nengo.Connection(memory, memory, transform=1, synapse=tau)
        sp_probe = nengo.Probe(sp_input, label="sp_probe")
        memory_probe = nengo.Probe(memory, label="memory_probe")
    return net, sp_input, sp_probe, memory_probe


def plot_memory_example(axes, trange, vocab, inputs, targets, output, item=0):
    """Similarity of the input, target and output of one item to every pointer."""
    name = f"SP_{item}"
    for ax, data, label in zip(
        axes,
        (inputs[item], targets[item], output[item]),
        ("input", "target", "output"),
        strict=True,
    ):
        ax.plot(trange, spa.similarity(data, vocab), color="k", alpha=0.2)
        ax.plot(trange, spa.similarity(data, vocab[name].v), label=name)
        ax.legend(fontsize="x-small", loc="right")
        ax.set_ylim(-0.2, 1.1)
        ax.set_ylabel(label)
    axes[-1].set_xlabel("time (s)")


def run_memory(quick=False, outdir=None, n_train=None, epochs=None, verbose=0):
    """Part 1; returns a dict of figures."""
    t_int, t_mem, dims, minibatch = 0.01, 0.04, 32, 32
    n_train = n_train or (512 if quick else 4000)
    epochs = epochs or (10 if quick else 100)
    r = {"n_train": n_train, "epochs": epochs}
    param_dir = outdir or tempfile.mkdtemp()  # where save_params writes
    net, sp_input, _, memory_probe = build_memory(dims, t_int)
    test_inputs, test_targets, test_vocab = get_memory_data(minibatch, dims, SEED, t_int, t_mem)

    # the untrained memory
    with nengojax.Simulator(net, seed=SEED, minibatch_size=minibatch, progress_bar=False) as sim:
        sim.run(t_int + t_mem, data={sp_input: test_inputs})
        trange, before = sim.trange(), sim.data[memory_probe]

    t0 = time.perf_counter()
    train_inputs, train_targets, _ = get_memory_data(n_train, dims, SEED, t_int, t_mem)
    r["t_data"] = time.perf_counter() - t0
    with nengojax.Simulator(net, minibatch_size=minibatch, seed=SEED, progress_bar=False) as sim:
        sim.compile(optimizer=optax.rmsprop(1e-4), loss={memory_probe: nengojax.losses.mse})
        r["untrainable"] = nengojax.training.untrainable(sim.compiled)
        test = ({sp_input: test_inputs}, {memory_probe: test_targets})
        r["loss_before"] = sim.evaluate(*test, verbose=0)["loss"]
        t0 = time.perf_counter()
        history = sim.fit(
            {sp_input: train_inputs}, {memory_probe: train_targets}, epochs=epochs, verbose=verbose
        )
        r["t_fit"] = time.perf_counter() - t0
        r["train_loss"] = history.history["loss"]
        r["loss_after"] = sim.evaluate(*test, verbose=0)["loss"]
        params = sim.save_params(os.path.join(param_dir, "mem_params"))

    # a new Simulator with the trained parameters
    with nengojax.Simulator(net, seed=SEED, minibatch_size=minibatch, progress_bar=False) as sim:
        sim.load_params(params)
        sim.run(t_int + t_mem, data={sp_input: test_inputs})
        after = sim.data[memory_probe]
    if not outdir:
        shutil.rmtree(param_dir)

    # similarity of the output to the stored pointer at the end of the delay
    def final_similarity(out):
        return float(np.mean(np.sum(out[:, -1] * test_targets[:, -1], axis=-1)))

    r["similarity_before"] = final_similarity(before)
    r["similarity_after"] = final_similarity(after)
    if outdir:
        fig, axes = plt.subplots(3, 2, figsize=(12, 7), sharex=True)
        for col, out, title in ((0, before, "untrained"), (1, after, "trained")):
            plot_memory_example(axes[:, col], trange, test_vocab, test_inputs, test_targets, out)
            axes[0, col].set_title(f"memory, {title}")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "spa_memory_part1.png"), dpi=70)
        plt.close(fig)
    return r


# --- part 2: binding, memory and retrieval ------------------------------------------------


def get_binding_data(
    n_items, pairs_per_item, vec_d, rng_seed, presentation_time, delay_time, dt=DT,
    shared_vocab=True,
):  # fmt: skip
    """Role, filler and cue inputs and the targets of the binding task.

    Each pair is presented for ``presentation_time``, then the cue for
    ``delay_time``. Returns ``roles, fills, cues, binding, mem, output, vocab``
    (arrays ``(n_items, n_steps, vec_d)``): ``binding`` is the bound pair being
    presented, ``mem`` the running sum of the bound pairs (what the memory
    should hold), ``output`` the cued filler during the cue and NaN before
    (no target there). ``shared_vocab=False`` draws the same numbers with one
    vocabulary per item (linear time; the returned vocab is then None).
    """
    int_steps = int(presentation_time / dt)
    mem_steps = int(delay_time / dt)
    n_steps = int_steps * pairs_per_item + mem_steps
    rng = np.random.RandomState(rng_seed)
    vocab = new_vocab(vec_d, rng) if shared_vocab else None
    roles, fills, cues, binding, output = (np.zeros((n_items, n_steps, vec_d)) for _ in range(5))
    for n in range(n_items):
        voc = vocab if shared_vocab else new_vocab(vec_d, rng)
        role_names = [f"ROLE_{n}_{i}" for i in range(pairs_per_item)]
        filler_names = [f"FILLER_{n}_{i}" for i in range(pairs_per_item)]
        for i, (role, filler) in enumerate(zip(role_names, filler_names, strict=True)):
            steps = slice(i * int_steps, (i + 1) * int_steps)
            # parsing in this order creates the role, then the filler
            roles[n, steps] = voc.parse(role).v
            fills[n, steps] = voc.parse(filler).v
            binding[n, steps] = voc.parse(f"{role}*{filler}").v
        cue = rng.randint(pairs_per_item)
        cues[n, -mem_steps:] = voc[role_names[cue]].v
        output[n, -mem_steps:] = voc[filler_names[cue]].v
        output[n, :-mem_steps] = np.nan  # any output is fine before the cue
    mem = np.cumsum(binding, axis=1) * dt / presentation_time
    return roles, fills, cues, binding, mem, output, vocab


def build_binding(dims=64, neurons_per_dim=3, t_int=0.01, tau=0.01, seed=SEED):
    """Part 2's network: returns ``net, inputs, probes`` (dicts by name)."""
    with nengo.Network(seed=seed) as net:
        net.config[nengo.Ensemble].neuron_type = nengo.RectifiedLinear()
        net.config[nengo.Ensemble].gain = nengo.dists.Choice([1])
        net.config[nengo.Ensemble].bias = nengo.dists.Choice([0])
        net.config[nengo.Connection].synapse = None
        role_inp = nengo.Node(np.zeros(dims), label="role")
        fill_inp = nengo.Node(np.zeros(dims), label="filler")
        cue_inp = nengo.Node(np.zeros(dims), label="cue")
        # role (*) filler
        cconv = nengo.networks.CircularConvolution(neurons_per_dim, dims)
        nengo.Connection(role_inp, cconv.input_a)
        nengo.Connection(fill_inp, cconv.input_b)
        # the memory sums the bound pairs
        memory = nengo.Ensemble(neurons_per_dim * dims, dims, label="memory")
        nengo.Connection(cconv.output, memory, transform=tau / t_int, synapse=tau)
        nengo.Connection(memory, memory, transform=1, synapse=tau)
        # memory (*) ~cue: the cued filler
        ccorr = nengo.networks.CircularConvolution(neurons_per_dim, dims, invert_b=True)
        nengo.Connection(memory, ccorr.input_a)
        nengo.Connection(cue_inp, ccorr.input_b)
        probes = {
            "conv": nengo.Probe(cconv.output, label="conv_probe"),
            "memory": nengo.Probe(memory, label="memory_probe"),
            "output": nengo.Probe(ccorr.output, label="output_probe"),
        }
    return net, {"role": role_inp, "filler": fill_inp, "cue": cue_inp}, probes


def nan_mse(y_true, y_pred):
    """NengoDL's ``nan_mse``: mse over all entries, NaN targets giving zero error."""
    targets = jnp.where(jnp.isnan(y_true), y_pred, y_true)
    return jnp.mean(jnp.square(targets - y_pred))


nan_mse.ignores_nan = True  # tells nengojax that NaN targets are meant


def accuracy(output, vocab, targets, t_step=-1):
    """Fraction of items whose output at ``t_step`` is most similar to their target."""
    sims = vocab.vectors @ output[:, t_step].T  # (vocabulary size, items)
    best = vocab.vectors[np.argmax(sims, axis=0)]
    return float(np.mean(np.all(best == targets[:, -1], axis=1)))


def run_binding(quick=False, outdir=None, n_train=None, epochs=None, verbose=0, dims=None):
    """Part 2; returns a dict of figures."""
    t_int, t_mem, n_pairs, npd, minibatch = 0.01, 0.03, 2, 3, 64
    t_run = n_pairs * t_int + t_mem
    # quick: 16 dimensions, as fit's compilation takes ~90 s with 64 (see above)
    dims = dims or (16 if quick else 64)
    n_train = n_train or (640 if quick else 8000)
    epochs = epochs or (3 if quick else 10)
    r = {"n_train": n_train, "epochs": epochs, "dims": dims}
    param_dir = outdir or tempfile.mkdtemp()  # where save_params writes
    net, inp, probes = build_binding(dims, npd, t_int)
    out_p = probes["output"]

    test_roles, test_fills, test_cues, _, _, test_targets, test_vocab = get_binding_data(
        minibatch, n_pairs, dims, SEED + 1, t_int, t_mem
    )
    test_inputs = {inp["role"]: test_roles, inp["filler"]: test_fills, inp["cue"]: test_cues}
    with nengojax.Simulator(net, seed=SEED, minibatch_size=minibatch, progress_bar=False) as sim:
        sim.run(t_run, data=test_inputs)
        before = sim.data[out_p]
    r["acc_before"] = accuracy(before, test_vocab, test_targets)

    t0 = time.perf_counter()
    roles, fills, cues, binding, mem, targets, _ = get_binding_data(
        n_train, n_pairs, dims, SEED, t_int, t_mem, shared_vocab=False
    )
    r["t_data"] = time.perf_counter() - t0
    train_inputs = {inp["role"]: roles, inp["filler"]: fills, inp["cue"]: cues}
    # targets for the intermediate outputs too, to help the training
    train_targets = {out_p: targets, probes["conv"]: binding, probes["memory"]: mem}
    with nengojax.Simulator(net, minibatch_size=minibatch, seed=SEED, progress_bar=False) as sim:
        sim.compile(loss={out_p: nan_mse})
        r["loss_before"] = sim.evaluate(test_inputs, {out_p: test_targets}, verbose=0)["loss"]
        sim.compile(
            optimizer=optax.rmsprop(1e-4),
            loss=nan_mse,
            loss_weights={out_p: 1.0, probes["conv"]: 0.25, probes["memory"]: 0.25},
        )
        r["untrainable"] = nengojax.training.untrainable(sim.compiled)
        t0 = time.perf_counter()
        history = sim.fit(train_inputs, train_targets, epochs=epochs, verbose=verbose)
        r["t_fit"] = time.perf_counter() - t0
        r["train_loss"] = history.history["loss"]
        sim.compile(loss={out_p: nan_mse})
        r["loss_after"] = sim.evaluate(test_inputs, {out_p: test_targets}, verbose=0)["loss"]
        params = sim.save_params(os.path.join(param_dir, "mem_binding_params"))

    with nengojax.Simulator(net, seed=SEED, minibatch_size=minibatch, progress_bar=False) as sim:
        sim.load_params(params)
        sim.run(t_run, data=test_inputs)
        after = sim.data[out_p]
        trange = sim.trange()
    if not outdir:
        shutil.rmtree(param_dir)
    r["acc_after"] = accuracy(after, test_vocab, test_targets)

    if outdir:
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
        target = test_targets[0, -1]
        for ax, out, title in ((axes[0], before, "untrained"), (axes[1], after, "trained")):
            ax.plot(trange, spa.similarity(out[0], test_vocab), color="k", alpha=0.2)
            ax.plot(trange, out[0] @ target, color="r", label="cued filler")
            ax.axvline(n_pairs * t_int, color="k", ls=":", lw=1)
            ax.set_ylim(-0.5, 1.1)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("similarity of the output")
            ax.set_title(f"test item 0, {title}")
            ax.legend(fontsize="x-small", loc="upper left")
        axes[2].plot(np.arange(1, epochs + 1), r["train_loss"], "o-")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("training loss (weighted nan_mse)")
        axes[2].set_title("fit")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "spa_memory_part2.png"), dpi=70)
        plt.close(fig)
    return r


def print_fit(part, r, minibatch):
    """Print what ``compile`` could not train, the fit and the test loss of a part."""
    for key, why in r["untrainable"].items():
        print(f"{part} compile: {key} is not a param of its own ({why})")
    print(
        f"{part} fit: {r['epochs']} epochs x {r['n_train']} items of 50 steps, minibatch "
        f"{minibatch}, optax.rmsprop(1e-4): {r['t_fit']:.1f} s (incl. compile; data "
        f"{r['t_data']:.1f} s); loss {r['train_loss'][0]:.3g} -> {r['train_loss'][-1]:.3g}"
    )
    print(f"{part} test loss: before {r['loss_before']:.4g}, after {r['loss_after']:.4g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and epochs")
    parser.add_argument("--outdir", default="spa_memory_out", help="figures and params")
    parser.add_argument("--part", choices=["1", "2", "both"], default="both")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    t_start = time.perf_counter()
    verbose = 0 if args.quick else 2
    if args.part in ("1", "both"):
        r = run_memory(args.quick, args.outdir, verbose=verbose)
        print_fit("part 1", r, minibatch=32)
        print(
            f"part 1 similarity of the memory to its pointer after 40 ms: before "
            f"{r['similarity_before']:.3f}, after {r['similarity_after']:.3f}"
        )
    if args.part in ("2", "both"):
        r = run_binding(args.quick, args.outdir, verbose=verbose)
        print_fit("part 2", r, minibatch=64)
        print(f"part 2 retrieval accuracy before training: {r['acc_before']:.3f}")
        print(f"part 2 retrieval accuracy after training: {r['acc_after']:.3f}")
    print(f"figures in {args.outdir}; total {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
