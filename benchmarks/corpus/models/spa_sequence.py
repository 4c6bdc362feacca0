"""A basal-ganglia sequence A, B, C, D, E (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/spa-sequence.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
Written after the notebook's model (start with A for 50 ms, then cycle).
"""

import nengo
import nengo_spa as spa


def start(t):
    """A for the first 50 ms."""
    if t < 0.05:
        return "A"
    return "0"


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    dimensions = 16
    model = spa.Network(label="Sequence_Module", seed=5)
    with model:
        cortex = spa.State(dimensions, label="cortex")
        with spa.ActionSelection() as action_sel:
            spa.ifmax(spa.dot(cortex, spa.sym.A), spa.sym.B >> cortex)
            spa.ifmax(spa.dot(cortex, spa.sym.B), spa.sym.C >> cortex)
            spa.ifmax(spa.dot(cortex, spa.sym.C), spa.sym.D >> cortex)
            spa.ifmax(spa.dot(cortex, spa.sym.D), spa.sym.E >> cortex)
            spa.ifmax(spa.dot(cortex, spa.sym.E), spa.sym.A >> cortex)
        stim = spa.Transcode(start, output_vocab=dimensions)
        stim >> cortex
        probes = {
            "cortex": nengo.Probe(cortex.output, synapse=0.01),
            "selected": nengo.Probe(action_sel.thalamus.output, synapse=0.01),
            "utility": nengo.Probe(action_sel.bg.input, synapse=0.01),
        }
    return model, probes, 0.5
