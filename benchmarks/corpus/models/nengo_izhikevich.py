"""Izhikevich neurons decoding a sine (regular spiking) (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/advanced/izhikevich.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The first model of the notebook (it has its own seed, 0).
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
    with nengo.Network(seed=0) as model:
        u = nengo.Node(lambda t: np.sin(2 * np.pi * t))
        ens = nengo.Ensemble(10, dimensions=1, neuron_type=nengo.Izhikevich())
        nengo.Connection(u, ens)
        probes = {
            "out": nengo.Probe(ens, synapse=0.03),
            "spikes": nengo.Probe(ens.neurons),
            "voltage": nengo.Probe(ens.neurons, "voltage"),
            "recovery": nengo.Probe(ens.neurons, "recovery"),
        }
    return model, probes, 1.0
