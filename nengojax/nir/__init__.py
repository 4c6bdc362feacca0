"""NIR (Neuromorphic Intermediate Representation) import and export.

`from_nir` builds a nengo network from a ``nir.NIRGraph``; `to_nir` exports a
nengo network as one. The neuron types NIR's primitives map onto are in
`nengojax.nir.neurons`. Needs the optional ``nir`` package
(``pip install nengojax[nir]``).
"""

from .export import to_nir
from .importer import from_nir
from .neurons import Heaviside, Integrator, LeakyIntegrator, ResetIF, ResetLIF

__all__ = [
    "Heaviside",
    "Integrator",
    "LeakyIntegrator",
    "ResetIF",
    "ResetLIF",
    "from_nir",
    "to_nir",
]
