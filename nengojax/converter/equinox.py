"""Equinox front end of `nengojax.Converter`: modules -> `LayerSpec` lists.

Equinox layers work on one sample, channels first (``(C, H, W)`` for
``Conv2d``), which is also the layout of the converted network's input.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import nengo
import numpy as np
from nengo.exceptions import ValidationError

from .layers import LayerSpec, activation_neuron_type, fixed_linear_matrix, out_shape

__all__ = ["equinox_specs"]


def _flatten(module) -> list:
    """The layers of ``module`` in order (Sequential and MLP unrolled)."""
    if isinstance(module, eqx.nn.Sequential):
        out = []
        for layer in module.layers:
            out.extend(_flatten(layer))
        return out
    if isinstance(module, eqx.nn.MLP):
        out = []
        for k, layer in enumerate(module.layers):
            out.append(layer)
            last = k == len(module.layers) - 1
            out.append(module.final_activation if last else module.activation)
        return out
    if isinstance(module, eqx.nn.Lambda):
        return [(module, module.fn)]
    return [module]


def _same_padding(shape_in, kernel, stride) -> tuple:
    """Per-dimension ``(lo, hi)`` padding of TensorFlow's (and nengo's) "same"."""
    pads = []
    for n, k, s in zip(shape_in, kernel, stride, strict=True):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _conv_spec(layer, shape_in, label):
    """A ``"conv"`` spec for an Equinox ConvNd, or None if nengo cannot express it."""
    nd = layer.num_spatial_dims
    if nd not in (1, 2) or layer.groups != 1 or any(d != 1 for d in layer.dilation):
        return None
    if len(shape_in) != nd + 1 or shape_in[0] != layer.in_channels:
        raise ValidationError(
            f"Converter: {label} expects inputs of shape ({layer.in_channels}, "
            f"<{nd} spatial dims>) (channels first), got {shape_in}",
            attr="input_shape",
        )
    if getattr(layer, "padding_mode", "ZEROS") != "ZEROS":
        return None
    spatial = tuple(shape_in[1:])
    kernel = tuple(layer.weight.shape[2:])
    stride = tuple(int(s) for s in layer.stride)
    if isinstance(layer.padding, str):
        if layer.padding.upper() not in ("SAME", "VALID"):
            return None
        pad = layer.padding.lower()
    else:
        padding = tuple(tuple(int(v) for v in p) for p in layer.padding)
        if all(p == (0, 0) for p in padding):
            pad = "valid"
        elif padding == _same_padding(spatial, kernel, stride):
            pad = "same"
        else:
            return None
    w = np.asarray(layer.weight, dtype=np.float64)
    kernel_nengo = np.transpose(w, tuple(range(2, 2 + nd)) + (1, 0))
    conv = nengo.Convolution(
        n_filters=w.shape[0],
        input_shape=shape_in,
        kernel_size=kernel,
        strides=stride,
        padding=pad,
        channels_last=False,
        init=kernel_nengo,
    )
    shape_out = tuple(conv.output_shape.shape)
    bias = None
    if layer.bias is not None:
        b = np.asarray(layer.bias, dtype=np.float64).reshape(-1)
        bias = np.repeat(b, math.prod(shape_out[1:]))
    return LayerSpec("conv", layer, shape_in, shape_out, conv=conv, bias=bias, label=label)


def _jax_spec(module, fn, shape_in, label):
    """Fallback: ``module`` runs in a JaxNode, with its float arrays as params."""
    if isinstance(module, eqx.Module):
        params, static = eqx.partition(module, eqx.is_inexact_array)
        if not jax.tree_util.tree_leaves(params):
            params = None

            def call(x):
                return module(x)
        else:

            def call(p, x):
                return eqx.combine(p, static)(x)
    else:
        params = None
        call = fn
    shape_out = out_shape(lambda x: module(x) if fn is None else fn(x), shape_in)
    return LayerSpec("jax", module, shape_in, shape_out, fn=call, params=params, label=label)


def _function_spec(module, fn, shape_in, label):
    """Spec of an activation or other function (possibly from an ``eqx.nn.Lambda``)."""
    shape_out = out_shape(fn, shape_in)
    nt = activation_neuron_type(fn)
    if nt is not None:
        return LayerSpec("act", module, shape_in, shape_out, neuron_type=nt, fn=fn, label=label)
    mat = fixed_linear_matrix(fn, shape_in)
    if mat is not None:
        if mat.shape[0] == mat.shape[1] and np.array_equal(mat, np.eye(mat.shape[0])):
            return LayerSpec("reshape", module, shape_in, shape_out, label=label)
        return LayerSpec("fixed", module, shape_in, shape_out, weight=mat, label=label)
    return _jax_spec(module, fn, shape_in, label)


def equinox_specs(model, input_shape: tuple, max_to_avg_pool: bool) -> list[LayerSpec]:
    """The `LayerSpec` list of an Equinox model."""
    specs = []
    shape = tuple(input_shape)
    for k, item in enumerate(_flatten(model)):
        if isinstance(item, tuple):  # (Lambda, fn)
            module, fn = item
        else:
            module, fn = item, None
        label = f"layer{k}_{type(module).__name__ if fn is None else _fn_name(fn)}"
        if fn is not None or not isinstance(module, eqx.Module):
            fn = module if fn is None else fn
            if not callable(fn):
                raise ValidationError(
                    f"Converter: layer {k} ({module!r}) is not callable", attr="model"
                )
            spec = _function_spec(module, fn, shape, label)
        elif isinstance(module, eqx.nn.Linear):
            w = np.asarray(module.weight, dtype=np.float64)
            b = None if module.bias is None else np.asarray(module.bias, dtype=np.float64)
            if math.prod(shape) != w.shape[1]:
                raise ValidationError(
                    f"Converter: {label} expects {w.shape[1]} inputs, but the previous "
                    f"layer gives shape {shape}",
                    attr="input_shape",
                )
            shape_out = out_shape(module, shape)
            spec = LayerSpec("dense", module, shape, shape_out, weight=w, bias=b, label=label)
        elif isinstance(module, (eqx.nn.Conv1d, eqx.nn.Conv2d)):
            spec = _conv_spec(module, shape, label) or _jax_spec(module, None, shape, label)
        elif isinstance(module, eqx.nn.Dropout | eqx.nn.Identity):
            spec = LayerSpec("reshape", module, shape, shape, label=label)
        elif isinstance(module, (eqx.nn.MaxPool1d, eqx.nn.MaxPool2d)) and max_to_avg_pool:
            cls = eqx.nn.AvgPool1d if isinstance(module, eqx.nn.MaxPool1d) else eqx.nn.AvgPool2d
            avg = cls(module.kernel_size, module.stride, module.padding)
            mat = fixed_linear_matrix(avg, shape)
            spec = LayerSpec(
                "fixed", module, shape, out_shape(avg, shape), weight=mat, label=label
            )
        elif isinstance(module, eqx.nn.Pool) and not isinstance(
            module, (eqx.nn.MaxPool1d, eqx.nn.MaxPool2d, eqx.nn.MaxPool3d)
        ):
            mat = fixed_linear_matrix(module, shape)
            if mat is None:
                spec = _jax_spec(module, None, shape, label)
            else:
                spec = LayerSpec(
                    "fixed", module, shape, out_shape(module, shape), weight=mat, label=label
                )
        else:
            if isinstance(module, eqx.nn.Pool):
                label += " (max pooling has no nengo equivalent; see max_to_avg_pool)"
            spec = _jax_spec(module, None, shape, label)
        specs.append(spec)
        shape = spec.shape_out
    return specs


def _fn_name(fn) -> str:
    import functools

    if isinstance(fn, functools.partial):
        return _fn_name(fn.func)
    return getattr(fn, "__name__", type(fn).__name__)
