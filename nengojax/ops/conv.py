"""Lowerings of nengo's convolution operators (`.ConvInc`, `.ConvTransposeInc`).

Both become one ``jax.lax.conv_general_dilated`` with the padding nengo's NumPy
reference (``nengo/builder/transforms.py``) uses; the transposed convolution is a
correlation of the stride-dilated input with the spatially flipped kernel, padded
like nengo's ``conv2d_gradx``.  Channels-first signals are handled by the
dimension numbers (no transposes), 1-D convolutions need no extra axis, and
grouped convolutions use ``feature_group_count``.  Thin forward convolutions
(few kernel taps times input channels, `MAX_PATCH_TERMS`) are instead one
gather of the input's patches and one matrix product.  Unlike nengo's reference
simulator, convolutions of more than two spatial dimensions are supported.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from nengo.builder.transforms import GeneralConvInc, calc_gradx_pad
from nengo.exceptions import BuildError

from .registry import register_lowering


def _dimension_numbers(nd: int, channels_last: bool) -> jax.lax.ConvDimensionNumbers:
    """Signals are ``(*spatial, C)`` or ``(C, *spatial)`` with a batch axis 0 added;
    kernels are ``(*kernel_size, in_channels // groups, n_filters)``."""
    if channels_last:
        io_spec = (0, nd + 1) + tuple(range(1, nd + 1))
    else:
        io_spec = (0, 1) + tuple(range(2, nd + 2))
    kernel_spec = (nd + 1, nd) + tuple(range(nd))
    return jax.lax.ConvDimensionNumbers(io_spec, kernel_spec, io_spec)


def _forward_padding(conv) -> list[tuple[int, int]]:
    """Per spatial axis ``(low, high)`` padding of nengo's ``conv2d``."""
    if conv.padding == "valid":
        return [(0, 0)] * conv.dimensions
    pads = []
    for h, k, s, out in zip(
        conv.input_shape.spatial_shape,
        conv.kernel_size,
        conv.strides,
        conv.output_shape.spatial_shape,
        strict=True,
    ):
        p = max((out - 1) * s + k - h, 0)
        pads.append((p // 2, p - p // 2))  # floor first
    return pads


def _transpose_padding(conv) -> list[tuple[int, int]]:
    """Per spatial axis padding of the stride-dilated input, as nengo's
    ``conv2d_gradx`` pads it (ceil first), with the high side chosen so the
    correlation yields exactly the output size (trailing zeros or a crop beyond
    what nengo's windows read)."""
    pads = []
    for h, k, s, out in zip(
        conv.input_shape.spatial_shape,
        conv.kernel_size,
        conv.strides,
        conv.output_shape.spatial_shape,
        strict=True,
    ):
        p = calc_gradx_pad(conv.padding, h, out, s, k)
        low = int(math.ceil(p / 2))
        dilated = (h - 1) * s + 1
        high = out + k - 1 - dilated - low
        pads.append((low, high))
    return pads


#: Convolutions with at most this many kernel taps times input channels (a
#: 3 x 3 kernel on one channel: 9) gather the input's patches (the elements
#: each output reads, one gather with indices fixed at build) and multiply
#: them with the filters: XLA's convolution packs such thin inputs slowly (a
#: 28 x 28 image to 8 maps: 23 of the 51 us of a spiking conv net's step;
#: with the patches 1.2x more steps/s, 1.05x at minibatch 32, one more
#: fusion). Slices of the input, one per tap, made ten more fusions.
MAX_PATCH_TERMS = 16


def _patch_indices(conv, padding, strides) -> np.ndarray:
    """For each output position and (kernel tap, input channel), the flat index
    of the input element it reads; ``input size`` (one past the end) where it
    reads the zero padding. Shape ``(*out_spatial, taps * n_in)``."""
    spatial = tuple(conv.input_shape.spatial_shape)
    out_spatial = tuple(conv.output_shape.spatial_shape)
    n_in = conv.input_shape.n_channels
    nd = len(spatial)
    outs = np.indices(out_spatial).reshape(nd, -1, 1, 1)  # (nd, out, 1, 1)
    taps = np.indices(conv.kernel_size).reshape(nd, 1, -1, 1)  # (nd, 1, taps, 1)
    low = np.array([lo for lo, _ in padding]).reshape(nd, 1, 1, 1)
    pos = outs * np.array(strides).reshape(nd, 1, 1, 1) + taps - low  # (nd, out, taps, 1)
    inside = np.all((pos >= 0) & (pos < np.array(spatial).reshape(nd, 1, 1, 1)), axis=0)
    chans = np.arange(n_in).reshape(1, 1, -1)
    shape = conv.input_shape.shape  # positions outside it: clipped, then replaced
    if conv.channels_last:
        flat = np.ravel_multi_index((*pos, chans), shape, mode="clip")
    else:
        flat = np.ravel_multi_index((chans, *pos), shape, mode="clip")
    flat = np.where(inside, flat, int(np.prod(shape)))
    return flat.reshape(*out_spatial, -1).astype(np.int32)


def _lower_patch_product(op, conv, padding, strides, ctx):
    """A forward convolution (one group) as the product of the input's patches
    (one gather of the elements each output reads) with the filters."""
    idx = _patch_indices(conv, padding, strides)
    y_shape = tuple(op.Y.shape)

    def apply(env):
        x = env.read(op.X).reshape(-1)
        x = jnp.concatenate([x, jnp.zeros(1, x.dtype)])  # the padding's zero
        w = env.read(op.W).reshape(idx.shape[-1], -1)  # (taps * n_in, n_filters)
        y = jnp.dot(x[idx], w, precision=ctx.precision)  # (*out_spatial, n_filters)
        if not conv.channels_last:
            y = jnp.moveaxis(y, -1, 0)
        env.inc(op.Y, y.reshape(y_shape))

    return apply


@register_lowering(GeneralConvInc)
def lower_general_conv_inc(op, ctx):
    conv = op.conv
    nd = conv.dimensions
    in_shape = (1,) + tuple(conv.input_shape.shape)
    y_shape = tuple(op.Y.shape)
    dn = _dimension_numbers(nd, conv.channels_last)
    strides = tuple(int(s) for s in conv.strides)
    if tuple(op.W.shape) != tuple(conv.kernel_shape):
        raise BuildError(
            f"{op}: kernel shape {op.W.shape} does not match the expected {conv.kernel_shape}"
        )

    if op.is_transpose:
        if conv.groups != 1:
            raise BuildError(f"{op}: grouped transposed convolutions are not supported")
        padding = _transpose_padding(conv)
        flip_axes = tuple(range(nd))

        def apply(env):
            x = env.read(op.X).reshape(in_shape)
            w = jnp.flip(env.read(op.W), axis=flip_axes)
            y = jax.lax.conv_general_dilated(
                x,
                w,
                window_strides=(1,) * nd,
                padding=padding,
                lhs_dilation=strides,
                dimension_numbers=dn,
                precision=ctx.precision,
            )
            env.inc(op.Y, y.reshape(y_shape))

        return apply

    padding = _forward_padding(conv)
    groups = int(conv.groups)
    terms = math.prod(conv.kernel_size) * conv.input_shape.n_channels
    if groups == 1 and terms <= MAX_PATCH_TERMS:
        return _lower_patch_product(op, conv, padding, strides, ctx)

    def apply(env):
        x = env.read(op.X).reshape(in_shape)
        y = jax.lax.conv_general_dilated(
            x,
            env.read(op.W),
            window_strides=strides,
            padding=padding,
            dimension_numbers=dn,
            feature_group_count=groups,
            precision=ctx.precision,
        )
        env.inc(op.Y, y.reshape(y_shape))

    return apply
