"""A closed loop through Python Nodes: a 1-D point robot driven to a target.

Not from a public source: written for this corpus (the issue asks for a closed
loop through Python Nodes, the shape of robot and environment models users
write). A sensor Node reads the position of a Python environment object; a
motor Node taking input from an ensemble changes it. Each step's sensor value
depends on the previous steps' motor commands, so a simulator that calls Node
functions ahead of the run, one Node after another, sees a different world.
"""

import nengo
import numpy as np
from nengo.processes import Piecewise


class PointRobot:
    """A point on a line whose velocity is the motor command (clipped to +-1)."""

    def __init__(self, dt=0.001):
        self.dt = dt
        self.x = 0.0

    def sense(self, t):
        """The robot's position."""
        return [self.x]

    def act(self, t, u):
        """Move with velocity ``u`` for one step."""
        self.x += self.dt * float(np.clip(u[0], -1, 1))


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    robot = PointRobot()
    with nengo.Network(label="point robot", seed=3) as model:
        target = nengo.Node(Piecewise({0: 0.6, 2.5: -0.4}))
        sensor = nengo.Node(robot.sense, size_out=1)
        motor = nengo.Node(robot.act, size_in=1, size_out=0)
        state = nengo.Ensemble(200, dimensions=2)
        nengo.Connection(target, state[0])
        nengo.Connection(sensor, state[1])
        nengo.Connection(state, motor, function=lambda x: 3 * (x[0] - x[1]))
        probes = {
            "position": nengo.Probe(sensor),
            "state": nengo.Probe(state, synapse=0.01),
        }
    return model, probes, 5.0
