"""Simple question answering (bind, then unbind with a cue) (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/question.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
Written after the notebook's model. The network has no seed in the notebook;
``seed=0`` is added (nengo_spa's vocabulary RNG is otherwise unseeded). The
inputs are functions of time returning pointer names.
"""

import nengo
import nengo_spa as spa


def color_input(t):
    """RED and BLUE alternating every 0.5 s."""
    return "RED" if (t // 0.5) % 2 == 0 else "BLUE"


def shape_input(t):
    """CIRCLE and SQUARE alternating every 0.5 s."""
    return "CIRCLE" if (t // 0.5) % 2 == 0 else "SQUARE"


def cue_input(t):
    """A cycle of cues, one every 1/6 s."""
    sequence = ["0", "CIRCLE", "RED", "0", "SQUARE", "BLUE"]
    idx = int((t // (1.0 / len(sequence))) % len(sequence))
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
        conv = spa.State(dimensions, subdimensions=4)
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
