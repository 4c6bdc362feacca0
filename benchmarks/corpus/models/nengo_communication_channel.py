"""Communication channel: A to B (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/communication_channel.ipynb
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
    model = nengo.Network("Communications Channel")
    with model:
        sin = nengo.Node(np.sin)
        A = nengo.Ensemble(100, dimensions=1)
        B = nengo.Ensemble(100, dimensions=1)
        nengo.Connection(sin, A)
        nengo.Connection(A, B)
        probes = {
            "sin": nengo.Probe(sin),
            "A": nengo.Probe(A, synapse=0.01),
            "B": nengo.Probe(B, synapse=0.01),
        }
    return model, probes, 2.0
