"""The runtime: a `Program` and its lowered steps as pure functions over time.

`CompiledNetwork` (what `nengojax.compile` returns) holds the pieces:
`state` (initial state, the one rule for "is there a minibatch"), `params`
(packing params into base arrays), `host` (values of host sources for a run)
and `run` (the only ``lax.scan`` over time).
"""

from .network import CompiledNetwork, compile  # noqa: A004
from .state import is_batched

__all__ = ["CompiledNetwork", "compile", "is_batched"]
