"""Block-sparse products (`BsrDotInc`): every block shape against numpy, alone
and under vmap (a minibatch), where each form puts the minibatch axis."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nengojax.ops import basic

SHAPES = [
    (3, 1, 7),  # row blocks: decoders of one dimension
    (3, 9, 1),  # column blocks: encoders of one dimension
    (4, 12, 5),  # tall, few columns: encoders (broadcast products)
    (2, 40, basic.SMALL_J + 1),  # tall, many columns: a batched dot
    (3, 4, 30),  # wide: decoders of several dimensions
    (2, 6, 6),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("extra", [(), (3,)], ids=["vector", "matrix"])
def test_block_products_match_numpy(shape, extra, rng):
    k, i, j = shape
    a = rng.uniform(-1, 1, size=shape)
    xb = rng.uniform(-1, 1, size=(k, j, *extra))
    expected = np.einsum("kij,kj...->ki...", a, xb)
    got = basic._block_products(jnp.asarray(a, "float32"), jnp.asarray(xb, "float32"), "highest")
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5 * j)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_block_products_under_vmap_equal_each_item(shape, rng):
    k, i, j = shape
    a = jnp.asarray(rng.uniform(-1, 1, size=shape), "float32")
    xs = jnp.asarray(rng.uniform(-1, 1, size=(5, k, j)), "float32")

    def product(xb):
        return basic._block_products(a, xb, "highest")

    batched = jax.jit(jax.vmap(product))(xs)
    for b in range(xs.shape[0]):
        np.testing.assert_allclose(batched[b], jax.jit(product)(xs[b]), rtol=1e-6, atol=1e-6)
