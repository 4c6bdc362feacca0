"""Combining two 1-D inputs into a 2-D ensemble (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/combining.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
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
    model = nengo.Network(label="Combining")
    with model:
        A = nengo.Ensemble(100, dimensions=1)
        B = nengo.Ensemble(100, dimensions=1)
        output = nengo.Ensemble(200, dimensions=2, label="2D Population")
        sin = nengo.Node(output=np.sin)
        cos = nengo.Node(output=np.cos)
        nengo.Connection(sin, A)
        nengo.Connection(cos, B)
        nengo.Connection(A, output[1])
        nengo.Connection(B, output[0])
        probes = {
            "sin": nengo.Probe(sin),
            "cos": nengo.Probe(cos),
            "A": nengo.Probe(A, synapse=0.01),
            "B": nengo.Probe(B, synapse=0.01),
            "out": nengo.Probe(output, synapse=0.01),
        }
    return model, probes, 5.0
