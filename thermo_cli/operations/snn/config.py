"""Configuration of the embedded spiking network, with every default of the Rust crate.

The eleven crate fields keep their names and defaults (ENGINE.md "Embedded spiking
network"). The others are thermo's own and belong to the prototype-learning FIX and
the concept memory (docs/snn.md): ``learn_prototypes`` (False gives the crate's frozen
random prototypes, its ring of connections and its ``weight_i_j`` keys),
``prototype_lr_scale`` (the fixed prototype learning rate is ``prototype_lr_scale * stdp_lr
* dopamine``), ``prototype_rate`` ("fixed", or "1/n": a concept's n-th input moves it by
1/n, so its prototype is the exact mean of its unit inputs), ``center`` ("running": inputs
are centred by the running mean of every input seen, "none": used as given) and
``concept_tolerance`` (a concept entry is rewritten once ``1 - cosine(prototype, entry)``
exceeds it). The crate's fixed constants (tick length, schedules, thresholds) are module
constants, not settings, because files written by the crate assumed them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from thermo_cli.errors import ValidationError

TICK_MS = 100
"""Simulated time per processed activation; spike times are ``tick * TICK_MS``."""
HOMEOSTASIS_EVERY = 100
"""Homeostasis runs on ticks that are multiples of this."""
DECAY_EVERY = 10
"""Weight decay runs on ticks that are multiples of this."""
HOMEOSTASIS_GAIN = 0.01
"""Outgoing weights scale by ``1 + (target - rate) * HOMEOSTASIS_GAIN * serotonin``."""
PRUNE_BELOW = 0.01
"""A decayed continuous weight below this is set to zero (and deleted from the log)."""
INITIAL_WEIGHT = 0.1
"""Weight of every connection at start (ternary mode quantizes it at ternary_threshold)."""
PROTOTYPE_INIT_RANGE = 0.05
"""Prototypes start uniform in [-PROTOTYPE_INIT_RANGE, PROTOTYPE_INIT_RANGE)."""
RATE_ALPHA = 0.1
"""Firing rates are an exponential moving average with this weight on the newest tick."""

CENTERS = ("running", "none")
"""How inputs are centred before the cosine: by the running mean of all inputs, or not."""
PROTOTYPE_RATES = ("fixed", "1/n")
"""How far the winning prototype moves: a fixed rate, or 1/n for its n-th input (a true mean)."""
MAX_CONCEPT_NEURONS = 4096
"""Largest network with learned concepts: any two concepts may associate, so the
weights are an (n, n - 1) array."""

MAX_ELEMENTS = 1 << 28
"""Largest num_neurons * input_dim accepted (1 GiB of float32 prototypes)."""


@dataclass(frozen=True, slots=True)
class SNNConfig:
    """Settings of one :class:`~thermo_cli.operations.snn.network.EmbeddedSNN` (validated on creation)."""

    num_neurons: int = 100
    input_dim: int = 2048
    top_k: int = 10
    stdp_lr: float = 0.01
    homeostasis_target: float = 0.1
    competition_strength: float = 0.5
    decay_rate: float = 0.001
    trace_decay: float = 0.1
    spike_threshold: float = 0.5
    use_ternary: bool = False
    ternary_threshold: float = 0.3
    learn_prototypes: bool = True
    prototype_lr_scale: float = 10.0
    prototype_rate: str = "fixed"
    center: str = "running"
    concept_tolerance: float = 0.01

    def __post_init__(self) -> None:
        _int_at_least(self.num_neurons, "num_neurons", 1)
        _int_at_least(self.input_dim, "input_dim", 1)
        _int_at_least(self.top_k, "top_k", 0)
        if self.top_k > self.num_neurons - 1:
            # neuron i connects to (i + k) mod n for k = 1..top_k: k = n would be a self-loop
            raise ValidationError(
                f"top_k: {self.top_k} connections per neuron needs at least {self.top_k + 1} neurons "
                f"(num_neurons is {self.num_neurons}; a neuron never connects to itself)"
            )
        if self.num_neurons * self.input_dim > MAX_ELEMENTS:
            raise ValidationError(
                f"num_neurons * input_dim = {self.num_neurons * self.input_dim} exceeds the "
                f"maximum of {MAX_ELEMENTS} prototype elements"
            )
        _number_in(self.stdp_lr, "stdp_lr", 0.0, 1.0)
        _number_in(self.homeostasis_target, "homeostasis_target", 0.0, 1.0)
        _number_in(self.competition_strength, "competition_strength", 0.0, 1.0)
        _number_in(self.decay_rate, "decay_rate", 0.0, 1.0)
        _number_in(self.trace_decay, "trace_decay", 0.0, 1.0)
        _number_in(self.spike_threshold, "spike_threshold", -math.inf, math.inf)
        _number_in(self.ternary_threshold, "ternary_threshold", 0.0, 1.0)
        _number_in(self.prototype_lr_scale, "prototype_lr_scale", 0.0, 1e6)
        _number_in(self.concept_tolerance, "concept_tolerance", 0.0, 2.0)
        _choice(self.prototype_rate, "prototype_rate", PROTOTYPE_RATES)
        _choice(self.center, "center", CENTERS)
        if self.learn_prototypes and self.num_neurons > MAX_CONCEPT_NEURONS:
            raise ValidationError(
                f"num_neurons: at most {MAX_CONCEPT_NEURONS} with learned concepts (any two may "
                f"associate), got {self.num_neurons}"
            )
        for name in ("use_ternary", "learn_prototypes"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name}: expected true or false, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, what: str = "snn config") -> SNNConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are refused, missing ones default."""
        if not isinstance(data, dict):
            raise ValidationError(f"{what}: expected a map, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise ValidationError(f"{what}: unknown setting {unknown[0]!r}")
        return cls(**data)

    @property
    def connections(self) -> int:
        """Outgoing connections per neuron: the crate's ring of ``top_k`` for frozen
        prototypes; every other neuron when concepts are learned (associations)."""
        return self.top_k if not self.learn_prototypes else self.num_neurons - 1


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")


def _int_at_least(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name}: expected an integer, got {value!r}")
    if value < low:
        raise ValidationError(f"{name}: must be >= {low}, got {value}")


def _number_in(value: Any, name: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ValidationError(f"{name}: must be finite, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(f"{name}: must be within [{low}, {high}], got {value!r}")
