"""Two coupled integrators built by a parameterized function (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/usage/network_design.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
from nengo.processes import Piecewise


def Integrator(n_neurons, dimensions, tau=0.1):
    """An integrator network with ``input`` and ``ensemble`` attributes."""
    with nengo.Network() as integrator:
        integrator.input = nengo.Node(size_in=dimensions)
        integrator.ensemble = nengo.Ensemble(n_neurons, dimensions=dimensions)
        nengo.Connection(integrator.ensemble, integrator.ensemble, synapse=tau)
        nengo.Connection(integrator.input, integrator.ensemble, synapse=None, transform=tau)
    return integrator


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    net = nengo.Network(label="Two integrators")
    with net:
        net.pre_integrator = Integrator(50, 1)
        net.post_integrator = Integrator(50, 1)
        nengo.Connection(net.pre_integrator.ensemble, net.post_integrator.input)
        piecewise = Piecewise({0: 0, 0.2: 0.5, 1: 0, 2: -1, 3: 0, 4: 1, 5: 0})
        piecewise_inp = nengo.Node(piecewise)
        nengo.Connection(piecewise_inp, net.pre_integrator.input)
        probes = {
            "input": nengo.Probe(piecewise_inp),
            "pre": nengo.Probe(net.pre_integrator.ensemble, synapse=0.01),
            "post": nengo.Probe(net.post_integrator.ensemble, synapse=0.01),
        }
    return net, probes, 6.0
