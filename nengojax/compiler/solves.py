"""Decoder solves that share work between connections from one ensemble.

nengo solves each decoded connection on its own: the ensemble's rates at its
evaluation points (the activity matrix ``A``), then, for the default solver
(`~nengo.solvers.LstsqL2` on `~nengo.utils.least_squares_solvers.Cholesky`),
the Gram matrix ``A.T @ A`` and its Cholesky factor. Every connection from the
same ensemble with the default evaluation points has the same ``A`` and, with
the same regularisation, the same factor: in nengo_spa models (an output and a
feedback or cleanup connection per ensemble) that is half of the build.

`SharingBuilder` is nengo's `~nengo.builder.Builder` with one change: a
connection solved by nengo's own solver build computes ``A`` and the factor
once per ensemble and solves each connection's targets with it. Every other
step is nengo's, in nengo's order (evaluation points drawn from the
connection's RNG stream, connection functions called on every evaluation
point, the decoder cache consulted with the same key), and the arithmetic is
nengo's operation by operation, so the decoders are nengo's bit for bit. The
matrix products of large ensembles run on SciPy's BLAS, the one the Cholesky
factor runs on, with the routines NumPy would call (`nengojax.compiler.blas`).

The rates of nengo's neuron types are elementwise in the input currents, so
they are computed in blocks of evaluation points, on as many threads as the
process may use: the same numbers (NumPy releases the GIL in its loops, and
blocks that fit in cache make nengo's masked LIF arithmetic several times
faster).

Only work that cannot be observed is shared: rates of nengo's own neuron
types (a user's neuron type may count its calls), and factors of nengo's own
`LstsqL2` with `Cholesky`. Any other solver gets nengo's build unchanged.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg
from nengo.builder import Builder
from nengo.builder.connection import build_solver as nengo_build_solver
from nengo.builder.connection import get_eval_points, get_targets
from nengo.builder.transforms import build_dense as nengo_build_dense
from nengo.ensemble import Ensemble
from nengo.exceptions import BuildError
from nengo.neurons import Direct
from nengo.rc import rc
from nengo.solvers import LstsqL2, Solver
from nengo.utils import numpy as npext
from nengo.utils.least_squares_solvers import Cholesky

from .blas import dot, gram
from .decoder_keys import SharedPrefixes, decoder_keys
from .dense import build_dense_in_place, builds_in_place

__all__ = ["SharingBuilder"]


def _builder_for(obj):
    """The build function nengo's registry gives ``obj`` (None if none)."""
    for cls in type(obj).__mro__:
        if cls in Builder.builders:
            return Builder.builders[cls]
    return None


