"""Pickling a `.Simulator`: its network, built model, params, state and probe data.

Unpickling builds the step functions again from the pickled model (no new
build of the network) and restores the rest, so a pickled Simulator continues
where it was.
"""

from __future__ import annotations

import jax


class Pickling:
    """``__getstate__``/``__setstate__`` of `.Simulator` (a base class of it)."""

    def __getstate__(self):
        return {
            "network": self._network,
            "model": self.model,
            "init_args": self._init_args,
            "seed": self._seed,
            "progress_bar": self.progress_bar,
            "optimize": self.optimize,
            "params": jax.device_get(self.params),
            "state": jax.device_get(self.state) if self.state is not None else None,
            "n_steps": self._n_steps,
            "probe_chunks": self._probe_chunks,
            "closed": self.closed,
        }

    def __setstate__(self, st):
        self.__init__(
            None,
            model=st["model"],
            key_network=st["network"],
            seed=st["seed"],
            progress_bar=st["progress_bar"],
            optimize=False,  # the pickled model is already optimized
            _merge=st["optimize"],
            **st["init_args"],
        )
        self.optimize = st["optimize"]
        self.params = st["params"]
        if st["state"] is not None:
            self.state = st["state"]
        self._n_steps = st["n_steps"]
        self._probe_chunks = st["probe_chunks"]
        self._probe_key = {p: self._probe_key_by_id[id(p)] for p in self._probe_chunks}
        if st["closed"]:
            self.close()
