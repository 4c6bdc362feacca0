"""`nengojax.Simulator`: nengo's API over the runtime, with its parts.

- `simulator`: the Simulator (nengo's API: run, step, data, reset, ...);
- `data`: one validation of ``data``, ``x`` and ``y``;
- `trainer`: compile/fit/evaluate/predict on optax (`History` in `history`);
- `checkpoint`: save_params/load_params;
- `freeze`: trained values back into nengo (``sim.data``, freeze_params);
- `gradcheck`: check_gradients;
- `placement`: where arrays live with ``devices=``.
"""

from .history import History
from .simulator import SimulationData, Simulator
from .trainer import Trainer

__all__ = ["History", "SimulationData", "Simulator", "Trainer"]
