"""The registries: operator type -> lowering, neuron type -> JAX step.

A *lowering* is ``lower(op, ctx) -> apply``, called once at compile time with
the operator and the `.LoweringContext`; ``apply(env)`` is then traced inside
each step with a `.StepEnv` to read and write signals (or the lowering returns
None: nothing to do each step). A *neuron step* is
``step(neuron_type, dt, J, state, rng) -> (output, new_state)``.

.. code-block:: python

    @nengojax.register_lowering(MyOperator)
    def lower_my_operator(op, ctx):
        def apply(env):
            env.inc(op.Y, 2 * env.read(op.X))
        return apply

One lookup rule serves every registry: walk the class hierarchy of the object
from its own class up; the first class with an entry gives it, unless a class
met before it redefines the behaviour the entry implements (``make_step`` of an
operator, ``step`` of a neuron type): then the subclass computes something else
and has no entry until one is registered for it. A lowering registered for a
``platform`` (``"cpu"``, ``"gpu"``, ``"tpu"``, as `jax.default_backend` names
them) is preferred on that platform over the general one of the same class.
Registering over an existing entry warns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from nengo.exceptions import BuildError


class Registry:
    """Class -> entry, looked up by class hierarchy (see the module docstring).

    Parameters
    ----------
    what : str
        What the entries are (for messages).
    behaviour : str
        The method whose redefinition in a subclass stops inheritance.
    """

    def __init__(self, what: str, behaviour: str):
        self.what = what
        self.behaviour = behaviour
        self._entries: dict[tuple[type, str | None], Callable] = {}

    def register(self, cls: type, fn: Callable, platform: str | None = None) -> Callable:
        """Store ``fn`` for ``cls`` (on ``platform`` only, if given)."""
        key = (cls, platform)
        old = self._entries.get(key)
        if old is not None and old is not fn:
            where = "" if platform is None else f" on {platform}"
            warnings.warn(
                f"{self.what} of {cls.__name__}{where} replaced: {old.__qualname__} -> "
                f"{fn.__qualname__}",
                UserWarning,
                stacklevel=3,
            )
        self._entries[key] = fn
        return fn

    def unregister(self, cls: type, platform: str | None = None) -> None:
        """Remove the entry of ``cls`` (on ``platform``), if any."""
        self._entries.pop((cls, platform), None)

    def lookup(self, cls: type, platform: str | None = None) -> Callable | None:
        """The entry serving ``cls`` on ``platform``, or None."""
        for c in cls.__mro__:
            for key in ((c, platform), (c, None)) if platform else ((c, None),):
                if key in self._entries:
                    return self._entries[key]
            if self.behaviour in vars(c):
                return None  # c computes its own thing; a base class's entry is wrong for it
        return None


OPERATORS = Registry("lowering", "make_step")
NEURON_STEPS = Registry("neuron step", "step")
RATE_COUNTERPARTS = Registry("rate counterpart", "step")


def register_lowering(op_type: type, platform: str | None = None) -> Callable:
    """Decorator registering ``fn(op, ctx) -> apply`` as the lowering of ``op_type``.

    Parameters
    ----------
    op_type : type
        A `nengo.builder.Operator` subclass (its subclasses use the same
        lowering unless they redefine ``make_step``).
    platform : str, optional
        Use this lowering only on this JAX backend (``"gpu"``, ...), in
        preference to the general one: a platform-specific fast path.
    """

    def decorator(fn: Callable) -> Callable:
        return OPERATORS.register(op_type, fn, platform)

    return decorator


def get_lowering(op, platform: str | None = None) -> Callable:
    """The lowering serving ``op`` on ``platform``; `BuildError` if none."""
    fn = OPERATORS.lookup(type(op), platform)
    if fn is None:
        raise BuildError(
            f"nengojax cannot lower operator {op} ({type(op).__name__}, made for "
            f"{getattr(op, 'tag', None) or 'an unknown object'}): no lowering is "
            "registered for this operator type (see nengojax.register_lowering)"
        )
    return fn


#: Neuron steps registered with ``random=False`` (given ``rng=None``).
KEYLESS_STEPS: set = set()


def register_neuron_step(neuron_cls: type, random: bool = True) -> Callable:
    """Decorator registering the JAX step of ``neuron_cls``.

    The step is ``step(neuron_type, dt, J, state, rng) -> (output, new_state)``:
    ``state`` maps the type's state names (``"voltage"``, ...) to arrays,
    ``rng`` is a JAX PRNG key (for stochastic types). A step registered with
    ``random=False`` draws no random numbers and gets ``rng=None``: a step of
    the network whose neurons draw none then makes no key (a PRNG hash per
    step, and about 20 ms to lower the first time in a process).
    """

    def decorator(fn: Callable) -> Callable:
        if not random:
            KEYLESS_STEPS.add(fn)
        return NEURON_STEPS.register(neuron_cls, fn)

    return decorator


def get_neuron_step(neuron_type) -> Callable | None:
    """The JAX step serving ``neuron_type``, or None (then its NumPy step runs
    on the host)."""
    return NEURON_STEPS.lookup(type(neuron_type))


def register_rate_counterpart(spiking_cls: type) -> Callable:
    """Decorator registering the rate counterpart of a spiking neuron type.

    The decorated function is called as ``fn(neuron_type, lif_smoothing=None)``
    and returns the non-spiking `nengo.neurons.NeuronType` whose output is the
    mean output of ``neuron_type`` (with a registered JAX step, and state names
    that are a subset of the spiking type's).

    .. code-block:: python

        @register_rate_counterpart(MySpikingType)
        def my_rate(nt, lif_smoothing=None):
            return MyRateType(amplitude=nt.amplitude)
    """

    def decorator(fn: Callable) -> Callable:
        return RATE_COUNTERPARTS.register(spiking_cls, fn)

    return decorator


def get_rate_counterpart(neuron_type) -> Callable | None:
    """The rate-counterpart factory serving ``neuron_type``, or None."""
    return RATE_COUNTERPARTS.lookup(type(neuron_type))
