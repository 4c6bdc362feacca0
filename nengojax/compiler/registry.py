"""The registry mapping each nengo operator type to its JAX lowering.

A lowering is a function ``lower(op, ctx) -> apply`` called once at compile time
with the operator and the `.LoweringContext`; ``apply(env)`` is then traced inside
each step with a `.StepEnv` to read and write signals.  Third parties register
lowerings for their own operator types with `.register_lowering`:

.. code-block:: python

    @nengojax.register_lowering(MyOperator)
    def lower_my_operator(op, ctx):
        def apply(env):
            env.inc(op.Y, 2 * env.read(op.X))
        return apply
"""

from __future__ import annotations

from collections.abc import Callable

from nengo.exceptions import BuildError

_LOWERINGS: dict[type, Callable] = {}


def register_lowering(op_type: type) -> Callable:
    """Decorator registering ``fn`` as the lowering of ``op_type``.

    Subclasses of ``op_type`` use the same lowering unless they register their own.
    """

    def decorator(fn: Callable) -> Callable:
        _LOWERINGS[op_type] = fn
        return fn

    return decorator


def get_lowering(op) -> Callable:
    """The lowering registered for ``op``'s type (or its nearest base class)."""
    for cls in type(op).__mro__:
        if cls in _LOWERINGS:
            return _LOWERINGS[cls]
    raise BuildError(
        f"nengojax cannot lower operator {op} ({type(op).__name__}, made for "
        f"{getattr(op, 'tag', None) or 'an unknown object'}): no lowering is "
        "registered for this operator type (see nengojax.register_lowering)"
    )
