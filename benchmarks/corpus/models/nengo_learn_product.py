"""Learning a product with PES (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/learning/learn_product.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The notebook runs 60 s (error inhibited after 40 s); capped here at 10 s. The
learned connection starts from ``np.random.random`` (the global numpy RNG, called
by the decoder solver at build time).
"""

import nengo
import numpy as np
from nengo.processes import WhiteSignal


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
        pre = nengo.Ensemble(120, dimensions=2)
        nengo.Connection(inp, pre)
        post = nengo.Ensemble(60, dimensions=1)
        product = nengo.Ensemble(60, dimensions=1)
        nengo.Connection(inp, product, function=lambda x: x[0] * x[1], synapse=None)
        error = nengo.Ensemble(60, dimensions=1)
        nengo.Connection(post, error)
        nengo.Connection(product, error, transform=-1)
        conn = nengo.Connection(
            pre, post, function=lambda x: np.random.random(1), learning_rule_type=nengo.PES()
        )
        nengo.Connection(error, conn.learning_rule)
        inhib = nengo.Node(lambda t: 2.0 if t > 40.0 else 0.0)
        nengo.Connection(inhib, error.neurons, transform=[[-1]] * error.n_neurons)
        probes = {
            "product": nengo.Probe(product, synapse=0.01),
            "pre": nengo.Probe(pre, synapse=0.01),
            "post": nengo.Probe(post, synapse=0.01),
            "error": nengo.Probe(error, synapse=0.03),
        }
    return model, probes, 10.0
