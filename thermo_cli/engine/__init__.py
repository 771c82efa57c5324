"""The plasticity engine core: thermal layers, deltas, hash chain, consolidation.

``Thermogram`` holds the state and offers every operation; the configuration records
and presets are in :mod:`.config`, the formulas in :mod:`.plasticity`, the chain
(validation, hashing, verification) in :mod:`.chain`, layer moves in :mod:`.transitions`
and the dirty-delta fold in :mod:`.consolidation`.
"""

from thermo_cli.config.engine import (
    ConsolidationPolicy,
    DeltaCount,
    DirtySize,
    Manual,
    PlasticityPolicy,
    PlasticityRule,
    ThermalConfig,
    TimePeriod,
)
from thermo_cli.engine.chain import ChainCheck, HashChain
from thermo_cli.engine.consolidation import ConsolidationReport
from thermo_cli.engine.thermogram import CrystallizationResult, Thermogram, ThermogramStats
from thermo_cli.engine.transitions import TransitionReport

__all__ = [
    "ChainCheck",
    "ConsolidationPolicy",
    "ConsolidationReport",
    "CrystallizationResult",
    "DeltaCount",
    "DirtySize",
    "HashChain",
    "Manual",
    "PlasticityPolicy",
    "PlasticityRule",
    "ThermalConfig",
    "Thermogram",
    "ThermogramStats",
    "TimePeriod",
    "TransitionReport",
]
