"""Inhibitory gating of ensembles (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/advanced/inhibitory_gating.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The notebook runs 15 s; capped here at 10 s (the corpus's limit).
"""

import nengo
import numpy as np
from nengo.processes import Piecewise


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    n_neurons = 30
    model = nengo.Network(label="Inhibitory Gating")
    with model:
        A = nengo.Ensemble(n_neurons, dimensions=1)
        B = nengo.Ensemble(n_neurons, dimensions=1)
        C = nengo.Ensemble(n_neurons, dimensions=1)
        sin = nengo.Node(np.sin)
        inhib = nengo.Node(Piecewise({0: 0, 2.5: 1, 5: 0, 7.5: 1, 10: 0, 12.5: 1}))
        nengo.Connection(sin, A)
        nengo.Connection(sin, B)
        nengo.Connection(inhib, A.neurons, transform=[[-2.5]] * n_neurons)
        nengo.Connection(inhib, C)
        nengo.Connection(C, B.neurons, transform=[[-2.5]] * n_neurons)
        probes = {
            "sin": nengo.Probe(sin),
            "inhib": nengo.Probe(inhib),
            "A": nengo.Probe(A, synapse=0.01),
            "B": nengo.Probe(B, synapse=0.01),
            "C": nengo.Probe(C, synapse=0.01),
        }
    return model, probes, 10.0
