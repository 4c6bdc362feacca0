"""Steps computed ahead of ``sim.step()`` calls, where nobody could tell.

A call of ``sim.step()`` costs a dispatch of the compiled program, a host
transfer and the Simulator's checks: about 0.25 ms, several times nengo's
whole step for a small model. Closed-loop, robotics and GUI code calls it
thousands of times. When the model runs no user code that could see the
difference (no host callbacks in the step, every function of time nengo's own
or pure arithmetic that reads nothing a user can change between calls), the
steps after the current one depend on nothing but the state. `Lookahead` then
runs several steps in one call of the compiled loop and hands them out one
per ``sim.step()``: the step counter, the time and the probe data move one
step per call, exactly as before.

The state stays the one before the chunk until someone reads it
(``sim.state``, a run, a checkpoint, ``sim.signals``): then it is recomputed
for the steps handed out, by the same compiled loop from the same start, so it
is the state those steps ended in, to the bit. Replacing the state, the params
or the probes' lists, or stepping with data, ends the chunk.

The loop of `SIZE` steps is compiled in a background thread once stepping
has gone on for `AFTER` calls; until it is ready, steps run one by one. A
chunk starts at 8 steps and doubles (to `SIZE`) each time all of it was used,
so what is computed and never shown stays small.
"""

from __future__ import annotations

import threading

import numpy as np

from ..ops.pyfunc import ahead_safe
from .data import resolve_stateful

#: Steps of the compiled loop a chunk runs in (the most a chunk holds).
SIZE = 64

#: Consecutive ``step()`` calls before the loop is compiled (in the background).
AFTER = 4

#: Steps slower than this gain too little from running ahead (seconds per call).
SLOW_STEP = 1e-3


def can_look_ahead(sim) -> bool:
    """Whether no user could tell steps of ``sim`` ran before they were asked for."""
    model = sim.compiled
    if sim.placement.mesh is not None or model.step_function("simulate").ctx.uses_host_calls:
        return False
    if model.last_step_probes or any(p.sample_every is not None for p in model.probes.values()):
        return False
    if not resolve_stateful(sim, None, True):
        return False
    return all(ahead_safe(src.op) for src in model.host_sources)


class _Chunk:
    """Steps run ahead from ``state`` (at ``start``) with ``params``."""

    def __init__(self, start, state, params, host, rows, final, n):
        self.start, self.state, self.params, self.host = start, state, params, host
        self.rows, self.final, self.n = rows, final, n
        self.shown = 0


class Lookahead:
    """The steps run ahead of ``sim.step()`` calls for one Simulator."""

    def __init__(self, sim):
        self.sim = sim
        self._time_axis = 1 if sim.minibatch_size else 0
        self.chunk: _Chunk | None = None
        self._eligible: bool | None = None  # decided on the first step() call
        self._streak = 0  # consecutive step() calls
        self._last = -1  # sim.n_steps after the last step() call
        self._call_time = 0.0  # the last one-by-one step() call, in seconds
        self._length = 8  # steps of the next chunk
        self._compiled = None  # the background compile's thread, then True

    # --- called by the Simulator --------------------------------------------------------

    def next_step(self):
        """The next step, if it was run ahead (or can be now): ``(rows,
        final)``, each probe's row of the step (with its time axis) and the
        state when it ends a chunk (else None); None when the caller must run
        the step itself (then `stepped` is told)."""
        sim = self.sim
        chunk = self.chunk
        if chunk is not None and (
            sim.params is not chunk.params or sim.n_steps != chunk.start + chunk.shown
        ):
            sim.state  # noqa: B018 (settles the state of the steps shown)
            chunk = None
        if chunk is None:
            if not self._ready() or sim.n_steps != self._last:
                return None
            chunk = self._run_ahead()
            if chunk is None:
                return None
        i = chunk.shown
        rows = {
            p: (r[:, i : i + 1] if self._time_axis else r[i : i + 1])
            for p, r in chunk.rows.items()
        }
        chunk.shown += 1
        self._last = chunk.start + chunk.shown
        if chunk.shown < chunk.n:
            return rows, None
        self.chunk = None  # all shown: the chunk's final state is the state
        return rows, chunk.final

    def stepped(self, before: int, seconds: float) -> None:
        """A ``step()`` call that ran one step itself (from step ``before``)."""
        self._streak = self._streak + 1 if before == self._last else 1
        self._last = self.sim.n_steps
        self._call_time = seconds
        if self._streak >= AFTER and self._compiled is None and self.eligible():
            self._compile_in_background()

    def settled_state(self):
        """The state after the steps shown (recomputed once), ending the chunk."""
        chunk, self.chunk = self.chunk, None
        if chunk is None or chunk.shown == chunk.n:
            return None if chunk is None else chunk.final
        model = self.sim.compiled
        state, _ = model.run_chunk(chunk.params, chunk.state, SIZE, chunk.shown, {}, chunk.host)
        return state

    def drop(self) -> None:
        """Forget the steps run ahead (the state was replaced)."""
        self.chunk = None

    # --- internals ------------------------------------------------------------------------

    def eligible(self) -> bool:
        if self._eligible is None:
            self._eligible = can_look_ahead(self.sim)
        return self._eligible

    def _ready(self) -> bool:
        if self._compiled is not True:
            thread = self._compiled
            if thread is None or thread.is_alive() or not thread.ok:
                return False
            self._compiled = True
        return self._call_time < SLOW_STEP

    def _compile_in_background(self) -> None:
        sim = self.sim
        model, state = sim.compiled, sim.state
        packed = model.packer.pack_on_host(sim.params)  # here: it caches on the instance
        thread = threading.Thread(target=lambda: _compile(thread, model, packed, state))
        thread.ok = False
        self._compiled = thread
        thread.start()

    def _run_ahead(self) -> _Chunk | None:
        sim = self.sim
        model, state, params, start = sim.compiled, sim.state, sim.params, sim.n_steps
        n = self._length
        try:
            host = model.host_inputs(state, n, pad_to=SIZE)
            final, probes = model.run_chunk(params, state, SIZE, n, {}, host)
        except Exception:  # a function failing later: the steps one by one reach it
            self._length = 8
            return None
        fault = np.asarray(final["fault"]).reshape(-1, 2)
        if np.any(fault[:, 0] >= 0):  # a non-finite value ahead: likewise
            self._length = 8
            return None
        rows = {}
        for k, p in model.probes.items():
            values = np.asarray(probes[k])  # sliced on the host: no program per shape
            rows[p] = np.array(values[:, :n] if self._time_axis else values[:n])
        self.chunk = _Chunk(start, state, params, host, rows, final, n)
        self._length = min(2 * n, SIZE)
        return self.chunk


def _compile(thread, model, packed, state) -> None:
    try:
        model.compile_chunk(packed, state, SIZE)
        thread.ok = True
    except Exception:  # noqa: S110 (no lookahead then; steps run one by one)
        pass


__all__ = ["Lookahead", "can_look_ahead", "SIZE", "AFTER"]
