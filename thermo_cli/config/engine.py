"""Configuration records of a thermogram: thermal layers, plasticity rule, consolidation policy.

Every constant and preset is the Rust crate's (ENGINE.md), because users' files were made
with them. These are plain data shared by every reader and writer, so they sit below the
engine: what a rule *does* (which formula a policy uses) lives in
:mod:`thermo_cli.engine.plasticity`; whether a consolidation trigger fired is decided here
because it is pure arithmetic on the policy's own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from thermo_cli.errors import ValidationError
from thermo_cli.model import NS_PER_SECOND, U64_MAX

Quad = tuple[float, float, float, float]


# --- thermal layers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThermalConfig:
    """Per-layer decay, promotion and demotion settings (arrays are hot, warm, cool, cold)."""

    decay_rates: Quad = (0.1, 0.01, 0.001, 0.0001)
    promotion_thresholds: Quad = (0.6, 0.75, 0.9, 1.0)
    demotion_thresholds: Quad = (0.0, 0.3, 0.4, 0.5)
    min_observations: tuple[int, int, int, int] = (3, 10, 50, U64_MAX)
    allow_demotion: tuple[bool, bool, bool, bool] = (False, True, True, True)
    prune_threshold: float = 0.05
    crystallization_threshold: float = 0.75
    allow_warming: bool = True
    warming_delta: float = 0.3

    @classmethod
    def default(cls) -> ThermalConfig:
        return cls()

    @classmethod
    def fast_learner(cls) -> ThermalConfig:
        return cls(
            decay_rates=(0.05, 0.005, 0.0005, 0.00005),
            promotion_thresholds=(0.5, 0.65, 0.85, 1.0),
            demotion_thresholds=(0.0, 0.2, 0.3, 0.4),
            min_observations=(2, 5, 20, U64_MAX),
            allow_demotion=(False, True, True, False),
            prune_threshold=0.03,
            crystallization_threshold=0.85,
            allow_warming=True,
            warming_delta=0.2,
        )

    @classmethod
    def organic(cls) -> ThermalConfig:
        return cls(
            decay_rates=(0.1, 0.01, 0.001, 0.0001),
            promotion_thresholds=(0.7, 0.8, 0.95, 1.0),
            demotion_thresholds=(0.0, 0.25, 0.35, 0.45),
            min_observations=(5, 15, 100, U64_MAX),
            allow_demotion=(False, True, True, True),
            prune_threshold=0.05,
            crystallization_threshold=0.95,
            allow_warming=True,
            warming_delta=0.3,
        )

    @classmethod
    def preset(cls, name: str) -> ThermalConfig:
        table = {"default": cls.default, "fast_learner": cls.fast_learner, "organic": cls.organic}
        key = name.strip().lower().replace("-", "_")
        if key not in table:
            raise ValidationError(f"preset: expected default, fast-learner or organic, got {name!r}")
        return table[key]()

    @classmethod
    def from_legacy_04(
        cls,
        crystallization_threshold: float = 0.75,
        min_observations: int = 3,
        prune_threshold: float = 0.1,
        allow_warming: bool = True,
        warming_delta: float = 0.3,
    ) -> ThermalConfig:
        """Map the 0.4 scalar config as ENGINE.md says; everything else is the default."""
        d = cls()
        promo = list(d.promotion_thresholds)
        promo[2] = crystallization_threshold
        mins = list(d.min_observations)
        mins[0] = min_observations
        return cls(
            promotion_thresholds=tuple(promo),  # type: ignore[arg-type]
            min_observations=tuple(mins),  # type: ignore[arg-type]
            prune_threshold=prune_threshold,
            crystallization_threshold=crystallization_threshold,
            allow_warming=allow_warming,
            warming_delta=warming_delta,
        )


# --- plasticity ----------------------------------------------------------------------------


class PlasticityPolicy(Enum):
    """How a new strength combines with the current one; values are the crate's names."""

    STDP = "STDP"
    REPLACE = "Replace"
    EMA = "EMA"
    BAYESIAN = "Bayesian"
    WTA = "WTA"


