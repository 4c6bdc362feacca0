"""A 2-D ensemble representing sine and cosine (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/2d_representation.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
Typed from the published example as remembered, not checked line by line
against the stored notebook: details (inputs, probes, run time) may differ.
"""

import nengo
import numpy as np


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="2D Representation")
    with model:
        neurons = nengo.Ensemble(100, dimensions=2)
        sin = nengo.Node(output=np.sin)
        cos = nengo.Node(output=np.cos)
        nengo.Connection(sin, neurons[0])
        nengo.Connection(cos, neurons[1])
        probes = {
            "sin": nengo.Probe(sin, "output"),
            "cos": nengo.Probe(cos, "output"),
            "neurons": nengo.Probe(neurons, "decoded_output", synapse=0.01),
        }
    return model, probes, 5.0
