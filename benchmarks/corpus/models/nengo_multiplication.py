"""Multiplying two inputs through a 2-D ensemble (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/multiplication.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
from nengo.dists import Choice
from nengo.processes import Piecewise


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="Multiplication")
    with model:
        A = nengo.Ensemble(100, dimensions=1, radius=10)
        B = nengo.Ensemble(100, dimensions=1, radius=10)
        combined = nengo.Ensemble(220, dimensions=2, radius=15)
        prod = nengo.Ensemble(100, dimensions=1, radius=20)
    # set after construction, outside the ``with`` block, as the notebook does
    combined.encoders = Choice([[1, 1], [-1, 1], [1, -1], [-1, -1]])
    with model:
        inputA = nengo.Node(Piecewise({0: 0, 2.5: 10, 4: -10}))
        inputB = nengo.Node(Piecewise({0: 10, 1.5: 2, 3: 0, 4.5: 2}))
        nengo.Connection(inputA, A)
        nengo.Connection(inputB, B)
        nengo.Connection(A, combined[0])
        nengo.Connection(B, combined[1])

        def product(x):
            return x[0] * x[1]

        nengo.Connection(combined, prod, function=product)
        probes = {
            "inputA": nengo.Probe(inputA),
            "inputB": nengo.Probe(inputB),
            "A": nengo.Probe(A, synapse=0.01),
            "B": nengo.Probe(B, synapse=0.01),
            "combined": nengo.Probe(combined, synapse=0.01),
            "prod": nengo.Probe(prod, synapse=0.01),
        }
    return model, probes, 5.0
