"""100 LIF neurons representing a sine (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/many_neurons.ipynb
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
    model = nengo.Network(label="Many Neurons")
    with model:
        A = nengo.Ensemble(100, dimensions=1)
        sin = nengo.Node(lambda t: np.sin(8 * t))
        nengo.Connection(sin, A, synapse=0.01)
        probes = {
            "sin": nengo.Probe(sin),
            "A": nengo.Probe(A, synapse=0.01),
            "A_spikes": nengo.Probe(A.neurons),
        }
    return model, probes, 1.0
