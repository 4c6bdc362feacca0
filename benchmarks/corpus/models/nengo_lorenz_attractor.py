"""The Lorenz chaotic attractor (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/dynamics/lorenz_attractor.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
Typed from the published example as remembered, not checked line by line
against the stored notebook: details (inputs, probes, run time) may differ.
"""

import nengo


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    tau = 0.1
    sigma = 10
    beta = 8.0 / 3
    rho = 28

    def feedback(x):
        dx0 = -sigma * x[0] + sigma * x[1]
        dx1 = -x[0] * x[2] - x[1]
        dx2 = x[0] * x[1] - beta * (x[2] + rho) - rho
        return [dx0 * tau + x[0], dx1 * tau + x[1], dx2 * tau + x[2]]

    model = nengo.Network(label="Lorenz attractor")
    with model:
        state = nengo.Ensemble(2000, 3, radius=60)
        nengo.Connection(state, state, function=feedback, synapse=tau)
        probes = {"state": nengo.Probe(state, synapse=tau)}
    return model, probes, 10.0
