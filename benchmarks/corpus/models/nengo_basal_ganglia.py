"""Basal ganglia selecting among three actions (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/networks/basal_ganglia.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The action Node returns the same (mutated) array object every step.
"""

import nengo
import numpy as np


class ActionIterator:
    """Makes one action at a time dominant, in a buffer it reuses."""

    def __init__(self, dimensions):
        self.actions = np.ones(dimensions) * 0.1

    def step(self, t):
        """The action saliences at time ``t``."""
        dominate = int(t % 3)
        self.actions[:] = 0.1
        self.actions[dominate] = 0.8
        return self.actions


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="Basal Ganglia")
    with model:
        basal_ganglia = nengo.networks.BasalGanglia(dimensions=3)
    action_iterator = ActionIterator(dimensions=3)
    with model:
        actions = nengo.Node(action_iterator.step, label="actions")
        nengo.Connection(actions, basal_ganglia.input, synapse=None)
        selected_action = nengo.Probe(basal_ganglia.output, synapse=0.01)
        input_actions = nengo.Probe(actions, synapse=0.01)
    return model, {"selected": selected_action, "input": input_actions}, 6.0
