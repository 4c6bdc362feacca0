"""Lowering of `.SimJaxNode`: a `JaxNode`'s function traced into the step."""

from __future__ import annotations

from ..jax_node import SimJaxNode
from .inline import users_code
from .registry import register_lowering


@register_lowering(SimJaxNode)
def lower_sim_jax_node(op, ctx):
    if op.output is None:
        return None
    node = op.node
    index = ctx.op_index(op)
    ctx.checks_finite = True
    call = users_code(node.flat_call)  # the user's function, with jit as they set it

    def apply(env):
        leaves = [env.read(p) for p in op.params]
        t = env.read(op.t) if op.t_passed else None
        x = env.read(op.x) if op.x_passed else None
        y = call(leaves, t, x)
        env.check_finite(index, y)  # like a Node's output in nengo: NaN/inf is a fault
        env.set(op.output, y)

    return apply
