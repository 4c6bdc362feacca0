"""Unsupervised learning: BCM and Oja together (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/learning/learn_unsupervised.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The notebook runs 20 s; capped here at 10 s (the corpus's limit).
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
        sin = nengo.Node(lambda t: np.sin(t * 4))
        pre = nengo.Ensemble(100, dimensions=1)
        post = nengo.Ensemble(100, dimensions=1)
        nengo.Connection(sin, pre)
        conn = nengo.Connection(pre, post, solver=nengo.solvers.LstsqL2(weights=True))
        pre_p = nengo.Probe(pre, synapse=0.01)
        post_p = nengo.Probe(post, synapse=0.01)
    # the notebook sets the rule after building the network, then adds the probe
    conn.learning_rule_type = [nengo.BCM(learning_rate=5e-10), nengo.Oja(learning_rate=2e-9)]
    with model:
        weights_p = nengo.Probe(conn, "weights", synapse=0.01, sample_every=0.01)
    return model, {"pre": pre_p, "post": post_p, "weights": weights_p}, 10.0
