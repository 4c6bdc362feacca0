"""A neural integrator (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/dynamics/integrator.ipynb
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
    model = nengo.Network(label="Integrator")
    with model:
        A = nengo.Ensemble(100, dimensions=1)
        input = nengo.Node(Piecewise({0: 0, 0.2: 1, 1: 0, 2: -2, 3: 0, 4: 1, 5: 0}))
        tau = 0.1
        nengo.Connection(A, A, transform=[[1]], synapse=tau)
        nengo.Connection(input, A, transform=[[tau]], synapse=tau)
        probes = {
            "input": nengo.Probe(input),
            "A": nengo.Probe(A, synapse=0.01),
        }
    return model, probes, 6.0
