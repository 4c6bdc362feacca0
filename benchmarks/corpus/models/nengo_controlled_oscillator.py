"""An oscillator with frequency control (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/dynamics/controlled_oscillator.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
from nengo.processes import Piecewise


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    tau = 0.1
    w_max = 10
    model = nengo.Network(label="Controlled Oscillator")
    with model:
        oscillator = nengo.Ensemble(500, dimensions=3, radius=1.7)

        def feedback(x):
            x0, x1, w = x
            return x0 + w * w_max * tau * x1, x1 - w * w_max * tau * x0, 0

        nengo.Connection(oscillator, oscillator, function=feedback, synapse=tau)
        frequency = nengo.Ensemble(100, dimensions=1)
        nengo.Connection(frequency, oscillator[2])
        initial = nengo.Node(Piecewise({0: [1, 0, 0], 0.15: [0, 0, 0]}))
        nengo.Connection(initial, oscillator)
        input_frequency = nengo.Node(Piecewise({0: 1, 1: 0.5, 2: 0, 3: -0.5, 4: -1}))
        nengo.Connection(input_frequency, frequency)
        probes = {"oscillator": nengo.Probe(oscillator, synapse=0.03)}
    return model, probes, 5.0
