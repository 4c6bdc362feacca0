"""nengo's decoder-cache keys, with less hashing.

nengo's `~nengo.cache.DecoderCache` keys a solve by the SHA-1 of the solver,
the neuron type, the ensemble's gains and biases, its inputs at the
evaluation points (``x``, evaluation points by neurons: nearly all of the
bytes; a nengo_spa model hashes ~2 GB of them on every build, about a second),
the targets and the random state. Two things make that cheaper, and the cache
stays nengo's (entries written by either simulator are found by the other):

- connections from one ensemble with its default evaluation points share the
  key up to the targets: `SharedPrefixes` hashes that prefix once;
- ``x`` is the evaluation points times the encoders: an *alias* key hashes
  those (tens of times fewer bytes) instead. Once nengo's key for a solve is
  known, the alias is stored in nengo's cache index next to it, pointing at
  the same decoders, so the next build of the model (a rerun) finds them by
  the alias without hashing ``x``. The alias also names the NumPy version,
  BLAS and machine, which decide the bits of ``x``.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import struct

import numpy as np
from nengo.cache import DecoderCache, Fingerprint

__all__ = ["ALIAS_PREFIX", "SharedPrefixes", "decoder_keys"]

#: Alias keys in nengo's cache index start with this (nengo's are hex digests).
ALIAS_PREFIX = "nengojax-inputs-1-"


def _platform() -> bytes:
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')}-{blas.get('version')}"
    except (AttributeError, KeyError, TypeError):
        blas = "unknown"
    return f"{np.__version__}|{blas}|{platform.machine()}".encode()


_PLATFORM = _platform()


def _fingerprints(solver, neuron_type) -> tuple:
    return (str(Fingerprint(solver)), str(Fingerprint(neuron_type)))


def _update_rng(h, rng) -> None:
    """nengo's hashing of a RandomState's state."""
    state = rng.get_state()
    h.update(state[0].encode())
    h.update(state[1].data)
    h.update(struct.pack("q", state[2]))
    h.update(struct.pack("q", state[3]))
    h.update(struct.pack("d", state[4]))


def _update_arrays(h, *arrays) -> None:
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)


class SharedPrefixes:
    """nengo's keys for solves at one ``x``: the part before the targets is
    hashed once per solver and neuron type."""

    def __init__(self):
        self.prefixes: dict = {}

    def nengo_key(
        self, solver, neuron_type, gain, bias, x, targets, rng, fingerprints=None
    ) -> str:
        """``DecoderCache._get_cache_key``, bit for bit."""
        fingerprints = fingerprints or _fingerprints(solver, neuron_type)
        prefix = self.prefixes.get(fingerprints)
        if prefix is None:
            prefix = hashlib.sha1()
            for fingerprint in fingerprints:
                prefix.update(fingerprint.encode("utf-8"))
            for array in (gain, bias, x):
                prefix.update(np.ascontiguousarray(array).data)
            self.prefixes[fingerprints] = prefix
        key = prefix.copy()
        key.update(np.ascontiguousarray(targets).data)
        _update_rng(key, rng)
        return key.hexdigest()


class _SolveKeys:
    """The key function of one solve: the alias if the index has it, else nengo's.

    ``inputs`` has ``eval_points``, ``encoders``, ``radius``, ``x`` (computed
    when read) and ``keys`` (`SharedPrefixes`); the ``x`` nengo passes is
    ignored (the solve may pass ``inputs`` itself in its place).
    """

    def __init__(self, index, inputs):
        self.index = index
        self.inputs = inputs
        self.alias = self.key = None

    def __call__(self, solver, neuron_type, gain, bias, x, targets, rng) -> str:
        inputs = self.inputs
        eval_points, encoders, radius = inputs.eval_points, inputs.encoders, inputs.radius
        h = hashlib.sha1(ALIAS_PREFIX.encode() + _PLATFORM)
        fingerprints = _fingerprints(solver, neuron_type)
        for fingerprint in fingerprints:
            h.update(fingerprint.encode("utf-8"))
        h.update(struct.pack("d", float(radius)))
        _update_arrays(h, gain, bias, eval_points, encoders, targets)
        _update_rng(h, rng)
        self.alias = ALIAS_PREFIX + h.hexdigest()
        if _lookup(self.index, self.alias) is not None:
            return self.alias
        self.key = inputs.keys.nengo_key(
            solver, neuron_type, gain, bias, inputs.x, targets, rng, fingerprints
        )
        return self.key

    def store_alias(self) -> None:
        """After the solve: the alias points where nengo's key does."""
        if self.key is None:
            return
        entry = _lookup(self.index, self.key)
        if entry is not None:
            self.index[self.alias] = entry


def _lookup(index, key):
    try:
        return index[key]
    except KeyError:
        return None


@contextlib.contextmanager
def decoder_keys(cache, inputs):
    """Within the block, ``cache`` (nengo's own `DecoderCache`, in use and
    writeable; any other is left as it is) keys its solve of ``inputs`` (see
    `_SolveKeys`) with an alias or nengo's key, and stores the alias after it.

    Yields whether it does (if not, the cache hashes ``x`` itself)."""
    index = getattr(cache, "_index", None)
    if (
        type(cache) is not DecoderCache
        or cache.readonly
        or index is None
        or "_get_cache_key" in vars(cache)
    ):
        yield False
        return
    keys = _SolveKeys(index, inputs)
    cache._get_cache_key = keys  # an instance attribute: shadows nengo's method
    try:
        yield True
        keys.store_alias()
    finally:
        del cache._get_cache_key
