"""A new neuron type with its own Operator and build function (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/usage/rectified_linear.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The notebook's second model: 2-D representation with RectifiedLinear neurons
(its own seed, 10). The class is renamed ``CorpusRectifiedLinear`` so that it does
not clash with ``nengo.RectifiedLinear`` in nengo's builder registry.
"""

import nengo
import numpy as np
from nengo.builder import Builder
from nengo.builder.operator import Operator


class CorpusRectifiedLinear(nengo.neurons.NeuronType):
    """A rectified linear neuron model, defined by the user."""

    def gain_bias(self, max_rates, intercepts):
        """Gain and bias from maximum firing rates and x-intercepts."""
        gain = max_rates / (1 - intercepts)
        bias = -intercepts * gain
        return gain, bias

    def step(self, dt, J, output):
        """Rates in Hz for input current (incl. bias)."""
        output[...] = np.maximum(0.0, J)


class SimCorpusRectifiedLinear(Operator):
    """Set the output to the rectified input current."""

    def __init__(self, output, J, neurons, tag=None):
        super().__init__(tag=tag)
        self.neurons = neurons
        self.reads = [J]
        self.updates = [output]
        self.sets = []
        self.incs = []

    @property
    def output(self):
        """Output signal of the ensemble."""
        return self.updates[0]

    @property
    def J(self):
        """Input current."""
        return self.reads[0]

    def make_step(self, signals, dt, rng):
        """The step function the reference simulator calls."""
        J = signals[self.J]
        output = signals[self.output]

        def step_simrectifiedlinear():
            output[...] = np.maximum(0, J)

        return step_simrectifiedlinear


@Builder.register(CorpusRectifiedLinear)
def build_rectified_linear(model, neuron_type, neurons):
    """Add the user's operator to the model."""
    model.operators.append(
        SimCorpusRectifiedLinear(
            output=model.sig[neurons]["out"], J=model.sig[neurons]["in"], neurons=neuron_type
        )
    )


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    model = nengo.Network(label="2D Representation", seed=10)
    with model:
        neurons = nengo.Ensemble(100, dimensions=2, neuron_type=CorpusRectifiedLinear())
        sin = nengo.Node(output=np.sin)
        cos = nengo.Node(output=np.cos)
        nengo.Connection(sin, neurons[0])
        nengo.Connection(cos, neurons[1])
        probes = {
            "sin": nengo.Probe(sin, "output"),
            "cos": nengo.Probe(cos, "output"),
            "neurons": nengo.Probe(neurons, "decoded_output", synapse=0.01),
        }
    return model, probes, 5.0
