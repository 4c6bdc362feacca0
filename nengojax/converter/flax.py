"""Flax NNX front end of `nengojax.Converter`: modules -> `LayerSpec` lists.

Flax layers are channels last (``(H, W, C)`` for a 2-D ``nnx.Conv``), which is
also the layout of the converted network's input.
"""

from __future__ import annotations

import functools
import math

import jax
import nengo
import numpy as np
from flax import nnx
from nengo.exceptions import ValidationError

from .layers import LayerSpec, activation_neuron_type, fixed_linear_matrix, out_shape

__all__ = ["flax_specs"]


def _flatten(module) -> list:
    if isinstance(module, nnx.Sequential):
        out = []
        for layer in module.layers:
            out.extend(_flatten(layer))
        return out
    return [module]


def _as_tuple(v, n) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    return tuple(int(x) for x in v)


def _conv_spec(layer, shape_in, label):
    """A ``"conv"`` spec for an ``nnx.Conv``, or None if nengo cannot express it."""
    kernel = np.asarray(layer.kernel[...], dtype=np.float64)  # (*k, C_in, C_out)
    nd = kernel.ndim - 2
    ones = (1,) * nd
    if (
        nd not in (1, 2)
        or layer.feature_group_count != 1
        or _as_tuple(layer.kernel_dilation or 1, nd) != ones
        or _as_tuple(layer.input_dilation or 1, nd) != ones
        or len(shape_in) != nd + 1
    ):
        return None
    padding = layer.padding
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            return None
        pad = padding.lower()
    elif isinstance(padding, int):
        if padding != 0:
            return None
        pad = "valid"
    elif all(_as_tuple(p, 2) == (0, 0) for p in padding):
        pad = "valid"
    else:
        return None
    conv = nengo.Convolution(
        n_filters=kernel.shape[-1],
        input_shape=shape_in,
        kernel_size=kernel.shape[:nd],
        strides=_as_tuple(layer.strides or 1, nd),
        padding=pad,
        channels_last=True,
        init=kernel,
    )
    shape_out = tuple(conv.output_shape.shape)
    bias = None
    if layer.bias is not None:
        b = np.asarray(layer.bias[...], dtype=np.float64)
        bias = np.tile(b, math.prod(shape_out[:-1]))
    return LayerSpec("conv", layer, shape_in, shape_out, conv=conv, bias=bias, label=label)


def _jax_spec(module, shape_in, label):
    """Fallback: ``module`` runs in a JaxNode (its ``nnx.Param`` values as params)."""
    if isinstance(module, nnx.Module):
        graphdef, params, rest = nnx.split(module, nnx.Param, ...)
        to_pure = getattr(nnx, "to_pure_dict", None)
        pure = to_pure(params) if to_pure is not None else params.to_pure_dict()

        def call(p, x):
            st = jax.tree_util.tree_map(lambda v: v, params)  # a copy
            nnx.replace_by_pure_dict(st, p)
            return nnx.merge(graphdef, st, rest)(x)

        if not jax.tree_util.tree_leaves(pure):
            pure = None

            def call(x):
                return module(x)

        shape_out = out_shape(module, shape_in)
    else:
        pure, call = None, module
        shape_out = out_shape(module, shape_in)
    return LayerSpec("jax", module, shape_in, shape_out, fn=call, params=pure, label=label)


def _fn_name(fn) -> str:
    if isinstance(fn, functools.partial):
        return _fn_name(fn.func)
    return getattr(fn, "__name__", type(fn).__name__)


def flax_specs(model, input_shape: tuple, max_to_avg_pool: bool) -> list[LayerSpec]:
    """The `LayerSpec` list of a Flax NNX model."""
    specs = []
    shape = tuple(input_shape)
    for k, module in enumerate(_flatten(model)):
        if isinstance(module, nnx.Module):
            label = f"layer{k}_{type(module).__name__}"
        else:
            label = f"layer{k}_{_fn_name(module)}"
        if isinstance(module, nnx.Linear):
            w = np.asarray(module.kernel[...], dtype=np.float64).T
            b = None if module.bias is None else np.asarray(module.bias[...], dtype=np.float64)
            if shape[-1:] != (w.shape[1],):
                raise ValidationError(
                    f"Converter: {label} expects {w.shape[1]} input features, but the "
                    f"previous layer gives shape {shape}",
                    attr="input_shape",
                )
            if len(shape) != 1:
                spec = _jax_spec(module, shape, label)
            else:
                spec = LayerSpec(
                    "dense", module, shape, (w.shape[0],), weight=w, bias=b, label=label
                )
        elif isinstance(module, nnx.Conv):
            spec = _conv_spec(module, shape, label) or _jax_spec(module, shape, label)
        elif isinstance(module, nnx.Dropout):
            spec = LayerSpec("reshape", module, shape, shape, label=label)
        elif isinstance(module, nnx.Module):
            spec = _jax_spec(module, shape, label)
        elif callable(module):
            fn = module
            base = fn.func if isinstance(fn, functools.partial) else fn
            if base is nnx.max_pool and max_to_avg_pool:
                fn = functools.partial(nnx.avg_pool, *fn.args, **fn.keywords)
            nt = activation_neuron_type(fn)
            if nt is not None:
                spec = LayerSpec(
                    "act", module, shape, shape, neuron_type=nt, fn=module, label=label
                )
            else:
                mat = fixed_linear_matrix(fn, shape)
                shape_out = out_shape(fn, shape)
                if mat is None:
                    if base is nnx.max_pool:
                        label += " (max pooling has no nengo equivalent; see max_to_avg_pool)"
                    spec = _jax_spec(module, shape, label)
                elif mat.shape[0] == mat.shape[1] and np.array_equal(mat, np.eye(len(mat))):
                    spec = LayerSpec("reshape", module, shape, shape_out, label=label)
                else:
                    spec = LayerSpec("fixed", module, shape, shape_out, weight=mat, label=label)
        else:
            raise ValidationError(
                f"Converter: layer {k} ({module!r}) is neither an nnx.Module nor a function",
                attr="model",
            )
        specs.append(spec)
        shape = spec.shape_out
    return specs
