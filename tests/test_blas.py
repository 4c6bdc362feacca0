"""The solves' products on SciPy's BLAS equal NumPy's bit for bit."""

import nengo
import numpy as np
import pytest
from nengo.builder import Model

from nengojax.compiler import blas
from nengojax.compiler.solves import SharingBuilder


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scipys_products_are_taken_and_equal_numpys(dtype):
    # the platform's NumPy and SciPy agree (else the fast path is off: a
    # failure here means a slower build, not a different one)
    assert blas._agree(np.dtype(dtype))
    rng = np.random.RandomState(1)
    for m, n in ((1200, 700), (400, 900)):  # tall and wide, past MIN_SIZE
        a = rng.rand(m, n).astype(dtype)
        assert a.size >= blas.MIN_SIZE
        for transpose, size in ((False, n), (True, m)):
            want = np.dot(a, a.T) if transpose else np.dot(a.T, a)
            upper = np.triu_indices(size)
            assert np.array_equal(blas.gram(a, transpose)[upper], want[upper])
        y = rng.rand(m, 3).astype(dtype)
        x = np.asfortranarray(rng.rand(n, 3).astype(dtype))
        for left, right in ((a.T, y), (a.T, np.asfortranarray(y)), (a, x)):
            got = blas.dot(left, right)
            assert np.array_equal(got, np.dot(left, right))
            assert got.flags.c_contiguous  # as NumPy's, so that later sums match too


def test_numpy_keeps_what_scipy_cannot_match(monkeypatch):
    def refuse(*args):
        raise AssertionError("SciPy's BLAS used")

    rng = np.random.RandomState(2)
    a = rng.rand(1000, 600)
    small = rng.rand(100, 50)
    monkeypatch.setattr(blas, "_gemm", refuse)
    monkeypatch.setattr(blas, "_syrk", refuse)
    # vectors (NumPy's gemv), small matrices, strided views: NumPy's own product
    assert np.array_equal(blas.dot(a.T, a[:, :1]), np.dot(a.T, a[:, :1]))
    assert np.array_equal(blas.dot(small.T, small), np.dot(small.T, small))
    assert np.array_equal(blas.dot(a[::2].T, a[::2, :4]), np.dot(a[::2].T, a[::2, :4]))
    # libraries that disagree: NumPy's for everything
    monkeypatch.setattr(blas, "_agrees", {np.dtype(np.float64): False})
    assert np.array_equal(blas.gram(a, False), np.dot(a.T, a))
    assert np.array_equal(blas.dot(a.T, a[:, :4].copy()), np.dot(a.T, a[:, :4]))


def test_large_ensembles_decoders_equal_nengos(monkeypatch):
    # activity matrices past MIN_SIZE, tall (A.T @ A) and wide (A @ A.T)
    grams = []
    syrk = blas._syrk
    monkeypatch.setattr(blas, "_syrk", lambda a, t: grams.append(t) or syrk(a, t))
    with nengo.Network(seed=4) as net:
        tall = nengo.Ensemble(400, 2)
        wide = nengo.Ensemble(700, 1, n_eval_points=450)
        out = nengo.Node(size_in=2)
        nengo.Connection(tall, out)
        nengo.Connection(tall[0], wide, function=np.tanh)
        nengo.Connection(wide, out[1], function=lambda x: x**2)
    theirs = Model(dt=0.001)
    theirs.build(net)
    ours = Model(dt=0.001, builder=SharingBuilder())
    ours.build(net)
    assert sorted(grams) == [False, True]  # both forms on SciPy's BLAS
    for conn in net.all_connections:
        assert np.array_equal(ours.params[conn].weights, theirs.params[conn].weights), conn
        if theirs.params[conn].solver_info:
            np.testing.assert_array_equal(
                ours.params[conn].solver_info["rmses"], theirs.params[conn].solver_info["rmses"]
            )
