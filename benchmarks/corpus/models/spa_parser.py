"""Parsing simple commands (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/spa-parser.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
import nengo_spa as spa

sequence = "WRITE ONE NONE WRITE TWO NONE THREE WRITE NONE".split()


def input_vision(t):
    """One word of ``sequence`` every 0.5 s."""
    index = int(t / 0.5) % len(sequence)
    return sequence[index]


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    dimensions = 64
    model = spa.Network(label="Parser", seed=0)
    n_per_dim = 50
    with model:
        vision = spa.Transcode(input_vision, output_vocab=dimensions)
        phrase = spa.State(dimensions, neurons_per_dimension=n_per_dim)
        motor = spa.State(dimensions, neurons_per_dimension=n_per_dim)
        noun = spa.State(dimensions, feedback=1.0, neurons_per_dimension=n_per_dim)
        verb = spa.State(dimensions, feedback=1.0, neurons_per_dimension=n_per_dim)
        none_vision_cond = spa.dot(
            spa.sym.NONE - spa.sym.WRITE - spa.sym.ONE - spa.sym.TWO - spa.sym.THREE, vision
        )
        num_vision_cond = spa.dot(vision, spa.sym.ONE + spa.sym.TWO + spa.sym.THREE)
        with spa.ActionSelection() as action_sel:
            spa.ifmax("Write vis", spa.dot(vision, spa.sym.WRITE), vision >> verb)
            spa.ifmax("Memorize", num_vision_cond, vision >> noun)
            spa.ifmax(
                "Write mem",
                0.5 * (none_vision_cond + spa.dot(phrase, spa.sym.WRITE * spa.sym.VERB)),
                phrase * ~spa.sym.NOUN >> motor,
            )
        noun * spa.sym.NOUN + verb * spa.sym.VERB >> phrase
        probes = {
            "vision": nengo.Probe(vision.output, synapse=0.03),
            "phrase": nengo.Probe(phrase.output, synapse=0.03),
            "motor": nengo.Probe(motor.output, synapse=0.03),
            "noun": nengo.Probe(noun.output, synapse=0.03),
            "verb": nengo.Probe(verb.output, synapse=0.03),
            "selected": nengo.Probe(action_sel.thalamus.output, synapse=0.01),
            "utility": nengo.Probe(action_sel.bg.input, synapse=0.01),
        }
    return model, probes, 4.5
