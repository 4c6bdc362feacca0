"""Python's cycle collector kept off the objects that exist before a build.

A build makes many container objects (signals, operators, sets, tuples), so
Python's cycle collector runs during it, and each full collection walks every
object in the process: the network, nengo, and JAX's hundred thousand and more
objects, none of which the build frees. Measured on nengo_spa models, a full
collection took 70-80 ms of spa_sequence_routed's 0.9 s build, and 0.8 s of
spa_question_control's 15-17 s build went to collections (0.2 s with the
process's earlier objects set apart).

`objects_set_apart` sets the earlier objects apart with `gc.freeze` while the
build runs and hands them back to the collector with `gc.unfreeze` after it
(also when the build raises). The collector still runs on the build's own new
objects. A process that froze objects itself keeps its freeze untouched: then
nothing is done.
"""

from __future__ import annotations

import contextlib
import gc

__all__ = ["objects_set_apart"]


@contextlib.contextmanager
def objects_set_apart():
    """While the block runs, the collector leaves the objects made before it alone.

    Nothing changes where the collector is off, or where objects are already
    frozen (another freeze, the process's own, is not undone).
    """
    if not gc.isenabled() or gc.get_freeze_count() > 0:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
