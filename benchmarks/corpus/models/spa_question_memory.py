"""Question answering with memory (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/question-memory.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
The notebook's network has no seed; ``seed=0`` is added, since without one
nengo_spa draws the vocabulary's vectors from an unseeded RandomState. The
Transcode inputs are functions of time returning pointer names, so the
vocabulary gains RED, CIRCLE, BLUE, SQUARE during the run.
"""

import nengo
import nengo_spa as spa


def color_input(t):
    """RED, then BLUE, then nothing."""
    if t < 0.25:
        return "RED"
    elif t < 0.5:
        return "BLUE"
    return "0"


def shape_input(t):
    """CIRCLE, then SQUARE, then nothing."""
    if t < 0.25:
        return "CIRCLE"
    elif t < 0.5:
        return "SQUARE"
    return "0"


def cue_input(t):
    """Nothing for 0.5 s, then a cycle of cues, one every 1/6 s."""
    if t < 0.5:
        return "0"
    sequence = ["0", "CIRCLE", "RED", "0", "SQUARE", "BLUE"]
    idx = int(((t - 0.5) // (1.0 / len(sequence))) % len(sequence))
    return sequence[idx]


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    dimensions = 32
    model = spa.Network(label="Simple question answering", seed=0)
    with model:
        color_in = spa.Transcode(color_input, output_vocab=dimensions)
        shape_in = spa.Transcode(shape_input, output_vocab=dimensions)
        conv = spa.State(dimensions, subdimensions=4, feedback=1.0, feedback_synapse=0.4)
        cue = spa.Transcode(cue_input, output_vocab=dimensions)
        out = spa.State(dimensions)
        color_in * shape_in >> conv
        conv * ~cue >> out
        model.config[nengo.Probe].synapse = nengo.Lowpass(0.03)
        probes = {
            "color_in": nengo.Probe(color_in.output),
            "shape_in": nengo.Probe(shape_in.output),
            "cue": nengo.Probe(cue.output),
            "conv": nengo.Probe(conv.output),
            "out": nengo.Probe(out.output),
        }
    return model, probes, 3.0
