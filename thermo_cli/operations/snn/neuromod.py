"""Neuromodulation: four chemical levels that scale how the spiking network learns.

The levels are the Rust crate's (ENGINE.md "Neuromodulation"): dopamine scales learning
(reward), serotonin slows decay and scales homeostasis (mood), norepinephrine scales
competition (arousal) and acetylcholine gates spreading activation (focus). Each lives in
[0, 1] with baseline 0.5; values are rounded through float32 as the crate stored them.

A network can follow an external (colony-wide) state through :class:`NeuromodSync`, which
pulls the local levels toward the external ones by ``sync_rate`` when enabled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from thermo_cli.errors import ValidationError
from thermo_cli.model import f32

BASELINE = 0.5
LEVELS = ("dopamine", "serotonin", "norepinephrine", "acetylcholine")


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ValidationError(f"{what}: must be finite, got {value!r}")
    return float(value)


def _clamp01(x: float) -> float:
    return f32(min(1.0, max(0.0, x)))


@dataclass(slots=True)
class NeuromodState:
    """Dopamine, serotonin, norepinephrine and acetylcholine, each clamped to [0, 1].

    The signal methods change the state in place and return it, so adjustments chain:
    ``NeuromodState().reward(0.3).stress(0.1)``.
    """

    dopamine: float = BASELINE
    serotonin: float = BASELINE
    norepinephrine: float = BASELINE
    acetylcholine: float = BASELINE

    def __post_init__(self) -> None:
        for name in LEVELS:
            value = _finite(getattr(self, name), name)
            if not 0.0 <= value <= 1.0:
                raise ValidationError(f"{name}: must be within [0, 1], got {value!r}")
            setattr(self, name, f32(value))

    @classmethod
    def baseline(cls) -> NeuromodState:
        return cls()

    def reward(self, amount: float) -> NeuromodState:
        """Reward raises dopamine, which speeds up STDP and prototype learning."""
        self.dopamine = _clamp01(self.dopamine + _finite(amount, "reward"))
        return self

    def stress(self, amount: float) -> NeuromodState:
        """Stress lowers serotonin (faster decay) and raises norepinephrine (sharper competition)."""
        amount = _finite(amount, "stress")
        self.serotonin = _clamp01(self.serotonin - amount)
        self.norepinephrine = _clamp01(self.norepinephrine + amount)
        return self

    def focus(self, amount: float) -> NeuromodState:
        """Focus raises acetylcholine, which lets activation spread along learned weights."""
        self.acetylcholine = _clamp01(self.acetylcholine + _finite(amount, "focus"))
        return self

    def decay(self, rate: float) -> NeuromodState:
        """Relax every level toward the 0.5 baseline: ``x += (0.5 - x) * rate``.

        The crate does not clamp here; a rate outside [0, 1] would overshoot the baseline
        or push levels out of range, so the result is clamped like every other signal.
        """
        rate = _finite(rate, "decay")
        for name in LEVELS:
            x = getattr(self, name)
            setattr(self, name, _clamp01(x + (BASELINE - x) * rate))
        return self

    def copy(self) -> NeuromodState:
        return NeuromodState(self.dopamine, self.serotonin, self.norepinephrine, self.acetylcholine)

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in LEVELS}

    @classmethod
    def from_dict(cls, data: Any, what: str = "neuromod") -> NeuromodState:
        """Rebuild from :meth:`to_dict` output; missing levels are an error, extra keys too."""
        if not isinstance(data, dict):
            raise ValidationError(f"{what}: expected a map of levels, got {type(data).__name__}")
        unknown = sorted(set(data) - set(LEVELS))
        if unknown:
            raise ValidationError(f"{what}: unknown level {unknown[0]!r}")
        missing = [name for name in LEVELS if name not in data]
        if missing:
            raise ValidationError(f"{what}: missing level {missing[0]!r}")
        return cls(**{name: data[name] for name in LEVELS})


@dataclass(frozen=True, slots=True)
class NeuromodSync:
    """How strongly a local state follows an external one (the crate's NeuromodSyncConfig).

    ``interval_ms`` is the minimum time between two syncs; :meth:`due` answers whether a
    sync may run now, :meth:`apply` performs one.
    """

    enabled: bool = True
    sync_rate: float = 0.1
    interval_ms: int = 100

    def __post_init__(self) -> None:
        rate = _finite(self.sync_rate, "sync_rate")
        if not 0.0 <= rate <= 1.0:
            raise ValidationError(f"sync_rate: must be within [0, 1], got {rate!r}")
        if isinstance(self.interval_ms, bool) or not isinstance(self.interval_ms, int):
            raise ValidationError(f"interval_ms: expected an integer, got {self.interval_ms!r}")
        if self.interval_ms < 0:
            raise ValidationError(f"interval_ms: must be >= 0, got {self.interval_ms}")
        object.__setattr__(self, "sync_rate", f32(rate))

    @classmethod
    def default(cls) -> NeuromodSync:
        return cls(True, 0.1, 100)

    @classmethod
    def independent(cls) -> NeuromodSync:
        return cls(False, 0.0, 0)

    @classmethod
    def full_sync(cls) -> NeuromodSync:
        return cls(True, 1.0, 50)

    @classmethod
    def preset(cls, name: str) -> NeuromodSync:
        presets = {"default": cls.default, "independent": cls.independent, "full_sync": cls.full_sync}
        key = name.strip().lower().replace("-", "_")
        if key not in presets:
            raise ValidationError(
                f"neuromod sync preset: expected default, independent or full_sync, got {name!r}"
            )
        return presets[key]()

    def due(self, last_sync_ms: int | None, now_ms: int) -> bool:
        """True when enabled and at least ``interval_ms`` passed since the last sync."""
        if not self.enabled:
            return False
        return last_sync_ms is None or now_ms - last_sync_ms >= self.interval_ms

    def apply(self, local: NeuromodState, external: NeuromodState) -> NeuromodState:
        """Pull ``local`` toward ``external`` by ``sync_rate`` (in place; returns ``local``)."""
        if not self.enabled:
            return local
        for name in LEVELS:
            x = getattr(local, name)
            setattr(local, name, _clamp01(x + (getattr(external, name) - x) * self.sync_rate))
        return local
