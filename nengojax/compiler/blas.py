"""The decoder solves' matrix products on SciPy's BLAS, to NumPy's bits.

NumPy and SciPy each ship an OpenBLAS of their own, each with its own pool of
threads, and an OpenBLAS thread spins for a while after its call, waiting for
the next one. nengo's solve alternates between the two: NumPy's products
(``np.dot``: the rates' inputs, the Gram matrix, ``A.T @ targets``, the
residuals) and SciPy's Cholesky factor and solve. On a machine with few cores
one pool's spinning threads then take the cores from the other's working ones:
measured on 2 cores, a 1000 x 1000 Cholesky factor took 30-40 ms after NumPy's
Gram matrix and 9-13 ms after SciPy's, and the whole solve of a 1000-neuron
ensemble 110-128 ms against 75-79 ms with every product on SciPy's BLAS.

For an activity matrix of at least `MIN_SIZE` elements, `dot` and `gram`
make their products with the routine ``np.dot`` calls for them (``gemm`` for
a product of matrices; ``syrk`` for a matrix times its own transpose) on
SciPy's BLAS, so the solve runs in one pool. The two libraries are different
builds (whose kernels for products with a small inner dimension, such as the
rates' inputs, differ in the last bit: those stay NumPy's), so the first use
in each dtype checks that they give the same bits on products of each form
`dot` and `gram` make, large enough for OpenBLAS's blocked paths; where any
differs, both are NumPy's for the rest of the process. Products NumPy gives
to other routines (a vector: ``gemv``) and other dtypes are always NumPy's.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

__all__ = ["dot", "gram"]

_agrees: dict = {}  # dtype -> whether SciPy's products equal NumPy's, bit for bit

#: Activity matrices with fewer elements keep every product on NumPy: their
#: products take too little time to wake OpenBLAS's threads (and a model of
#: small ensembles never pays for the first use's check).
MIN_SIZE = 2**18


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.dot(a, b)``, to the bit, on SciPy's BLAS where it can be.

    Parameters
    ----------
    a, b : numpy.ndarray
        The factors.

    Returns
    -------
    numpy.ndarray
        Their product, C-ordered as NumPy's (later sums over it then match too).
    """
    large = max(a.size, b.size) >= MIN_SIZE
    if not (large and _matrix(a) and _matrix(b) and a.dtype == b.dtype and _agree(a.dtype)):
        return np.dot(a, b)
    return _gemm(a, b)


def gram(a: np.ndarray, transpose: bool) -> np.ndarray:
    """``np.dot(a, a.T)`` (``transpose``) or ``np.dot(a.T, a)``, to the bit in
    the upper triangle: the part `scipy.linalg.cho_factor` reads.

    Parameters
    ----------
    a : numpy.ndarray
        A 2-D matrix.
    transpose : bool
        Whether the product is ``a @ a.T`` (else ``a.T @ a``).

    Returns
    -------
    numpy.ndarray
        The product; below the diagonal, zeros where SciPy's BLAS made it.
    """
    if not (a.size >= MIN_SIZE and _matrix(a) and a.flags.c_contiguous and _agree(a.dtype)):
        return np.dot(a, a.T) if transpose else np.dot(a.T, a)
    return _syrk(a, transpose)


def _matrix(x) -> bool:
    # NumPy's own BLAS-3 case: 2-D, both dimensions above 1 (else gemv or dot),
    # in a dtype SciPy's BLAS has, in memory NumPy hands to BLAS as it is
    return (
        x.ndim == 2
        and x.shape[0] > 1
        and x.shape[1] > 1
        and x.dtype in (np.float32, np.float64)
        and (x.flags.c_contiguous or x.flags.f_contiguous)
    )


# NumPy calls OpenBLAS's row-major CBLAS interface, which calls the Fortran
# routine on the transposed problem: ``(a @ b).T = b.T @ a.T``, each operand's
# memory read as a column-major matrix (a C-ordered array's transpose, with
# "N"; an F-ordered one as itself, with "T"). The same call here gives the
# same bits; its result, transposed back, is a C-ordered view.


def _as_fortran(x):
    """``(matrix, trans)``: ``x``'s memory as the column-major matrix NumPy's
    call passes (a view), and the flag that makes it ``x.T`` again."""
    return (x.T, 0) if x.flags.c_contiguous else (x, 1)


def _gemm(a, b):
    fb, trans_b = _as_fortran(b)
    fa, trans_a = _as_fortran(a)
    gemm = blas.get_blas_funcs("gemm", (fa, fb))
    return gemm(1.0, fb, fa, trans_a=trans_b, trans_b=trans_a).T


def _syrk(a, transpose):
    # NumPy's "upper" in row-major is the Fortran routine's "lower"
    fa, trans = _as_fortran(a)
    # a.T @ a is fa @ fa.T (trans 0) for a C-ordered a (the only kind `gram` passes)
    syrk = blas.get_blas_funcs("syrk", (fa,))
    return syrk(1.0, fa, trans=trans ^ int(transpose), lower=1).T


def _agree(dtype) -> bool:
    dtype = np.dtype(dtype)
    if dtype not in _agrees:
        _agrees[dtype] = _same_products(dtype)
    return _agrees[dtype]


def _same_products(dtype) -> bool:
    """Whether SciPy's products equal NumPy's bit for bit, in every form the
    solves use (``A`` C-ordered as nengo's rates, solutions F-ordered as
    SciPy's), on a tall and a wide ``A``, large enough for OpenBLAS's blocked
    paths."""
    rng = np.random.RandomState(0)
    cases = []
    for m, n in ((400, 240), (96, 400)):
        a = rng.rand(m, n).astype(dtype)
        targets = rng.rand(m, 4).astype(dtype)
        solved = np.asfortranarray(rng.rand(n, 4).astype(dtype))
        cases += [(a.T, targets), (a.T, np.asfortranarray(targets)), (a, solved)]
        cases += [(a, False), (a, True)]
    # all of SciPy's, then all of NumPy's (alternating, each pool's spinning
    # threads would slow the other's: see the module's docstring)
    ours = [_product(x, y, scipy=True) for x, y in cases]
    numpys = [_product(x, y, scipy=False) for x, y in cases]
    return all(np.array_equal(a, b) for a, b in zip(ours, numpys, strict=True))


def _product(a, b, scipy: bool):
    if isinstance(b, bool):  # a Gram matrix: its upper triangle
        product = _syrk(a, b) if scipy else np.dot(a, a.T) if b else np.dot(a.T, a)
        return np.triu(product)
    return _gemm(a, b) if scipy else np.dot(a, b)
