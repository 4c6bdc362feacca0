"""Routed sequencing through five states (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/spa-sequence-routed.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
import nengo_spa as spa


def start(t):
    """'0.8*START+D' for the first 0.1 s."""
    if t < 0.1:
        return "0.8*START+D"
    return "0"


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    dimensions = 16
    model = spa.Network(label="Routed_Sequence", seed=0)
    with model:
        vision = spa.Transcode(start, output_vocab=dimensions)
        cortex = spa.State(dimensions)
        with spa.ActionSelection() as action_sel:
            spa.ifmax("Start", spa.dot(vision, spa.sym.START), vision >> cortex)
            spa.ifmax("A to B", spa.dot(cortex, spa.sym.A), spa.sym.B >> cortex)
            spa.ifmax("B to C", spa.dot(cortex, spa.sym.B), spa.sym.C >> cortex)
            spa.ifmax("C to D", spa.dot(cortex, spa.sym.C), spa.sym.D >> cortex)
            spa.ifmax("D to E", spa.dot(cortex, spa.sym.D), spa.sym.E >> cortex)
            spa.ifmax("E to A", spa.dot(cortex, spa.sym.E), spa.sym.A >> cortex)
        probes = {
            "cortex": nengo.Probe(cortex.output, synapse=0.01),
            "vision": nengo.Probe(vision.output, synapse=0.01),
            "selected": nengo.Probe(action_sel.thalamus.output, synapse=0.01),
            "utility": nengo.Probe(action_sel.bg.input, synapse=0.01),
        }
    return model, probes, 0.5