@dataclass(frozen=True, slots=True)
class PlasticityRule:
    policy: PlasticityPolicy = PlasticityPolicy.STDP
    novelty_threshold: float = 0.6
    merge_threshold: float = 0.3
    decay_rate: float = 0.01
    prune_threshold: float = 0.1
    learning_rate: float = 0.1

    @classmethod
    def stdp_like(cls) -> PlasticityRule:
        return cls(PlasticityPolicy.STDP, 0.6, 0.3, 0.01, 0.1, 0.1)

    @classmethod
    def conservative(cls) -> PlasticityRule:
        return cls(PlasticityPolicy.EMA, 0.8, 0.4, 0.005, 0.05, 0.05)

    @classmethod
    def aggressive(cls) -> PlasticityRule:
        return cls(PlasticityPolicy.STDP, 0.4, 0.2, 0.02, 0.2, 0.2)

    @classmethod
    def replace_only(cls) -> PlasticityRule:
        return cls(PlasticityPolicy.REPLACE, 1.0, 0.0, 0.0, 0.0, 1.0)

    @classmethod
    def bayesian(cls) -> PlasticityRule:
        return cls(PlasticityPolicy.BAYESIAN, 0.7, 0.3, 0.01, 0.1, 0.1)

    @classmethod
    def preset(cls, name: str) -> PlasticityRule:
        table = {
            "stdp": cls.stdp_like,
            "stdp_like": cls.stdp_like,
            "conservative": cls.conservative,
            "aggressive": cls.aggressive,
            "replace": cls.replace_only,
            "replace_only": cls.replace_only,
            "bayesian": cls.bayesian,
        }
        key = name.strip().lower().replace("-", "_")
        if key not in table:
            raise ValidationError(
                f"plasticity: expected stdp, conservative, aggressive, replace or bayesian, got {name!r}"
            )
        return table[key]()


# --- consolidation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeltaCount:
    count: int


@dataclass(frozen=True, slots=True)
class TimePeriod:
    hours: int


@dataclass(frozen=True, slots=True)
class DirtySize:
    bytes: int


@dataclass(frozen=True, slots=True)
class Manual:
    pass


Trigger = DeltaCount | TimePeriod | DirtySize | Manual


@dataclass(frozen=True, slots=True)
class ConsolidationPolicy:
    triggers: tuple[Trigger, ...] = field(default=(DeltaCount(1000), TimePeriod(24)))
    enable_pruning: bool = True
    enable_merging: bool = True

    @classmethod
    def default(cls) -> ConsolidationPolicy:
        return cls()

    @classmethod
    def aggressive(cls) -> ConsolidationPolicy:
        return cls((DeltaCount(100), TimePeriod(1)), True, True)

    @classmethod
    def conservative(cls) -> ConsolidationPolicy:
        return cls((DeltaCount(10000), TimePeriod(168)), False, False)

    @classmethod
    def manual(cls) -> ConsolidationPolicy:
        return cls((Manual(),), True, True)

    @classmethod
    def preset(cls, name: str) -> ConsolidationPolicy:
        table = {
            "default": cls.default,
            "aggressive": cls.aggressive,
            "conservative": cls.conservative,
            "manual": cls.manual,
        }
        key = name.strip().lower()
        if key not in table:
            raise ValidationError(
                f"policy: expected default, aggressive, conservative or manual, got {name!r}"
            )
        return table[key]()

    def should_consolidate(
        self, delta_count: int, last_consolidation_ns: int, dirty_bytes: int, now_ns: int
    ) -> bool:
        """True when any trigger fires: >= n dirty deltas, >= hours since the last
        consolidation, or >= bytes of estimated dirty size. Manual never fires."""
        for trigger in self.triggers:
            if isinstance(trigger, DeltaCount):
                if delta_count >= trigger.count:
                    return True
            elif isinstance(trigger, TimePeriod):
                if now_ns - last_consolidation_ns >= trigger.hours * 3600 * NS_PER_SECOND:
                    return True
            elif isinstance(trigger, DirtySize) and dirty_bytes >= trigger.bytes:
                return True
        return False

    def thresholds(self) -> tuple[int | None, int | None, int | None]:
        """(smallest delta count, shortest period in ns, smallest dirty size) that fire,
        None where no trigger of that kind exists; lets the engine check in O(1)."""
        counts = [t.count for t in self.triggers if isinstance(t, DeltaCount)]
        periods = [t.hours * 3600 * NS_PER_SECOND for t in self.triggers if isinstance(t, TimePeriod)]
        sizes = [t.bytes for t in self.triggers if isinstance(t, DirtySize)]
        return (
            min(counts) if counts else None,
            min(periods) if periods else None,
            min(sizes) if sizes else None,
        )
