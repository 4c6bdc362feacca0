"""Processes: a custom Process (a 2-D oscillator with state) (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/advanced/processes.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The notebook runs 20 s; capped here at 10 s (the corpus's limit).
"""

import nengo
import numpy as np


class SimpleOscillator(nengo.Process):
    """A damped 2-D oscillator stepped in Python, its state made by ``make_state``."""

    def make_state(self, shape_in, shape_out, dt, dtype=None):
        """The initial state."""
        return {"state": np.array([1.0, 0.0])}

    def make_step(self, shape_in, shape_out, dt, rng, state):
        """A step function updating the state in place."""
        A = np.array([[-0.1, -1.0], [1.0, -0.1]])
        s = state["state"]

        def step(t):
            s[:] += dt * np.dot(A, s)
            return s

        return step


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    with nengo.Network() as model:
        a = nengo.Node(SimpleOscillator(), size_in=0, size_out=2)
        a_p = nengo.Probe(a)
    return model, {"a": a_p}, 10.0
