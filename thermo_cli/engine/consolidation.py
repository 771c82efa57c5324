"""Folding the uncommitted deltas into the hot layer.

The crate's consolidation with the three corrections of ENGINE.md:

* a Merge sets the value it carries and creates an absent key, like a Create — before,
  a read returned the Merge's value until consolidation and the old value after it, and
  the spiking network's Merge deltas for new connections never landed;
* a Delete removes the key from every layer, not only hot — before, a deleted key that
  also sat in a colder layer came back after consolidation;
* nothing is dropped from the log (the Thermogram records a consolidation event instead
  of emptying its chain).

So a key reads the same before and after consolidation unless it was pruned.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field

from thermo_cli.config.engine import PlasticityRule
from thermo_cli.engine.plasticity import (
    apply_update,
    f32,
    majority_vote,
    observation_confidence,
    quantize,
    ternary_update,
)
from thermo_cli.engine.select import StrengthTest, select_keys
from thermo_cli.model import NS_PER_SECOND, Delta, DeltaType, Entry, Layer, Ternary

_CREATE, _UPDATE, _DELETE, _MERGE = DeltaType.CREATE, DeltaType.UPDATE, DeltaType.DELETE, DeltaType.MERGE


@dataclass(slots=True)
class ConsolidationReport:
    """What one consolidation did.

    ``processed`` dirty deltas were folded: ``created`` new hot entries, ``updated`` and
    ``merged`` existing ones, ``deleted`` keys removed; then ``pruned`` weak hot entries
    were dropped and ``crystallized`` hot entries moved to cold (``crystal_merged`` of them
    into an existing cold entry). ``log_size``/``log_root`` identify the log up to the
    consolidation point and ``state_digest`` the layer state after it.
    """

    processed: int = 0
    created: int = 0
    updated: int = 0
    merged: int = 0
    deleted: int = 0
    pruned: int = 0
    crystallized: int = 0
    crystal_merged: int = 0
    entries_after: int = 0
    timestamp_ns: int = 0
    log_size: int = 0
    log_root: bytes = b""
    state_digest: bytes = b""
    pruned_keys: list[str] = field(default_factory=list, repr=False)

    @property
    def promoted(self) -> int:
        """Entries that left hot for cold (new plus merged)."""
        return self.crystallized + self.crystal_merged


def _whole_seconds(later_ns: int, earlier_ns: int) -> int:
    """Signed whole seconds between two instants, truncated toward zero (chrono's num_seconds)."""
    diff = later_ns - earlier_ns
    return diff // NS_PER_SECOND if diff >= 0 else -((-diff) // NS_PER_SECOND)


def _current_ternary(entry: Entry) -> Ternary:
    return entry.ternary if entry.ternary is not None else quantize(entry.strength)


def _new_entry(d: Delta) -> Entry:
    return Entry(
        key=d.key,
        value=d.value,
        strength=d.strength,
        updated_at_ns=d.timestamp_ns,
        update_count=1,
        ternary=d.ternary,
        tensor=d.tensor,
    )


def fold(
    deltas: Iterable[Delta],
    layers: dict[Layer, MutableMapping[str, Entry]],
    rule: PlasticityRule,
    report: ConsolidationReport,
) -> None:
    """Apply deltas, oldest first, to the hot layer (colder layers only lose deleted keys)."""
    hot = layers[Layer.HOT]
    colder = [layers[Layer.WARM], layers[Layer.COOL], layers[Layer.COLD]]
    for d in deltas:
        report.processed += 1
        op = d.delta_type
        key = d.key
        if op is _DELETE:
            found = hot.pop(key, None) is not None
            for mapping in colder:
                if mapping.pop(key, None) is not None:
                    found = True
            report.deleted += found
            continue
        entry = hot.get(key)
        if entry is None:
            hot[key] = _new_entry(d)
            report.created += 1
            continue
        observed = d.ternary
        if observed is not None:
            current = _current_ternary(entry)
            if op is _MERGE:
                new = majority_vote((current, observed))
            else:
                new = ternary_update(rule, current, observed, observation_confidence(d.observation_count))
            entry.ternary = new
            entry.strength = float(new)
        else:
            dt = _whole_seconds(d.timestamp_ns, entry.updated_at_ns)
            entry.strength = apply_update(rule, entry.strength, d.strength, dt)
            entry.ternary = None
        entry.value = d.value
        entry.tensor = d.tensor
        entry.updated_at_ns = d.timestamp_ns
        entry.update_count += 1
        if op is _MERGE:
            report.merged += 1
        else:
            report.updated += 1


def prune_hot(hot: MutableMapping[str, Entry], rule: PlasticityRule) -> list[str]:
    """Drop hot entries the rule calls weak: ternary ones at zero, others below prune_threshold."""
    threshold = f32(rule.prune_threshold)
    weak = select_keys(hot, StrengthTest(below=threshold, ternary_zero=True))
    for key in weak:
        del hot[key]
    return weak
