"""`Converter`: Equinox and Flax NNX models -> (spiking) nengo networks.

Equinox and Flax are optional: they are imported when a model of theirs is
converted (``pip install nengojax[equinox]`` / ``nengojax[flax]``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from nengo.exceptions import ValidationError

from .layers import build_network

__all__ = ["Converter", "LayerMap"]


class LayerMap:
    """The nengo object of each converted layer, looked up by module.

    ``layers[module]`` finds a submodule (or activation function) by identity
    (Equinox modules are not hashable); ``layers[i]`` is the object of the
    ``i``-th layer; iterating gives ``(module, nengo_object)`` pairs.
    """

    def __init__(self, pairs: list):
        self._pairs = list(pairs)

    def __getitem__(self, key: Any):
        if isinstance(key, int):
            return self._pairs[key][1]
        for module, obj in self._pairs:
            if module is key:
                return obj
        raise KeyError(f"{key!r} is not a converted layer")

    def __contains__(self, key: Any) -> bool:
        return any(module is key for module, _ in self._pairs)

    def __iter__(self) -> Iterator:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"LayerMap({len(self)} layers)"


def _framework(model) -> str:
    try:
        import equinox as eqx

        if isinstance(model, eqx.Module):
            return "equinox"
    except ImportError:  # pragma: no cover - equinox not installed
        pass
    try:
        from flax import nnx

        if isinstance(model, nnx.Module):
            return "flax"
    except ImportError:  # pragma: no cover - flax not installed
        pass
    raise ValidationError(
        f"Converter: model must be an Equinox module or a Flax NNX module "
        f"(got {type(model).__name__})",
        attr="model",
    )


class Converter:
    """Convert an Equinox or Flax NNX model into a nengo network.

    Dense and convolutional layers become connection transforms (dense
    matrices, `nengo.Convolution`) into the next layer; activation functions
    become ensembles of neurons computing them (``jax.nn.relu`` ->
    `nengo.RectifiedLinear`, ``jax.nn.sigmoid`` -> `nengo.Sigmoid` and
    ``jax.nn.tanh`` -> `nengo.Tanh` with ``tau_ref=1`` so their rates equal the
    functions exactly, ``jax.nn.leaky_relu`` -> `nengojax.neurons.LeakyReLU`).
    A layer followed by an activation becomes one ensemble with gain 1 and the
    layer's bias as its bias; a layer without activation becomes a
    passthrough Node, its bias a connection from a constant ``bias`` Node.
    Average pooling, flattening and other fixed linear functions become
    non-trainable connections. Anything else runs in a `nengojax.JaxNode`,
    with a warning naming the layer.

    Parameters
    ----------
    model : equinox.Module or flax.nnx.Module
        ``eqx.nn.Sequential``, ``eqx.nn.MLP``, ``nnx.Sequential`` or a single
        layer. Equinox layers are channels first, Flax layers channels last.
    input_shape : tuple of int
        Shape of one input sample (without batch dimension).
    swap_activations : dict, optional
        Maps activation functions (e.g. ``jax.nn.relu``) to the nengo neuron
        type to use instead (e.g. ``nengo.SpikingRectifiedLinear()``).
    scale_firing_rates : float
        Multiplies the gain and bias of every neuron ensemble and divides the
        weights out of it, so rate outputs of homogeneous neurons (ReLU types)
        are unchanged and spiking ones fire faster (less noise).
    synapse : nengo.synapses.Synapse or float, optional
        Synapse on every connection out of spiking neurons.
    max_to_avg_pool : bool
        Replace max pooling (which has no linear nengo equivalent) with average
        pooling; otherwise max pooling runs in a JaxNode.
    inference_only : bool
        Mark every object non-trainable (``configure_settings(trainable=False)``).

    Attributes
    ----------
    net : nengo.Network
        The converted network.
    input : nengo.Node
        The input Node (size ``prod(input_shape)``; feed data to it).
    output : nengo.Probe
        Probe on the output of the last layer.
    layers : LayerMap
        ``layers[module]``: the nengo object (Node or ``Ensemble.neurons``) of
        each layer.
    """

    def __init__(
        self,
        model,
        input_shape,
        *,
        swap_activations: dict | None = None,
        scale_firing_rates: float = 1,
        synapse=None,
        max_to_avg_pool: bool = False,
        inference_only: bool = False,
    ):
        try:
            input_shape = tuple(int(s) for s in input_shape)
        except TypeError:
            raise ValidationError(
                f"Converter: input_shape must be a tuple of ints (got {input_shape!r})",
                attr="input_shape",
            ) from None
        if math.prod(input_shape) < 1:
            raise ValidationError(
                f"Converter: input_shape must be non-empty (got {input_shape})",
                attr="input_shape",
            )
        self.model = model
        self.input_shape = input_shape
        framework = _framework(model)
        if framework == "equinox":
            from .equinox import equinox_specs

            specs = equinox_specs(model, input_shape, max_to_avg_pool)
        else:
            from .flax import flax_specs

            specs = flax_specs(model, input_shape, max_to_avg_pool)
        self.specs = specs
        self.output_shape = specs[-1].shape_out if specs else input_shape
        self.net, self.input, self.output, pairs = build_network(
            specs,
            input_shape,
            swap_activations=swap_activations,
            scale_firing_rates=scale_firing_rates,
            synapse=synapse,
            inference_only=inference_only,
            label=f"Converted {type(model).__name__}",
        )
        self.layers = LayerMap(pairs)

    def __repr__(self) -> str:
        return f"Converter({type(self.model).__name__}, {len(self.layers)} layers)"


# the public name lives in nengojax; keep nengo's repr short
Converter.__module__ = "nengojax"
