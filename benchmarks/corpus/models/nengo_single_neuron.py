"""A single LIF neuron driven by a cosine (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/single_neuron.ipynb
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
    model = nengo.Network(label="A Single Neuron")
    with model:
        neuron = nengo.Ensemble(
            1,
            dimensions=1,
            intercepts=Uniform(-0.5, -0.5),
            max_rates=Uniform(100, 100),
            encoders=[[1]],
        )
        cos = nengo.Node(lambda t: np.cos(8 * t))
        nengo.Connection(cos, neuron)
        probes = {
            "cos": nengo.Probe(cos),
            "spikes": nengo.Probe(neuron.neurons),
            "voltage": nengo.Probe(neuron.neurons, "voltage"),
            "filtered": nengo.Probe(neuron, synapse=0.01),
        }
    return model, probes, 1.0
