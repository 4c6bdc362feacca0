"""A simple harmonic oscillator (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/dynamics/oscillator.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
Typed from the published example as remembered, not checked line by line
against the stored notebook: details (inputs, probes, run time) may differ.
"""

import nengo
from nengo.processes import Piecewise


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="Oscillator")
    with model:
        neurons = nengo.Ensemble(200, dimensions=2)
        input = nengo.Node(Piecewise({0: [1, 0], 0.1: [0, 0]}))
        nengo.Connection(input, neurons)
        nengo.Connection(neurons, neurons, transform=[[1, 1], [-1, 1]], synapse=0.1)
        probes = {
            "input": nengo.Probe(input, "output"),
            "neurons": nengo.Probe(neurons, "decoded_output", synapse=0.1),
        }
    return model, probes, 5.0
