"""A controlled integrator, second form (control = 1 - leak) (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/dynamics/controlled_integrator2.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
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
    model = nengo.Network(label="Controlled Integrator 2")
    with model:
        A = nengo.Ensemble(225, dimensions=2, radius=1.5)
        input_func = Piecewise({0.2: 5, 0.3: 0, 0.44: -10, 0.54: 0, 0.8: 5, 0.9: 0})
        inp = nengo.Node(output=input_func)
        tau = 0.1
        nengo.Connection(inp, A, transform=[[tau], [0]], synapse=tau)
        control = nengo.Node(output=Piecewise({0: 0, 0.6: -0.5}))
        nengo.Connection(control, A[1], synapse=0.005)
        nengo.Connection(A, A[0], function=lambda x: x[0] * x[1] + x[0], synapse=tau)
        probes = {"A": nengo.Probe(A, "decoded_output", synapse=0.01)}
    return model, probes, 1.4
