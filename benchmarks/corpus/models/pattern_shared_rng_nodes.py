"""Two noise Nodes drawing from one shared numpy RandomState.

Not from a public source: written for this corpus (the issue asks for Node
functions sharing an RNG, a common pattern in user scripts). nengo calls the
Nodes in turn every step, so the two streams interleave draws from one
generator; calling one Node for every step of a run before the other gives
each a different sequence.
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
    rng = np.random.RandomState(42)
    with nengo.Network(label="shared rng", seed=4) as model:
        noise_a = nengo.Node(lambda t: np.sin(4 * t) + rng.normal(0, 0.3))
        noise_b = nengo.Node(lambda t: np.cos(4 * t) + rng.uniform(-0.3, 0.3))
        a = nengo.Ensemble(100, dimensions=1)
        b = nengo.Ensemble(100, dimensions=1)
        c = nengo.Ensemble(200, dimensions=2)
        nengo.Connection(noise_a, a)
        nengo.Connection(noise_b, b)
        nengo.Connection(a, c[0])
        nengo.Connection(b, c[1])
        probes = {
            "noise_a": nengo.Probe(noise_a),
            "noise_b": nengo.Probe(noise_b),
            "c": nengo.Probe(c, synapse=0.01),
        }
    return model, probes, 2.0
