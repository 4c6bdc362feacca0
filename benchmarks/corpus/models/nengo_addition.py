"""Adding two constant inputs (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/basic/addition.ipynb
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
    model = nengo.Network(label="Addition")
    with model:
        A = nengo.Ensemble(100, dimensions=1)
        B = nengo.Ensemble(100, dimensions=1)
        C = nengo.Ensemble(100, dimensions=1)
        input_a = nengo.Node(output=0.5)
        input_b = nengo.Node(output=0.3)
        nengo.Connection(input_a, A)
        nengo.Connection(input_b, B)
        nengo.Connection(A, C)
        nengo.Connection(B, C)
        probes = {
            "input_a": nengo.Probe(input_a),
            "input_b": nengo.Probe(input_b),
            "A": nengo.Probe(A, synapse=0.01),
            "B": nengo.Probe(B, synapse=0.01),
            "C": nengo.Probe(C, synapse=0.01),
        }
    return model, probes, 5.0
