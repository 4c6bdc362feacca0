"""Lowerings of nengo's operators, one module per operator family.

Importing this package registers every lowering in `nengojax.ops.registry`.
"""

from . import basic, conv, jax_node, learning, neurons, processes, pyfunc, stacked  # noqa: F401
