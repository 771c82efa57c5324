"""The plasticity engine: an embedded spiking network that turns activations into deltas.

* :mod:`.neuromod` — :class:`NeuromodState` (dopamine, serotonin, norepinephrine,
  acetylcholine) and :class:`NeuromodSync` with its presets.
* :mod:`.config` — :class:`SNNConfig` with every default of the Rust crate.
* :mod:`.network` — :class:`EmbeddedSNN`: the crate's eight steps per tick, vectorized
  with NumPy, plus thermo's fixes (prototype learning, ternary STDP that can leave zero,
  one Delete per vanished weight).
* :mod:`.rules` — element-wise ternary rules; :mod:`.arrays` — the state's array codec.
* :mod:`.inputs` — activations from .npy, .safetensors, JSONL or stdin.
* :mod:`.runner` — a thermogram's own network (``tg.extras["snn"]``) and :func:`run`.
* :mod:`.stats` — a summary for ``thermo snn stats``.
"""

from thermo_cli.operations.snn.config import SNNConfig
from thermo_cli.operations.snn.network import EmbeddedSNN, check_activations, weight_key
from thermo_cli.operations.snn.neuromod import NeuromodState, NeuromodSync

__all__ = [
    "EmbeddedSNN",
    "NeuromodState",
    "NeuromodSync",
    "SNNConfig",
    "check_activations",
    "weight_key",
]
