"""Thresholding associative memory recalling APPLE (nengo_spa 2.0 documentation example).

Source: https://github.com/nengo/nengo-spa/blob/master/docs/examples/associative-memory.ipynb
(nengo_spa documentation, Copyright Applied Brain Research; nengo_spa is
GPL-2.0 / proprietary dual-licensed, see its LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
modules, parameters, inputs, probes and run time); plotting removed.
The notebook's first memory.
"""

import nengo
import nengo_spa as spa
import numpy as np


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    seed = 1
    dim = 32
    vocab = spa.Vocabulary(dimensions=dim, pointer_gen=np.random.RandomState(seed + 1))
    words = ["ORANGE", "APRICOT", "CHERRY", "STRAWBERRY", "APPLE"]
    vocab.populate(";".join(words))
    with spa.Network("AssociativeMemory", seed=seed) as model:
        model.assoc_mem = spa.ThresholdingAssocMem(
            threshold=0.3, input_vocab=vocab, mapping=vocab.keys()
        )
        spa.sym.APPLE >> model.assoc_mem
        input_probe = nengo.Probe(model.assoc_mem.input)
        output_probe = nengo.Probe(model.assoc_mem.output, synapse=0.03)
    return model, {"input": input_probe, "output": output_probe}, 0.2
