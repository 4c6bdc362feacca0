"""Delaying a connection with a stateful Python Node (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/usage/delay_node.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
import numpy as np
from nengo.processes import WhiteSignal


class Delay:
    """A delay line kept in a Python object (the Node function has state)."""

    def __init__(self, dimensions, timesteps=50):
        self.history = np.zeros((timesteps, dimensions))

    def step(self, t, x):
        """Push ``x``, return the value from ``timesteps`` steps ago."""
        self.history = np.roll(self.history, -1)
        self.history[-1] = x
        return self.history[0]


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="Delayed connection")
    with model:
        inp = nengo.Node(WhiteSignal(2, high=5), size_out=1)
        A = nengo.Ensemble(40, dimensions=1)
        nengo.Connection(inp, A)
    delay = Delay(1, timesteps=int(0.2 / 0.001))
    with model:
        delaynode = nengo.Node(delay.step, size_in=1, size_out=1)
        nengo.Connection(A, delaynode)
        B = nengo.Ensemble(40, dimensions=1)
        nengo.Connection(delaynode, B)
        probes = {
            "A": nengo.Probe(A, synapse=0.01),
            "B": nengo.Probe(B, synapse=0.01),
        }
    return model, probes, 2.0
