"""Double integrator for a lever-release timing task (nengo 4.1 docs example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/usage/network_design.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
from nengo.dists import Choice


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    with nengo.Network() as net:
        tau = 0.1
        pre_integrator = nengo.Ensemble(200, dimensions=2)
        nengo.Connection(
            pre_integrator, pre_integrator[0], function=lambda x: x[0] * (1.0 - x[1]), synapse=tau
        )
        post_integrator = nengo.Ensemble(200, dimensions=2)
        nengo.Connection(
            post_integrator,
            post_integrator[0],
            function=lambda x: x[0] * (1.0 - x[1]),
            synapse=tau,
        )
        nengo.Connection(pre_integrator[0], post_integrator[0], transform=0.16)
        press = nengo.Ensemble(30, dimensions=1, encoders=Choice([[1]]), intercepts=Choice([0.85]))
        release = nengo.Ensemble(
            30, dimensions=1, encoders=Choice([[1]]), intercepts=Choice([0.85])
        )
        nengo.Connection(press, pre_integrator[0], transform=tau * 3)
        nengo.Connection(press, post_integrator[1], transform=-1 * 6)
        nengo.Connection(post_integrator[0], release)
        nengo.Connection(nengo.Node(lambda t: 1 if t < 0.2 else 0), press)
        probes = {
            "press": nengo.Probe(press, synapse=0.01),
            "release": nengo.Probe(release, synapse=0.01),
            "pre_int": nengo.Probe(pre_integrator[0], synapse=0.01),
            "post_int": nengo.Probe(post_integrator[0], synapse=0.01),
        }
    return net, probes, 1.4
