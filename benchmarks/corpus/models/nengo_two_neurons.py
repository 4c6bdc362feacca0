"""Two neurons with opposite encoders (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/two_neurons.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
Typed from the published example as remembered, not checked line by line
against the stored notebook: details (inputs, probes, run time) may differ.
"""

import nengo
import numpy as np
from nengo.dists import Uniform


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="Two Neurons")
    with model:
        neurons = nengo.Ensemble(
            2,
            dimensions=1,
            intercepts=Uniform(-0.01, -0.01),
            max_rates=Uniform(100, 100),
            encoders=[[1], [-1]],
        )
        sin = nengo.Node(lambda t: np.sin(8 * t))
        nengo.Connection(sin, neurons, synapse=0.01)
        probes = {
            "sin": nengo.Probe(sin),
            "spikes": nengo.Probe(neurons.neurons),
            "filtered": nengo.Probe(neurons, synapse=0.01),
        }
    return model, probes, 1.0
