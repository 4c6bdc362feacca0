"""The compiler: a built nengo model -> pure JAX functions."""

from .network import CompiledNetwork, compile  # noqa: A004
from .registry import register_lowering

__all__ = ["CompiledNetwork", "compile", "register_lowering"]
