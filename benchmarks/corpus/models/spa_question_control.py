"""Controlled question answering with action selection (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/question-control.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
The notebook's network has no seed; ``seed=0`` is added (nengo_spa's
vocabulary RNG is otherwise unseeded). The vision input returns expressions
such as 'STATEMENT+RED*CIRCLE', parsed (and names created) during the run.
"""

import nengo
import nengo_spa as spa


def input_fn(t):
    """Two statements, then two questions."""
    if 0.1 < t < 0.3:
        return "STATEMENT+RED*CIRCLE"
    elif 0.35 < t < 0.5:
        return "STATEMENT+BLUE*SQUARE"
    elif 0.55 < t < 0.7:
        return "QUESTION+RED"
    elif 0.75 < t < 0.9:
        return "QUESTION+BLUE"
    return "0"


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    dimensions = 128
    n_per_dim = 100
    model = spa.Network(label="Controlled Question Answering", seed=0)
    with model:
        vision = spa.Transcode(input_fn, output_vocab=dimensions)
        motor = spa.State(dimensions, neurons_per_dimension=n_per_dim)
        memory = spa.State(
            dimensions, neurons_per_dimension=n_per_dim, feedback=1.0, feedback_synapse=0.1
        )
        statement = spa.Transcode(input_vocab=dimensions, output_vocab=dimensions)
        question = spa.Transcode(input_vocab=dimensions, output_vocab=dimensions)
        with spa.ActionSelection() as action_sel:
            spa.ifmax(
                spa.dot(vision, spa.sym.STATEMENT),
                vision - spa.sym.STATEMENT >> statement,
                statement >> memory,
            )
            spa.ifmax(
                spa.dot(vision, spa.sym.QUESTION),
                vision - spa.sym.QUESTION >> question,
                ~(question) * memory >> motor,
            )
        probes = {
            "vision": nengo.Probe(vision.output, synapse=0.03),
            "statement": nengo.Probe(statement.input, synapse=0.03),
            "question": nengo.Probe(question.input, synapse=0.03),
            "motor": nengo.Probe(motor.output, synapse=0.03),
            "memory": nengo.Probe(memory.output, synapse=0.03),
            "selected": nengo.Probe(action_sel.thalamus.output, synapse=0.01),
            "utility": nengo.Probe(action_sel.bg.input, synapse=0.01),
        }
    return model, probes, 1.0
