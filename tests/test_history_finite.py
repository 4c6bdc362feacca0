"""The finiteness check that stops a diverging ``fit`` (`simulator.history.all_finite`)."""

import jax.numpy as jnp
import numpy as np
import pytest

from nengojax.simulator.history import _finite_tree, all_finite


def _tree(n=50):
    return {f"p{i}": jnp.full((i % 5 + 1, 2), 0.5, jnp.float32) for i in range(n)}


def test_finite_tree_is_true():
    assert all_finite(_tree())
    assert all_finite((jnp.asarray(1.0), _tree()))
    assert all_finite({})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_bad_value_anywhere(bad):
    tree = _tree()
    tree["p37"] = tree["p37"].at[1, 0].set(bad)
    assert not all_finite(tree)
    assert not all_finite((jnp.asarray([0.1, bad]), _tree()))


def test_mixed_dtypes_and_shapes():
    tree = {"a": jnp.arange(3), "b": jnp.zeros((2, 2), jnp.float32), "c": jnp.asarray(2.0)}
    assert all_finite(tree)
    tree["c"] = jnp.asarray(np.nan, jnp.float32)
    assert not all_finite(tree)


def test_one_check_for_many_leaves():
    # a model with thousands of params used to get one reduction per leaf, which
    # took XLA many seconds to compile; now the values are checked in one op
    text = _finite_tree.lower(_tree(500)).as_text()
    assert text.count("is_finite") == 1
