"""Learning a 2-D communication channel with PES (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/learning/learn_communication_channel.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
Written after the notebook's model (white-signal input, PES from a random
initial function drawn from the global numpy RNG, error inhibited after 10 s);
run for 10 s.
"""

import nengo
import numpy as np
from nengo.processes import Piecewise, WhiteSignal


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network()
    with model:
        inp = nengo.Node(WhiteSignal(60, high=5), size_out=2)
        pre = nengo.Ensemble(60, dimensions=2)
        nengo.Connection(inp, pre)
        post = nengo.Ensemble(60, dimensions=2)
        conn = nengo.Connection(pre, post, function=lambda x: np.random.random(2))
        error = nengo.Ensemble(60, dimensions=2)
        nengo.Connection(post, error)
        nengo.Connection(pre, error, transform=-1)
        conn.learning_rule_type = nengo.PES()
        nengo.Connection(error, conn.learning_rule)
        inhib = nengo.Node(Piecewise({0: 0, 10.0: 1}))
        nengo.Connection(inhib, error.neurons, transform=[[-3]] * error.n_neurons)
        probes = {
            "inp": nengo.Probe(inp),
            "pre": nengo.Probe(pre, synapse=0.01),
            "post": nengo.Probe(post, synapse=0.01),
            "error": nengo.Probe(error, synapse=0.03),
        }
    return model, probes, 10.0
