"""Learning to square the input with PES (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/learning/learn_square.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The notebook runs 20 s (learning switched off at 15 s); capped here at 10 s, so
the switch-off is never reached.
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
    model = nengo.Network()
    with model:
        A = nengo.Ensemble(100, dimensions=1)
        A_squared = nengo.Ensemble(100, dimensions=1)
        error = nengo.Ensemble(100, dimensions=1)
        conn = nengo.Connection(A, A_squared)
        conn.learning_rule_type = nengo.PES(learning_rate=3e-4)
        nengo.Connection(error, conn.learning_rule)
        nengo.Connection(A_squared, error)
        nengo.Connection(A, error, function=lambda x: x**2, transform=-1)
        input_node = nengo.Node(output=lambda t: int(6 * t / 5) / 3.0 % 2 - 1)
        nengo.Connection(input_node, A)
        stop_learning = nengo.Node(output=lambda t: t >= 15)
        nengo.Connection(
            stop_learning, error.neurons, transform=-20 * np.ones((error.n_neurons, 1))
        )
        probes = {
            "input": nengo.Probe(input_node),
            "A": nengo.Probe(A, synapse=0.01),
            "A_squared": nengo.Probe(A_squared, synapse=0.01),
            "error": nengo.Probe(error, synapse=0.01),
            "learn": nengo.Probe(stop_learning, synapse=None),
        }
    return model, probes, 10.0
