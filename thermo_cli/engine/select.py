"""Which entries of a layer a plasticity pass touches, asked once per layer instead of per entry.

Pruning, promotion, demotion and crystallization each pick the entries whose strength
(and update count) pass a threshold, then move or drop only those. On a lazily read
container layer, asking entry by entry builds an object for every entry of the file; a
:class:`StrengthTest` is declarative instead, so such a layer answers it from its strength,
count and ternary columns with numpy (``select_keys``), and a plain dict answers it entry by
entry with :meth:`StrengthTest.passes`. Both give the same keys in the same order.

Thresholds are float32 values held in Python floats (the engine rounds them first), and
stored strengths are float32 values too, so comparing doubles gives the crate's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from thermo_cli.model import Entry, Ternary

if TYPE_CHECKING:
    import numpy as np

NO_TERNARY_CODE = 2
"""How a ternary column spells "no ternary strength" (the container's directory chunks)."""


@dataclass(frozen=True, slots=True)
class StrengthTest:
    """Entries with ``strength < below`` (when set), ``strength >= at_least`` (when set) and
    ``update_count >= min_count``; with ``ternary_zero``, an entry holding a ternary strength
    passes exactly when it is zero, whatever its float strength (consolidation's prune)."""

    below: float | None = None
    at_least: float | None = None
    min_count: int = 0
    ternary_zero: bool = False

    def passes(self, e: Entry) -> bool:
        """The test on one entry."""
        if self.ternary_zero and e.ternary is not None:
            return e.ternary == Ternary.ZERO
        return (
            (self.below is None or e.strength < self.below)
            and (self.at_least is None or e.strength >= self.at_least)
            and e.update_count >= self.min_count
        )

    def mask(self, strength: np.ndarray, count: np.ndarray, ternary: np.ndarray) -> np.ndarray:
        """The test over columns (float64 strengths, uint64 counts, int8 ternary codes with
        :data:`NO_TERNARY_CODE` for none): a boolean array, one element per entry."""
        import numpy as np

        ok = np.ones(strength.shape, dtype=bool)
        if self.below is not None:
            ok &= strength < self.below
        if self.at_least is not None:
            ok &= strength >= self.at_least
        if self.min_count > 0:  # counts are unsigned: min_count <= 0 always passes
            ok &= count >= np.uint64(min(self.min_count, 2**64 - 1))
        if self.ternary_zero:
            has = ternary != NO_TERNARY_CODE
            ok = np.where(has, ternary == int(Ternary.ZERO), ok)
        return ok


def select_keys(layer: Mapping[str, Entry], test: StrengthTest) -> list[str]:
    """Keys of ``layer`` whose entries pass ``test``, in the layer's iteration order.

    A layer that implements ``select_keys(test)`` (a lazily read container layer) answers
    from its columns without building an entry per key.
    """
    fast = getattr(layer, "select_keys", None)
    if fast is not None:
        return cast("list[str]", fast(test))
    passes = test.passes
    return [k for k, e in layer.items() if passes(e)]
