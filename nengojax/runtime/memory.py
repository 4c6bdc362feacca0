"""Memory needed by a program, checked before anything is allocated.

A model too big for the machine must fail with a clear `BuildError` naming
its biggest arrays, not kill the process (out-of-memory aborts in XLA or the
allocator cannot be caught). The estimate counts what the runtime holds on
the host and on the device: every base array in the compute dtype on the host
(initial values, kept for `init_params` and host-side packing) and on the
device (constants, packed params, state, scratch), plus the step's temporaries.
"""

from __future__ import annotations

import os
import resource

import jax
from nengo.exceptions import BuildError

from ..compiler.program import Program

#: Copies of each base array the runtime holds at once (host initial value,
#: device constant/state, packed params or the step's temporaries).
COPIES = 3


def program_bytes(program: Program) -> int:
    """Estimated bytes the runtime needs for ``program`` (minibatch 1)."""
    return COPIES * sum(b.init.nbytes for b in program.layout.bases)


def available_bytes() -> int | None:
    """Bytes this process may still allocate on the host, or None if unknown:
    the smaller of the system's available memory and the address-space limit
    (``ulimit -v``) less what the process maps already."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/statm") as f:
                mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limits.append(soft - mapped)
        except (OSError, ValueError):
            limits.append(soft)
    return min(limits) if limits else None


def check_memory(program: Program, available: int | None = None) -> None:
    """Raise a `BuildError` naming the biggest arrays if ``program`` cannot fit.

    Only checked when JAX computes on the host's memory (the CPU backend);
    ``available`` overrides the measured free bytes (for tests).
    """
    if available is None:
        if jax.default_backend() != "cpu":
            return
        available = available_bytes()
        if available is None:
            return
    need = program_bytes(program)
    if need <= available:
        return
    biggest = sorted(program.layout.bases, key=lambda b: b.init.nbytes, reverse=True)[:3]
    names = ", ".join(
        f"{b.signal.name} {tuple(b.signal.shape)} ({b.init.nbytes / 2**20:.0f} MiB)"
        for b in biggest
    )
    raise BuildError(
        f"this model needs about {need / 2**20:.0f} MiB to simulate, but only "
        f"{max(available, 0) / 2**20:.0f} MiB are available; the biggest arrays: {names}. "
        "Use smaller (or sparse) weights, fewer neurons, or a machine with more memory."
    )