def _nengo_owns(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "nengo"


def _shares(conn) -> bool:
    """Whether ``conn``'s solve may reuse work done for another connection."""
    return _solve_shares(conn.pre_obj, conn.solver)


def _decoded_probe_pre(probe):
    """The ensemble whose decoded output ``probe`` reads (nengo builds a
    connection from it to the probe, `nengo.builder.probe.conn_probe`), if any."""
    obj = probe.obj
    if isinstance(obj, Ensemble) and probe.attr == "decoded_output":
        return obj
    return None


def _solve_shares(pre, solver) -> bool:
    return (
        isinstance(pre, Ensemble)
        and not isinstance(pre.neuron_type, Direct)
        and _nengo_owns(pre.neuron_type)
        and type(solver) is LstsqL2
        and type(solver.solver) is Cholesky
        and _builder_for(solver) is nengo_build_solver
    )


_BLOCK_SIZE = 1 << 16  # elements of the rates computed at once (fits in L2)
_pool: ThreadPoolExecutor | None = None


def _drop_pool() -> None:
    """Forget the pool in a forked child: its threads did not survive the fork."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_pool)


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def block_rates(neuron_type, x, gain, bias):
    """``neuron_type.rates(x, gain, bias)``, a block of rows at a time.

    Only for nengo's own neuron types, whose rates are elementwise in ``x``.
    """
    global _pool
    rows = max(1, _BLOCK_SIZE // max(1, x.shape[-1]))
    if x.ndim != 2 or len(x) <= rows:
        return neuron_type.rates(x, gain, bias)
    starts = range(0, len(x), rows)
    if _pool is None:
        _pool = ThreadPoolExecutor(_threads(), thread_name_prefix="nengojax-rates")
    blocks = _pool.map(lambda i: neuron_type.rates(x[i : i + rows], gain, bias), starts)
    return np.concatenate(list(blocks))


class _Activities:
    """An ensemble's work at one set of evaluation points: its inputs ``x``
    and rates (each computed when first needed: a decoder-cache hit by alias
    needs neither), factors and decoder-cache key prefixes."""

    def __init__(self, eval_points, encoders, radius, gain, bias, x=None):
        self.eval_points, self.encoders, self.radius = eval_points, encoders, radius
        self.gain, self.bias = gain, bias
        self._x = x
        self.rates = None
        self.factors: dict = {}
        self.keys = SharedPrefixes()
        self.accounted = 0  # of `nbytes`, counted in `SharedSolves.kept_bytes`

    @property
    def x(self):
        """nengo's ``x``: the evaluation points times the scaled encoders."""
        if self._x is None:
            self._x = np.dot(self.eval_points, self.encoders.T / self.radius)
        return self._x

    def matches(self, eval_points, encoders, radius, gain, bias) -> bool:
        # bit for bit (not ==, which equates -0.0 and 0.0): the decoder cache
        # hashes these bytes
        return (
            gain is self.gain
            and bias is self.bias
            and encoders is self.encoders
            and radius == self.radius
            and (eval_points is self.eval_points or _same_bits(eval_points, self.eval_points))
        )

    def compute_rates(self, neuron_type) -> None:
        self.rates = block_rates(neuron_type, self.x, self.gain, self.bias)
        self.max = self.rates.max()
        self.all_zero = np.count_nonzero(self.rates) == 0

    @property
    def nbytes(self) -> int:
        # not the evaluation points: mostly the ensemble's own array
        arrays = [self._x, self.rates, *(f[0] for f in self.factors.values())]
        return sum(a.nbytes for a in arrays if a is not None)


def _same_bits(a, b) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    bits = f"u{a.dtype.itemsize}"
    return np.array_equal(a.view(bits), b.view(bits))


#: At most this many bytes of activities and factors are kept for later
#: connections; past it, the least recently used ensemble's are dropped (and
#: computed again, to the same bits, if another of its connections comes).
MAX_KEPT_BYTES = 64 * 2**20


class SharedSolves:
    """Activities and Cholesky factors of the ensembles being built, kept until
    the last connection from each ensemble has been solved, or until
    `MAX_KEPT_BYTES` of them push out the least recently used (a model whose
    connections between networks are built after all the networks, as
    nengo's builder orders them, would otherwise keep every ensemble's)."""

    def __init__(self):
        self.pending: Counter | None = None
        self.activities: dict = {}  # ensemble -> [_Activities], least recently used first
        self.kept_bytes = 0
        self._solving: _Activities | None = None

    def count(self, network) -> None:
        """Count the connections of ``network`` that may share work, and the
        connections nengo makes for probes of ensembles' decoded outputs
        (built last in their network: their ensemble's work is kept for them)."""
        self.pending = Counter(c.pre_obj for c in network.all_connections if _shares(c))
        for probe in network.all_probes:
            pre = _decoded_probe_pre(probe)
            if pre is not None and _solve_shares(pre, probe.solver):
                self.pending[pre] += 1

    def clear(self) -> None:
        self.pending = None
        self.activities.clear()
        self.kept_bytes = 0

    def build(self, model, solver, conn, rng):
        """nengo's ``build_decoders`` for ``conn``, with shared solves."""
        if self.pending is None:
            if model.toplevel is None:  # a lone object built into a model
                self.pending = Counter()
            else:
                self.count(model.toplevel)
        if not _shares(conn) or (solver.weights and not solver.compositional):
            return nengo_build_solver(model, solver, conn, rng)
        ens = conn.pre_obj
        built = model.params[ens]
        eval_points = get_eval_points(model, conn, rng)
        targets = get_targets(conn, eval_points, dtype=rc.float_dtype)
        acts = self._activities(ens, eval_points, built.encoders, built.gain, built.bias)
        self._solving = acts
        try:
            if model.seeded[conn]:
                cache = model.decoder_cache
                with decoder_keys(cache, acts) as keyed:
                    solve = cache.wrap_solver(self.solve)
                    # with our keys, x is computed only if a solve needs it
                    x = acts if keyed else acts.x
                    decoders, info = solve(conn, built.gain, built.bias, x, targets, rng=rng)
            else:
                decoders, info = self.solve(conn, built.gain, built.bias, acts, targets, rng=rng)
        finally:
            self._solving = None
            self._keep(acts, ens)
            self.pending[ens] -= 1
            if self.pending[ens] <= 0:
                self._drop(ens)
        return eval_points, decoders.T, info

    def _activities(self, ens, eval_points, encoders, gain, bias) -> _Activities:
        """The kept work of ``ens`` at ``eval_points`` (a new entry if none)."""
        known = self.activities.pop(ens, [])
        self.activities[ens] = known  # now the most recently used
        radius = ens.radius
        acts = next(
            (a for a in known if a.matches(eval_points, encoders, radius, gain, bias)), None
        )
        if acts is None:
            acts = _Activities(eval_points, encoders, radius, gain, bias)
            known.append(acts)
        return acts

    def _keep(self, acts: _Activities, ens) -> None:
        """Count what ``acts`` (of ``ens``) holds now (its ``x``, rates,
        factors) as kept, and drop other ensembles' work past the bound."""
        size = acts.nbytes
        self.kept_bytes += size - acts.accounted
        acts.accounted = size
        self._bound(keep=ens)

    def _drop(self, ens) -> None:
        for acts in self.activities.pop(ens, ()):
            self.kept_bytes -= acts.accounted

    def _bound(self, keep) -> None:
        """Drop the least recently used ensembles' work (never ``keep``'s)
        while more than `MAX_KEPT_BYTES` are kept."""
        for ens in list(self.activities):
            if self.kept_bytes <= MAX_KEPT_BYTES:
                break
            if ens is not keep:
                self._drop(ens)

    def solve(self, conn, gain, bias, x, targets, rng=np.random):
        """nengo's ``solve_for_decoders`` with `LstsqL2` and `Cholesky`."""
        t_start = time.time()
        # ``x``: the `_Activities` of `build`, or their ``x`` (a decoder cache
        # that is not nengo's own keys it: `decoder_keys`)
        acts = x if isinstance(x, _Activities) else self._solving
        if acts is None or (acts is not x and acts.x is not x):  # called from elsewhere
            acts = _Activities(None, None, None, gain, bias, x)
        kept = acts is self._solving  # counted in `kept_bytes`
        if acts.rates is None:
            acts.compute_rates(conn.pre_obj.neuron_type)
            if kept:
                self._keep(acts, conn.pre_obj)
        if acts.all_zero:
            raise BuildError(
                f"Building {conn}: 'activities' matrix is all zero for {conn.pre_obj}. "
                "This is because no evaluation points fall in the firing "
                "ranges of any neurons."
            )
        A = acts.rates
        m, n = A.shape
        sigma = conn.solver.reg * acts.max
        transpose = conn.solver.solver.transpose
        if transpose is None:
            transpose = m < n  # nengo's rule for a scalar sigma
        key = (conn.solver.reg, transpose)
        factor = acts.factors.get(key)
        if factor is None:
            # The same operations as nengo's Cholesky, so the same bits.
            G = gram(A, transpose)  # nengo's np.dot, on SciPy's BLAS (see .blas)
            np.fill_diagonal(G, G.diagonal() + m * sigma**2)
            factor = acts.factors[key] = scipy.linalg.cho_factor(G, overwrite_a=True)
            if kept:
                self._keep(acts, conn.pre_obj)
        X = scipy.linalg.cho_solve(factor, targets if transpose else dot(A.T, targets))
        if transpose:
            X = dot(A.T, X)
        # nengo's rmses (the same arithmetic)
        errors = npext.rms(targets - dot(A, X), axis=0)
        return X, {"rmses": errors, "time": time.time() - t_start}


class SharingBuilder(Builder):
    """nengo's builder, with decoder solves that share per-ensemble work.

    Everything but the solves of nengo's own `LstsqL2` solver goes to nengo's
    registry (including build functions users register after import).
    """

    def __init__(self):
        self.solves = SharedSolves()

    def build(self, model, obj, *args, **kwargs):
        if (
            isinstance(obj, Solver)
            and not model.has_built(obj)
            and _builder_for(obj) is nengo_build_solver
        ):
            return self.solves.build(model, obj, *args, **kwargs)
        if (
            not model.has_built(obj)
            and _builder_for(obj) is nengo_build_dense
            and builds_in_place(obj, kwargs.get("decoders"), kwargs.get("encoders"))
        ):
            return build_dense_in_place(model, obj, *args, **kwargs)
        return Builder.build(model, obj, *args, **kwargs)

    def done(self) -> None:
        """Drop what the solves kept (call when the build has finished)."""
        self.solves.clear()
