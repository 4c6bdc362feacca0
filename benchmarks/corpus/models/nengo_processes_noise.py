"""Processes: WhiteNoise injected into an ensemble (nengo 4.1 documentation example).

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
    process = nengo.processes.WhiteNoise(dist=nengo.dists.Gaussian(0, 0.01), seed=1)
    with nengo.Network() as model:
        ens_args = dict(encoders=[[1]], intercepts=[0.01], max_rates=[100])
        a = nengo.Ensemble(1, 1, **ens_args)
        b = nengo.Ensemble(1, 1, noise=process, **ens_args)
        a_voltage = nengo.Probe(a.neurons, "voltage")
        b_voltage = nengo.Probe(b.neurons, "voltage")
    return model, {"a_voltage": a_voltage, "b_voltage": b_voltage}, 0.15
