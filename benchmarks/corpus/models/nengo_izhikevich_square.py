"""Izhikevich neurons computing a square (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/advanced/izhikevich.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The notebook's last cells: 30 Izhikevich neurons for the sine, and a second
ensemble with ``tau_recovery=0.2`` decoding its square, run for 2 s.
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
        ens = nengo.Ensemble(30, dimensions=1, neuron_type=nengo.Izhikevich())
        nengo.Connection(u, ens)
        out_p = nengo.Probe(ens, synapse=0.03)
    u.output = lambda t: np.sin(2 * np.pi * t)
    with model:
        square = nengo.Ensemble(30, dimensions=1, neuron_type=nengo.Izhikevich())
        nengo.Connection(ens, square, function=lambda x: x**2)
        square_p = nengo.Probe(square, synapse=0.03)
    square.neuron_type = nengo.Izhikevich(tau_recovery=0.2)
    return model, {"out": out_p, "square": square_p}, 2.0
