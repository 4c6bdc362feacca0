"""Learning new associations with Voja and PES (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/learning/learn_associations.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
"""

import nengo
import numpy as np


def cycle_array(x, period, dt=0.001):
    """A function of time stepping through the rows of ``x``, one every ``period`` s."""
    i_every = int(round(period / dt))
    if i_every != period / dt:
        raise ValueError(f"dt ({dt}) does not divide period ({period})")

    def f(t):
        i = int(round((t - dt) / dt))  # t starts at dt
        return x[int(i / i_every) % len(x)]

    return f


def build():
    """The model, its probes and the notebook's run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    num_items = 5
    d_key = 2
    d_value = 4
    rng = np.random.RandomState(seed=7)
    keys = nengo.dists.UniformHypersphere(surface=True).sample(num_items, d_key, rng=rng)
    values = nengo.dists.UniformHypersphere(surface=False).sample(num_items, d_value, rng=rng)
    intercept = (np.dot(keys, keys.T) - np.eye(num_items)).flatten().max()

    n_neurons = 200
    dt = 0.001
    period = 0.3
    T = period * num_items * 2
    model = nengo.Network()
    with model:
        stim_keys = nengo.Node(output=cycle_array(keys, period, dt))
        stim_values = nengo.Node(output=cycle_array(values, period, dt))
        learning = nengo.Node(output=lambda t: -int(t >= T / 2))
        recall = nengo.Node(size_in=d_value)
        memory = nengo.Ensemble(n_neurons, d_key, intercepts=[intercept] * n_neurons)
        voja = nengo.Voja(learning_rate=5e-2, post_synapse=None)
        conn_in = nengo.Connection(stim_keys, memory, synapse=None, learning_rule_type=voja)
        nengo.Connection(learning, conn_in.learning_rule, synapse=None)
        conn_out = nengo.Connection(
            memory,
            recall,
            learning_rule_type=nengo.PES(1e-3),
            function=lambda x: np.zeros(d_value),
        )
        error = nengo.Ensemble(n_neurons, d_value)
        nengo.Connection(learning, error.neurons, transform=[[10.0]] * n_neurons, synapse=None)
        nengo.Connection(stim_values, error, transform=-1, synapse=None)
        nengo.Connection(recall, error, synapse=None)
        nengo.Connection(error, conn_out.learning_rule)
        probes = {
            "keys": nengo.Probe(stim_keys, synapse=None),
            "values": nengo.Probe(stim_values, synapse=None),
            "learning": nengo.Probe(learning, synapse=None),
            "error": nengo.Probe(error, synapse=0.005),
            "recall": nengo.Probe(recall, synapse=None),
            "encoders": nengo.Probe(conn_in.learning_rule, "scaled_encoders"),
        }
    return model, probes, T
