"""XLA compile options for nengojax's programs, chosen per backend.

Recent jaxlibs hand XLA:CPU's elementwise, reduce and dot fusions to YNNPACK
library kernels. For a simulation step (a few small fused neuron updates,
encodes and decodes per step, thousands of steps) XLA's own loop fusions are
as fast or faster and compile faster: measured on ``benchmarks/networks.py``,
a 200 x 250 RectifiedLinear EnsembleArray steps 2.1x faster at minibatch 1 and
3x at minibatch 32, circular convolution 1.3x at minibatch 32, the others
within run-to-run noise, and compiles take 10-25 % less time. So CPU programs
are compiled with YNNPACK fusions off, where the installed jaxlib knows the
option (older ones have no YNNPACK fusions to turn off). LLVM's -O1 instead of
-O2 takes another 5-30 % off the compile and runs as fast.

JAX takes compile options only on a top-level ``jax.jit``, while users call
nengojax's functions inside their own ``jit``/``grad``/``vmap`` too: `jit`
makes a function that uses the options where it can and a plain ``jax.jit``
inside other transformations.
"""

from __future__ import annotations

import functools
import itertools

import jax

__all__ = ["CPU_OPTIONS", "compiler_options", "jit"]

#: XLA:CPU options for every program nengojax compiles: no YNNPACK library
#: fusions (the empty list), and LLVM's -O1, which compiles the benchmark
#: networks' runs up to 30 % faster than -O2 and, measured, runs them as fast.
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "", "xla_backend_optimization_level": 1}

# set once this jaxlib has refused an option (older ones lack YNNPACK's)
_refused: list = []


def compiler_options() -> dict:
    """Options for ``jax.jit(..., compiler_options=...)`` on the default backend.

    Returns
    -------
    dict
        On CPU: `CPU_OPTIONS`; on other backends, or once this jaxlib has
        refused one of them: empty.
    """
    if jax.default_backend() != "cpu" or _refused:
        return {}
    return dict(CPU_OPTIONS)


def _is_refusal(error: Exception) -> bool:
    """Whether ``error`` is a compiler refusing an option (raised while compiling,
    before anything ran)."""
    text = str(error)
    return "No such compile option" in text or "While setting option" in text


class jit:  # noqa: N801  (used like jax.jit)
    """``jax.jit(fn, **kwargs)`` with `compiler_options` where JAX allows them.

    Called with tracers among its arguments (inside another transformation), or
    where JAX refuses the options (inside another ``jit`` that closes over
    concrete arrays), it calls a plain ``jax.jit(fn, **kwargs)``: the same
    function, compiled as part of the caller's program. A jaxlib that does not
    know an option gets the plain ``jit`` from then on.

    Parameters
    ----------
    fn : callable
        The function to compile.
    **kwargs
        Passed to ``jax.jit``.
    """

    def __init__(self, fn, **kwargs):
        self.nested = jax.jit(fn, **kwargs)
        options = compiler_options()
        self.top = jax.jit(fn, compiler_options=options, **kwargs) if options else self.nested
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if self.top is self.nested or _traced(args, kwargs):
            return self.nested(*args, **kwargs)
        try:
            return self.top(*args, **kwargs)
        except ValueError as e:  # inside another jit: raised while tracing
            if "compiler_options" not in str(e):
                raise
        except jax.errors.JaxRuntimeError as e:
            if not _is_refusal(e):
                raise
            self._refuse()
        return self.nested(*args, **kwargs)

    def lower(self, *args, **kwargs):
        """The top-level program, lowered (``jax.jit(...).lower``)."""
        return self.top.lower(*args, **kwargs)

    def compile(self, *args, **kwargs):
        """Compile the top-level program for these arguments, without running it
        (filling ``jit``'s cache, as a call would)."""
        try:
            return self.top.lower(*args, **kwargs).compile()
        except jax.errors.JaxRuntimeError as e:
            if not _is_refusal(e):
                raise
            self._refuse()
            return self.nested.lower(*args, **kwargs).compile()

    def _refuse(self) -> None:
        _refused.append(True)
        self.top = self.nested


def _traced(args, kwargs) -> bool:
    leaves = jax.tree_util.tree_leaves((args, kwargs))
    # map: the loop runs in C (a single-step call checks some 30 leaves)
    return any(map(isinstance, leaves, itertools.repeat(jax.core.Tracer)))
