"""Squaring the input (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/squaring.ipynb
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
    model = nengo.Network(label="Squaring")
    with model:
        A = nengo.Ensemble(100, dimensions=1)
        B = nengo.Ensemble(100, dimensions=1)
        sin = nengo.Node(np.sin)
        nengo.Connection(sin, A)

        def square(x):
            return x[0] * x[0]

        nengo.Connection(A, B, function=square)
        probes = {
            "sin": nengo.Probe(sin),
            "A": nengo.Probe(A, synapse=0.01),
            "B": nengo.Probe(B, synapse=0.01),
        }
    return model, probes, 5.0
