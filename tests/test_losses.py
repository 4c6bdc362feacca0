"""nengojax.losses: values, NaN handling and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nengo.exceptions import ValidationError

from nengojax import losses


@pytest.fixture
def yy():
    rng = np.random.default_rng(0)
    y_true = rng.standard_normal((4, 5, 3)).astype(np.float32)
    y_pred = rng.standard_normal((4, 5, 3)).astype(np.float32)
    return y_true, jnp.asarray(y_pred)


def test_mse(yy):
    y_true, y_pred = yy
    value = losses.mse(y_true, y_pred)
    assert value.shape == ()
    np.testing.assert_allclose(value, np.mean((np.asarray(y_pred) - y_true) ** 2), rtol=1e-6)
    assert float(losses.mse(y_true, jnp.asarray(y_true))) == 0


def test_nan_mse_ignores_nan_targets(yy):
    y_true, y_pred = yy
    masked = y_true.copy()
    masked[0, :, 1] = np.nan
    masked[2, 3] = np.nan
    valid = ~np.isnan(masked)
    expect = np.mean((np.asarray(y_pred)[valid] - y_true[valid]) ** 2)
    np.testing.assert_allclose(losses.nan_mse(masked, y_pred), expect, rtol=1e-6)
    # no NaNs: same as mse
    np.testing.assert_allclose(
        losses.nan_mse(y_true, y_pred), losses.mse(y_true, y_pred), rtol=1e-6
    )
    # gradients finite, and zero where the target is NaN
    grad = jax.grad(lambda p: losses.nan_mse(masked, p))(y_pred)
    assert np.all(np.isfinite(grad))
    assert np.all(np.asarray(grad)[~valid] == 0)
    # all targets NaN: zero loss, no NaN
    assert float(losses.nan_mse(np.full_like(y_true, np.nan), y_pred)) == 0


def test_mse_with_nan_is_nan(yy):
    y_true, y_pred = yy
    y_true = y_true.copy()
    y_true[0, 0, 0] = np.nan
    assert np.isnan(losses.mse(y_true, y_pred))


@pytest.mark.parametrize("order", [1, 2, 3, np.inf])
def test_regularize_orders(yy, order):
    _, y_pred = yy
    p = np.asarray(y_pred)
    flat = p.reshape(4, 5, -1)
    expect = np.mean(np.linalg.norm(flat, ord=order, axis=-1))
    reg = losses.Regularize(order=order, weight=0.5)
    np.testing.assert_allclose(reg(None, y_pred), 0.5 * expect, rtol=1e-5)
    # y_true is ignored
    np.testing.assert_allclose(reg(np.zeros_like(p), y_pred), reg(None, y_pred))
    assert np.isfinite(float(jax.jit(lambda q: reg(None, q))(y_pred)))


def test_regularize_axis():
    rng = np.random.default_rng(1)
    p = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)  # per-step value (4, 5)
    reg0 = losses.Regularize(order=2, axis=0)
    np.testing.assert_allclose(reg0(None, p), np.mean(np.linalg.norm(p, axis=2)), rtol=1e-5)
    reg1 = losses.Regularize(order=1, axis=-1)
    np.testing.assert_allclose(reg1(None, p), np.mean(np.abs(p).sum(axis=3)), rtol=1e-5)
    with pytest.raises(ValidationError, match="out of range"):
        losses.Regularize(axis=2)(None, p)
    with pytest.raises(ValidationError, match="order"):
        losses.Regularize(order=0.5)


def test_regularize_gradient_at_zero():
    zeros = jnp.zeros((2, 3, 4))
    for order in (1.5, 2, np.inf):
        grad = jax.grad(lambda p, o=order: losses.Regularize(order=o)(None, p))(zeros)
        assert np.all(np.isfinite(grad))


def test_keras_argument_order():
    y_true = np.zeros((1, 2, 1), np.float32)
    y_pred = jnp.ones((1, 2, 1))
    # Regularize penalizes the second argument (the prediction), not the first
    assert float(losses.Regularize(order=1)(y_true, y_pred)) == 1.0
    assert float(losses.Regularize(order=1)(y_pred, jnp.asarray(y_true))) == 0.0
