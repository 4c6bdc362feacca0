"""Python's cycle collector paused while a network builds.

A build makes many container objects (signals, operators, sets, tuples), so
Python's cycle collector runs during it, again and again, and each full
collection walks every object in the process: JAX's and nengo's hundred
thousand and more, and all the build has made so far. Almost nothing the
build makes becomes cyclic garbage: its objects live on in the model, or are
freed by their reference counts. Measured: a full collection took 70-80 ms of
spa_sequence_routed's 0.9 s build; at Spaun's object count (10,240 ensembles,
`benchmarks/scale.py`) 10 full collections took 15 s of a 117-122 s build,
which took 99 s with the collector paused, with the same peak memory (1.95 GB).

Setting the process's earlier objects apart instead (`gc.freeze`) leaves the
collector's count of long-lived objects near zero, so it collected fully
more often as the build grew: 24 full collections, 21 s at Spaun's count.

`paused_collector` turns the collector off for the block and back on after it
(also when the block raises). A process that turned it off itself keeps it
off. Being process-wide, the pause holds for other threads too, for as long
as the build takes.
"""

from __future__ import annotations

import contextlib
import gc

__all__ = ["paused_collector"]


@contextlib.contextmanager
def paused_collector():
    """Python's cycle collector off while the block runs, then as it was."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
