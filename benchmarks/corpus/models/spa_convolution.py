"""Circular convolution of two semantic pointers (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/convolution.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
Written after the notebook's model (A * B into a State).
"""

import nengo
import nengo_spa as spa


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    dimensions = 32
    model = spa.Network(label="Circular convolution", seed=0)
    with model:
        a = spa.Transcode("A", output_vocab=dimensions)
        b = spa.Transcode("B", output_vocab=dimensions)
        c = spa.State(dimensions)
        a * b >> c
        probes = {
            "a": nengo.Probe(a.output, synapse=0.03),
            "b": nengo.Probe(b.output, synapse=0.03),
            "c": nengo.Probe(c.output, synapse=0.03),
        }
    return model, probes, 1.0
