"""Processes: four WhiteSignal nodes (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/advanced/processes.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    with nengo.Network() as model:
        a = nengo.Node(nengo.processes.WhiteSignal(1.0, high=5, seed=0))
        b = nengo.Node(nengo.processes.WhiteSignal(1.0, high=10, seed=0))
        c = nengo.Node(nengo.processes.WhiteSignal(1.0, high=5, rms=0.3, seed=0))
        d = nengo.Node(nengo.processes.WhiteSignal(0.5, high=5, seed=0))
        probes = {k: nengo.Probe(n) for k, n in zip("abcd", (a, b, c, d), strict=True)}
    return model, probes, 1.0
