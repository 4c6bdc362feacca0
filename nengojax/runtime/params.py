"""Params into base arrays: each param written into its place in its base.

The step reads signals from flat base arrays; a param (an encoder matrix, a
bias vector) is a piece of one. Packing runs once per run, outside the scan, so
params stay out of the scan's carry.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler.program import Program
from ..dtypes import to_device


class ParamPacker:
    """Packs params into the flat arrays of their bases.

    Parameters
    ----------
    program : Program
        The static program.

    Attributes
    ----------
    consts : dict
        Base key -> device array of every const and scratch base (initial
        values); `with_param_bases` adds the param bases, which only a traced
        pack needs (kept off the device otherwise: a large weight matrix would
        be held twice).
    """

    def __init__(self, program: Program):
        self.program = program
        bases = program.layout.bases
        self.consts = {b.key: to_device(b.init) for b in bases if b.kind in ("const", "scratch")}
        self._host_consts = {b.key: b.init for b in bases if b.kind in ("const", "param")}
        self._param_consts = None
        self._cached = None

    def with_param_bases(self, consts: dict) -> dict:
        """``consts`` and the initial values of the param bases, on the device."""
        if self._param_consts is None:
            with jax.ensure_compile_time_eval():  # concrete arrays, even inside a trace
                self._param_consts = {
                    b.key: to_device(b.init)
                    for b in self.program.layout.bases
                    if b.kind == "param"
                }
        return {**consts, **self._param_consts}

    def _whole(self, b, params):
        """The param array that is all of base ``b``, when it can be used as it is."""
        keys = self.program.base_params[b.index]
        if len(keys) != 1 or b.sparse:
            return None
        value = params[keys[0]]
        view = self.program.params[keys[0]].view
        ok = isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer)
        if ok and view is not None and view.full and value.dtype == self.program.float_dtype:
            return value
        return None

    def pack(self, params, consts, xp=jnp, skip=()) -> dict:
        """Flat base arrays of all constants, with params written into them.

        Contiguous params are concatenated (with the constant gaps between
        them), which compiles much faster than a chain of scatters. With
        ``xp=numpy`` it runs on the host (no compile at all). Bases whose
        index is in ``skip`` are left out.
        """
        packed = {}
        for b in self.program.layout.bases:
            if b.index in skip:
                continue
            if b.kind == "const":
                packed[b.index] = consts[b.key]
            elif b.kind == "param":
                packed[b.index] = self._pack_base(b, params, consts, xp)
        return packed

    def _pack_base(self, b, params, consts, xp):
        program = self.program
        keys = program.base_params[b.index]
        dtype = program.float_dtype
        values = {k: xp.asarray(params[k], dtype).ravel() for k in keys}
        for key in keys:
            view = program.params[key].view
            if view is None or view.full:
                return values[key]
        contiguous = sorted(
            (program.params[k].view.start, program.params[k].view.stop, k)
            for k in keys
            if program.params[k].view.index is None
        )
        pieces, pos = [], 0
        for start, stop, key in contiguous:
            if start < pos:  # overlapping views: write them one by one instead
                pieces = None
                break
            if start > pos:
                pieces.append(consts[b.key][pos:start])
            pieces.append(values[key])
            pos = stop
        if pieces is None:
            arr = consts[b.key]
            for start, stop, key in contiguous:
                arr = _set(xp, arr, slice(start, stop), values[key])
        else:
            if pos < b.init.size:
                pieces.append(consts[b.key][pos:])
            arr = xp.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        for key in keys:
            view = program.params[key].view
            if view.index is not None:
                arr = _set(xp, arr, view.index.ravel(), values[key])
        return arr

    def pack_on_host(self, params) -> dict:
        """`pack` with NumPy, remembered for the same param arrays.

        Concrete params (the Simulator's, or a user's) are packed on the host:
        a jitted pack of thousands of params takes seconds to compile, and the
        packed arrays are few.
        """
        # only immutable (JAX) arrays can be recognised again by identity
        cacheable = all(isinstance(v, jax.Array) for v in params.values())
        ident = tuple((k, id(v)) for k, v in params.items())
        if cacheable and self._cached is not None and self._cached[0] == ident:
            return self._cached[2]
        # a param that is a whole base goes as it is (the step flattens it):
        # no host round trip, no second copy of a large weight matrix
        whole = {}
        for b in self.program.layout.bases:
            if b.kind == "param":
                value = self._whole(b, params)
                if value is not None:
                    whole[b.index] = value
        skip = {k for b in whole for k in self.program.base_params[b]}
        host_params = {k: np.asarray(v) for k, v in params.items() if k not in skip}
        packed = jax.device_put(self.pack(host_params, self._host_consts, xp=np, skip=whole))
        packed.update(whole)
        inside_trace = any(isinstance(v, jax.core.Tracer) for v in packed.values())
        if (
            cacheable and not inside_trace
        ):  # keep the arrays alive so their ids stay theirs while cached
            self._cached = (ident, dict(params), packed)
        return packed


def _set(xp, arr, index, value):
    """``arr[index] = value`` for NumPy (a copy) or JAX arrays."""
    if xp is jnp:
        return arr.at[index].set(value)
    arr = np.array(arr, copy=True)
    arr[index] = value
    return arr
