"""nengojax: run Nengo models on JAX.

A drop-in `Simulator` for ``nengo.Simulator``, and the pure functions underneath
(`compile` -> `CompiledNetwork` with ``init_params``, ``init_state``, ``step`` and
``run``) for JAX users.
"""

from . import callbacks, distributed, losses, neurons, sharding, training
from .compiler import CompiledNetwork, compile, register_lowering  # noqa: A004
from .config import configure_settings
from .converter import Converter
from .jax_node import JaxNode, Layer, SimJaxNode
from .ops.neurons import register_neuron_step, register_rate_counterpart
from .simulator import Simulator

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "configure_settings",
    "distributed",
    "losses",
    "neurons",
    "register_rate_counterpart",
    "sharding",
    "training",
    "CompiledNetwork",
    "JaxNode",
    "Layer",
    "SimJaxNode",
    "Simulator",
    "compile",
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
