"""Ensemble arrays, feedforward (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/networks/ensemble_array.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
import numpy as np


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="Ensemble Array")
    with model:
        sin = nengo.Node(output=lambda t: [np.cos(t), np.sin(t)])
        A = nengo.networks.EnsembleArray(100, n_ensembles=2)
        B = nengo.Ensemble(100, dimensions=2)
        C = nengo.networks.EnsembleArray(100, n_ensembles=2)
        nengo.Connection(sin, A.input)
        nengo.Connection(A.output, B)
        nengo.Connection(B, C.input)
        probes = {
            "sin": nengo.Probe(sin),
            "A": nengo.Probe(A.output, synapse=0.02),
            "B": nengo.Probe(B, synapse=0.02),
            "C": nengo.Probe(C.output, synapse=0.02),
        }
    return model, probes, 10.0
