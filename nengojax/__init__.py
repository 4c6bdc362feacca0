"""nengojax: run Nengo models on JAX.

A drop-in `Simulator` for ``nengo.Simulator``, and the pure functions underneath
(`compile` -> `CompiledNetwork` with ``init_params``, ``init_state``, ``step`` and
``run``) for JAX users.

The package reads top-down as the path a network takes (each layer imports
only the ones below it): `compiler` (nengo's built model -> a static
`compiler.Program`), `ops` (lowerings: the program -> one pure step function),
`runtime` (the only scan over time: `CompiledNetwork`), `training` (optax over
the runtime) and `simulator` (nengo's API, with its training part).
"""

from . import cache, callbacks, dispatch, distributed, dists, losses, neurons, sharding, training
from .config import configure_settings
from .converter import Converter
from .jax_node import JaxNode, Layer, SimJaxNode
from .ops.context import LoweringContext
from .ops.purity import pure
from .ops.registry import register_lowering, register_neuron_step, register_rate_counterpart
from .runtime import CompiledNetwork, compile  # noqa: A004
from .simulator import Simulator

__version__ = "0.1.0"

cache.enable_default_cache()
dispatch.enable_default_dispatch()

__all__ = [
    "cache",
    "callbacks",
    "configure_settings",
    "dists",
    "distributed",
    "losses",
    "neurons",
    "register_rate_counterpart",
    "sharding",
    "training",
    "CompiledNetwork",
    "JaxNode",
    "Layer",
    "LoweringContext",
    "SimJaxNode",
    "Simulator",
    "compile",
    "pure",
    "register_lowering",
    "register_neuron_step",
    "Converter",
]


def __getattr__(name):
    # ``nengojax.nir`` (NIR import/export) is imported on first use; the ``nir``
    # package it needs is optional
    if name == "nir":
        import importlib

        return importlib.import_module(".nir", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
