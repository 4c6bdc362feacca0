"""`LoweringContext`: what a lowering may ask at compile time."""

from __future__ import annotations

import warnings

import jax
import numpy as np

from ..compiler.host import stream_seed
from ..compiler.program import Program
from .host_target import HostTable

MODES = ("simulate", "rate", "spike_aware")

PRECISIONS = {
    "highest": jax.lax.Precision.HIGHEST,
    "high": jax.lax.Precision.HIGH,
    "default": jax.lax.Precision.DEFAULT,
}


class CallbackErrors:
    """Shared by the contexts of one compiled network: the exception of a failed
    host callback, held until the caller re-raises it (JAX wraps exceptions
    raised inside callbacks), and the host paths already warned about."""

    def __init__(self):
        self.error: BaseException | None = None
        # While True (the Simulator's runs), a failing callback holds its
        # exception and makes its step a fault instead of raising through XLA,
        # which would lose the whole chunk: the loop stops and the steps before
        # it are kept. Later callbacks of the run then do not call user code.
        self.stop_quietly = False
        self.warned: set = set()
        self.warned_objects: set[str] = set()  # what runs on the host, for messages

    def pop(self) -> BaseException | None:
        """The held exception (then forgotten), or None."""
        err, self.error = self.error, None
        return err


class LoweringContext:
    """The compile-time view of the network that every lowering receives.

    Parameters
    ----------
    program : Program
        The static program being lowered.
    neuron_mode : str
        ``"simulate"`` (every neuron type as itself), or for training
        ``"rate"`` (spiking types as their rate counterparts) or
        ``"spike_aware"`` (spiking forward, rate gradients backward).
    precision : str
        Matmul precision of dots and convolutions: ``"highest"`` (default;
        float32 products exact, as nengo's NumPy), ``"high"`` or ``"default"``
        (on GPU, TF32: faster, about 1e-3 relative error).
    platform : str, optional
        The JAX backend the step will run on (default `jax.default_backend`);
        lowerings registered for it are preferred (a platform fast path).
    lif_smoothing : float, optional
        Smoothing of the LIF rate counterpart in training modes.
    errors : CallbackErrors, optional
        Where host callbacks leave their exceptions.
    live_python : bool
        User Python runs during each step (some operator calls the host every
        step), so user functions of time must run in the step too, in step
        order, instead of ahead of the run (see `nengojax.ops.hostcall`).
    host_table : HostTable, optional
        Where host calls on a CPU backend put their functions (shared by the
        step functions of one compiled network; see `.host_target`).

    Attributes
    ----------
    dt : float
        The time step.
    float_dtype : numpy.dtype
        The compute dtype of float signals.
    layout, model, step_signal, time_signal
        The signal layout, nengo's built model, and its step and time signals.
    """

    def __init__(
        self,
        program: Program,
        neuron_mode: str = "simulate",
        precision: str = "highest",
        platform: str | None = None,
        lif_smoothing: float | None = None,
        errors: CallbackErrors | None = None,
        live_python: bool = False,
        host_table: HostTable | None = None,
    ):
        if neuron_mode not in MODES:
            raise ValueError(f"neuron_mode must be one of {MODES} (got {neuron_mode!r})")
        self.program = program
        self.neuron_mode = neuron_mode
        self.precision_name = precision
        self.precision = PRECISIONS[precision]
        self.platform = platform or jax.default_backend()
        self.lif_smoothing = lif_smoothing
        self.errors = errors if errors is not None else CallbackErrors()
        self.live_python = live_python
        self.host_table = host_table if host_table is not None else HostTable()
        self.uses_host_calls = False  # set by `host_call`
        self.checks_finite = False  # some lowering checks its values (env.check_finite)
        self.live_keys: set[str] = set()  # host sources called in the step instead
        self.layout = program.layout
        self.dt = program.dt
        self.model = program.model
        self.float_dtype: np.dtype = program.float_dtype
        self.step_signal = program.model.step
        self.time_signal = program.model.time
        self.invariants: dict[str, tuple] = {}  # see `add_invariant`

    def add_invariant(self, views: list, shape: tuple) -> str:
        """Ask for the values of ``views`` (of param or const bases), stacked
        into one array of shape ``(len(views), *shape)``, computed once per
        run before the loop over steps; returns its key in ``env.invariants``."""
        key = f"stacked{len(self.invariants)}"
        self.invariants[key] = (views, shape)
        return key

    def host_key(self, op) -> str:
        """Key of host source ``op`` in the per-step host values."""
        return self.program.host_key(op)

    def node_key_of(self, op) -> str | None:
        """Key of the Node whose output ``op`` produces, if any (run-time data
        for that Node replaces what ``op`` computes)."""
        return self.program.node_key_of(op)

    def key(self, obj, attr: str | None = None) -> str:
        """The key of ``obj`` (see `.CompiledNetwork.key`)."""
        return self.program.key(obj, attr)

    def op_index(self, op) -> int:
        """Position of ``op`` in step order (a salt for per-operator randomness)."""
        return self.program.op_index[id(op)]

    def seed_for_stream(self, stream: int) -> int:
        """NumPy seed for host-side randomness of minibatch item ``stream``."""
        return stream_seed(self.program.seed, stream)

    def warn_once(self, key, message: str) -> None:
        """Warn ``message`` once per compiled network and ``key``."""
        if key in self.errors.warned:
            return
        self.errors.warned.add(key)
        warnings.warn(message, UserWarning, stacklevel=4)
