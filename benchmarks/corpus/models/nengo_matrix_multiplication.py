"""Multiplying two 2x2 matrices held in ensemble arrays (nengo 4.1 documentation example).

Source: https://github.com/nengo/nengo/blob/main/docs/examples/advanced/matrix_multiplication.ipynb
(nengo documentation, Copyright Applied Brain Research; Nengo licence, which
allows non-commercial use and derivatives with attribution; see nengo's LICENSE.rst).
Changes: re-typed as a ``build()`` function from the notebook's model (same
objects, parameters, inputs, probes and run time); plotting removed.
The complete model of the notebook's last cell (A, B, products C, sums D).
"""

import nengo
import numpy as np


def build():
    """The model, its probes and the run time.

    Returns
    -------
    tuple
        ``(network, probes, run_time)``.
    """
    N = 100
    Amat = np.asarray([[0.5, -0.5], [-0.2, 0.3]])
    Bmat = np.asarray([[0.58, -1.0], [0.7, 0.1]])
    radius = 1
    model = nengo.Network(label="Matrix Multiplication", seed=123)
    with model:
        A = nengo.networks.EnsembleArray(N, Amat.size, radius=radius)
        B = nengo.networks.EnsembleArray(N, Bmat.size, radius=radius)
        inputA = nengo.Node(Amat.ravel())
        inputB = nengo.Node(Bmat.ravel())
        nengo.Connection(inputA, A.input)
        nengo.Connection(inputB, B.input)
        A_probe = nengo.Probe(A.output, sample_every=0.01, synapse=0.01)
        B_probe = nengo.Probe(B.output, sample_every=0.01, synapse=0.01)
        c_size = Amat.size * Bmat.shape[1]
        C = nengo.networks.Product(N, dimensions=c_size)
    transformA = np.zeros((c_size, Amat.size))
    transformB = np.zeros((c_size, Bmat.size))
    for i in range(Amat.shape[0]):
        for j in range(Amat.shape[1]):
            for k in range(Bmat.shape[1]):
                c_index = j + k * Amat.shape[1] + i * Bmat.size
                transformA[c_index][j + i * Amat.shape[1]] = 1
                transformB[c_index][k + j * Bmat.shape[1]] = 1
    with model:
        nengo.Connection(A.output, C.A, transform=transformA)
        nengo.Connection(B.output, C.B, transform=transformB)
        C_probe = nengo.Probe(C.output, sample_every=0.01, synapse=0.01)
        D = nengo.networks.EnsembleArray(
            N, n_ensembles=Amat.shape[0] * Bmat.shape[1], radius=radius
        )
    transformC = np.zeros((D.dimensions, c_size))
    for i in range(c_size):
        transformC[i // Bmat.shape[0]][i] = 1
    with model:
        nengo.Connection(C.output, D.input, transform=transformC)
        D_probe = nengo.Probe(D.output, sample_every=0.01, synapse=0.01)
    return model, {"A": A_probe, "B": B_probe, "C": C_probe, "D": D_probe}, 1.0
