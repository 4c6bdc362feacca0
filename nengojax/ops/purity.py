"""Which user functions are pure arithmetic, so they can be traced into the step.

A Node function (or a connection function on a Node) called through a host
callback costs a round trip to Python every step. When its code does nothing
but arithmetic on its arguments with numpy and math functions, calling it on
JAX values computes the same, with no effect anyone could observe; then it is
traced into the compiled step. Purity is decided by reading the function's
bytecode, never by calling it: every global it reads must be the numpy or math
module (and only their listed functions and constants) or a listed builtin,
every attribute of a value one of the listed array methods, every closure cell
and default an immutable number, and no instruction may store outside the
function's locals, import, or make functions. A function can also be marked
pure by the user with `pure`.
"""

from __future__ import annotations

import builtins
import dis
import math
import types

import jax.numpy as jnp
import numpy as np

NUMPY_OK = frozenset(
    "sin cos tan arcsin arccos arctan arctan2 sinh cosh tanh arcsinh arccosh arctanh exp "
    "expm1 exp2 log log1p log2 log10 sqrt square abs absolute sign floor ceil round rint clip "
    "maximum minimum where sum mean prod dot outer array asarray zeros ones zeros_like "
    "ones_like full pi e inf concatenate stack hstack vstack atleast_1d linspace arange power "
    "hypot cross max min amax amin argmax argmin cumsum diff reshape ravel transpose deg2rad "
    "rad2deg heaviside logical_and logical_or logical_not isfinite sinc mod fmod remainder "
    "tanh einsum matmul sort cbrt reciprocal negative".split()
)
MATH_NAMES = {
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "atan2": "arctan2",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "exp": "exp",
    "expm1": "expm1",
    "log": "log",
    "log1p": "log1p",
    "log2": "log2",
    "log10": "log10",
    "sqrt": "sqrt",
    "fabs": "abs",
    "floor": "floor",
    "ceil": "ceil",
    "pow": "power",
    "hypot": "hypot",
    "radians": "deg2rad",
    "degrees": "rad2deg",
}
MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}
ARRAY_METHODS_OK = frozenset(
    "sum mean max min prod dot T reshape ravel flatten clip copy size shape ndim squeeze "
    "transpose argmax argmin cumsum any all std var round".split()
)
BUILTINS_OK = frozenset("abs len range min max sum pow round".split())
OPS_OK = frozenset(
    """RESUME NOP CACHE EXTENDED_ARG LOAD_FAST LOAD_FAST_CHECK LOAD_FAST_AND_CLEAR
    LOAD_FAST_LOAD_FAST STORE_FAST STORE_FAST_LOAD_FAST STORE_FAST_STORE_FAST LOAD_CONST
    RETURN_CONST RETURN_VALUE LOAD_GLOBAL LOAD_ATTR LOAD_METHOD LOAD_DEREF COPY_FREE_VARS
    PRECALL CALL CALL_FUNCTION CALL_METHOD CALL_FUNCTION_KW CALL_KW KW_NAMES PUSH_NULL
    BINARY_OP BINARY_SUBSCR BINARY_SLICE BUILD_SLICE BUILD_LIST BUILD_TUPLE LIST_EXTEND
    LIST_APPEND LIST_TO_TUPLE UNARY_NEGATIVE UNARY_POSITIVE UNARY_NOT UNARY_INVERT COMPARE_OP
    IS_OP CONTAINS_OP POP_TOP COPY SWAP DUP_TOP ROT_TWO ROT_THREE POP_JUMP_IF_FALSE
    POP_JUMP_IF_TRUE POP_JUMP_FORWARD_IF_FALSE POP_JUMP_FORWARD_IF_TRUE
    POP_JUMP_BACKWARD_IF_FALSE POP_JUMP_BACKWARD_IF_TRUE POP_JUMP_IF_NONE
    POP_JUMP_IF_NOT_NONE POP_JUMP_FORWARD_IF_NONE POP_JUMP_FORWARD_IF_NOT_NONE JUMP_FORWARD
    JUMP_BACKWARD JUMP_BACKWARD_NO_INTERRUPT JUMP_ABSOLUTE JUMP_IF_FALSE_OR_POP
    JUMP_IF_TRUE_OR_POP TO_BOOL GET_ITER FOR_ITER END_FOR
    BINARY_ADD BINARY_SUBTRACT BINARY_MULTIPLY BINARY_TRUE_DIVIDE BINARY_FLOOR_DIVIDE
    BINARY_MODULO BINARY_POWER BINARY_MATRIX_MULTIPLY""".split()
)
IMMUTABLE = (int, float, complex, bool, str, type(None), np.number, np.bool_)


def pure(fn):
    """Mark ``fn`` pure: nengojax may trace it into the compiled step (its numpy
    and math calls become jax.numpy ones). Use it for a Node or connection
    function with no side effects that the automatic check does not accept."""
    fn.__nengojax_pure__ = True
    return fn


def _immutable(value) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(v) for v in value)
    return isinstance(value, IMMUTABLE)


def is_pure(fn) -> bool:
    """Whether ``fn``'s bytecode shows it to be pure arithmetic (or it is marked)."""
    if getattr(fn, "__nengojax_pure__", False):
        return True
    if isinstance(fn, np.ufunc):  # e.g. ``nengo.Node(np.sin)``
        return fn.__name__ in NUMPY_OK
    if not isinstance(fn, types.FunctionType):
        return False
    code = fn.__code__
    if code.co_flags & (0x20 | 0x80 | 0x100 | 0x200):  # generators, coroutines
        return False
    for value in (fn.__defaults__ or ()) + tuple((fn.__kwdefaults__ or {}).values()):
        if not _immutable(value):
            return False
    for cell in fn.__closure__ or ():
        try:
            if not _immutable(cell.cell_contents):
                return False
        except ValueError:  # an empty cell
            return False
    namespace = None  # the module a LOAD_GLOBAL just loaded
    for ins in dis.get_instructions(fn):
        op = ins.opname
        if op not in OPS_OK:
            return False
        if op == "LOAD_GLOBAL":
            name = ins.argval
            value = fn.__globals__.get(name, getattr(builtins, name, None))
            if value is np:
                namespace = "numpy"
            elif value is math:
                namespace = "math"
            elif value is getattr(builtins, name, None) and name in BUILTINS_OK:
                namespace = None
            else:
                return False
            continue
        if op in ("LOAD_ATTR", "LOAD_METHOD"):
            attr = ins.argval
            if namespace == "numpy":
                ok = attr in NUMPY_OK
            elif namespace == "math":
                ok = attr in MATH_NAMES or attr in MATH_CONSTANTS
            else:
                ok = attr in ARRAY_METHODS_OK
            if not ok:
                return False
        if op not in ("CACHE", "PRECALL", "PUSH_NULL"):
            namespace = None if op != "LOAD_GLOBAL" else namespace
    return True


class _JaxMath:
    """``math`` for traced code: its functions as jax.numpy's."""

    def __getattr__(self, name):
        if name in MATH_CONSTANTS:
            return MATH_CONSTANTS[name]
        return getattr(jnp, MATH_NAMES[name])


def as_jax(fn):
    """``fn`` with its numpy and math globals bound to jax.numpy (same code)."""
    if isinstance(fn, np.ufunc):
        return getattr(jnp, fn.__name__)
    if not isinstance(fn, types.FunctionType):
        return fn
    namespace = dict(fn.__globals__)
    for name in fn.__code__.co_names:
        value = namespace.get(name)
        if value is np:
            namespace[name] = jnp
        elif value is math:
            namespace[name] = _JaxMath()
    return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
