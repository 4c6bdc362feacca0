"""JAX's persistent compilation cache, on by default for nengojax.

XLA compiles each simulation program once per process; with the persistent
cache, a script run again (a new seed, changed parameters or inputs: all are
arguments of the compiled programs, not constants) loads the compiled programs
from disk instead. nengojax turns the cache on when it is imported, in a
per-user directory, unless the user has set a cache directory already:

- ``NENGOJAX_CACHE_DIR=/some/dir`` chooses the directory;
- ``NENGOJAX_CACHE=0`` leaves JAX's setting alone (no cache unless you set one);
- `enable_compilation_cache` / `disable_compilation_cache` change it at run time.

Programs that compile in under ``min_compile_time`` seconds (0.05 by default)
are not cached: loading them would not be faster.
"""

from __future__ import annotations

import os

import jax

__all__ = ["default_cache_dir", "disable_compilation_cache", "enable_compilation_cache"]


def default_cache_dir() -> str:
    """``$NENGOJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/nengojax/jax`` (``~/.cache/...``)."""
    explicit = os.environ.get("NENGOJAX_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nengojax", "jax")


def enable_compilation_cache(path: str | None = None, min_compile_time: float = 0.05) -> str:
    """Store compiled programs in ``path`` (default `default_cache_dir`) and reuse them.

    Parameters
    ----------
    path : str, optional
        The cache directory (created if missing).
    min_compile_time : float
        Programs compiling faster than this (seconds) are not stored.

    Returns
    -------
    str
        The cache directory.
    """
    path = os.path.abspath(path or default_cache_dir())
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time))
    return path


def disable_compilation_cache() -> None:
    """Stop using a persistent compilation cache (compiled programs stay in memory)."""
    jax.config.update("jax_compilation_cache_dir", None)


def enable_default_cache() -> None:
    """What importing nengojax does: the cache on, unless the user chose otherwise."""
    if os.environ.get("NENGOJAX_CACHE", "1") in ("0", "false", "no", "off"):
        return
    if jax.config.jax_compilation_cache_dir is not None:
        return  # the user's own setting wins
    try:
        enable_compilation_cache()
    except OSError:  # a read-only home: run without the cache
        pass
