"""Weight initialisers as nengo distributions: `Glorot`, `He`, `VarianceScaling`,
`TruncatedNormal` (NengoDL's ``nengo_dl.dists``).

Each is a `nengo.dists.Distribution`, so it works wherever nengo takes one, in
particular as a Connection's transform: ``nengo.Connection(a, b,
transform=nengojax.dists.Glorot())`` samples a ``(size_out, size_in)`` matrix,
and the fan-in/fan-out of the variance scaling are ``size_in``/``size_out``.

The parameters mean what they mean in NengoDL, so a ported model draws the
same weights from the same seed: ``He(scale=s)`` scales the variance by
``s**2``, and the ``"normal"`` distributions are truncated at two standard
deviations without correcting the variance (which is then 0.774 of
``scale / fan``, as in NengoDL and TensorFlow 1's initialisers).
"""

from __future__ import annotations

import numpy as np
from nengo.dists import Distribution
from nengo.params import EnumParam, NumberParam

__all__ = ["Glorot", "He", "TruncatedNormal", "VarianceScaling"]


class TruncatedNormal(Distribution):
    """Normal distribution with samples beyond ``limit`` of the mean redrawn.

    Parameters
    ----------
    mean : float
        Mean of the normal.
    stddev : float
        Standard deviation of the normal (before truncation).
    limit : float, optional
        Samples farther than this from the mean are redrawn (default
        ``2 * stddev``).
    """

    mean = NumberParam("mean")
    stddev = NumberParam("stddev", low=0)
    limit = NumberParam("limit", low=0, low_open=True)

    def __init__(self, mean=0.0, stddev=1.0, limit=None):
        super().__init__()
        self.mean = mean
        self.stddev = stddev
        self.limit = 2 * stddev if limit is None else limit

    def sample(self, n, d=None, rng=np.random):
        shape = self._sample_shape(n, d)
        out = rng.normal(self.mean, self.stddev, size=shape)
        bad = np.abs(out - self.mean) > self.limit
        while bad.any():
            out[bad] = rng.normal(self.mean, self.stddev, size=int(bad.sum()))
            bad = np.abs(out - self.mean) > self.limit
        return out


class VarianceScaling(Distribution):
    """Samples of variance ``scale / fan``: uniform, or a truncated normal.

    For an ``(n, d)`` sample (a transform from ``d`` inputs to ``n``
    outputs) the fan is ``d`` (``"fan_in"``), ``n`` (``"fan_out"``) or their
    mean (``"fan_avg"``).

    Parameters
    ----------
    scale : float
        Scale of the variance.
    mode : str
        ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
    distribution : str
        ``"uniform"``, or ``"normal"``: standard deviation ``sqrt(scale / fan)``
        truncated at 2 standard deviations (uncorrected, as NengoDL's: the
        variance is 0.774 of ``scale / fan``).
    """

    scale = NumberParam("scale", low=0)
    mode = EnumParam("mode", values=("fan_in", "fan_out", "fan_avg"))
    distribution = EnumParam("distribution", values=("uniform", "normal"))

    def __init__(self, scale=1.0, mode="fan_avg", distribution="uniform"):
        super().__init__()
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    def sample(self, n, d=None, rng=np.random):
        fan_out, fan_in = n, 1 if d is None else d
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        var = self.scale / fan[self.mode]
        if self.distribution == "uniform":
            limit = np.sqrt(3 * var)
            return rng.uniform(-limit, limit, size=self._sample_shape(n, d))
        return TruncatedNormal(stddev=np.sqrt(var)).sample(n, d, rng=rng)


class Glorot(VarianceScaling):
    """Glorot (Xavier) initialisation: variance ``scale / fan_avg``, uniform."""

    def __init__(self, scale=1.0, distribution="uniform"):
        super().__init__(scale=scale, mode="fan_avg", distribution=distribution)


class He(VarianceScaling):
    """He initialisation as NengoDL's: variance ``scale**2 / fan_in``, normal.

    ``scale=np.sqrt(2)`` gives He et al.'s variance ``2 / fan_in`` (before the
    truncation); NengoDL's default is 1.
    """

    def __init__(self, scale=1.0, distribution="normal"):
        super().__init__(scale=scale**2, mode="fan_in", distribution=distribution)
