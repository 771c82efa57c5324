"""The plasticity engine core: thermal layers, deltas, hash chain, consolidation.

``Thermogram`` holds the state and offers every operation; the configuration records
and presets are in :mod:`.config`, the formulas in :mod:`.plasticity`, the chain
(validation, hashing, verification) in :mod:`.chain`, layer moves in :mod:`.transitions`
and the dirty-delta fold in :mod:`.consolidation`.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    **dict.fromkeys(
        (
            "ConsolidationPolicy",
            "DeltaCount",
            "DirtySize",
            "Manual",
            "PlasticityPolicy",
            "PlasticityRule",
            "ThermalConfig",
            "TimePeriod",
        ),
        "thermo_cli.config.engine",
    ),
    "ChainCheck": "thermo_cli.engine.chain",
    "HashChain": "thermo_cli.engine.chain",
    "ConsolidationReport": "thermo_cli.engine.consolidation",
    "CrystallizationResult": "thermo_cli.engine.thermogram",
    "Thermogram": "thermo_cli.engine.thermogram",
    "ThermogramStats": "thermo_cli.engine.thermogram",
    "TransitionReport": "thermo_cli.engine.transitions",
}
"""Where each name above lives: imported on first use, so loading one submodule (the
container's lazy layers use :mod:`.select`) does not load the whole engine."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
