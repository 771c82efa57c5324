"""Verify a crate save file's dirty chain with the crate's own recipe, and say what it misses.

The crate's ``verify()``: the first delta has no ``prev_hash``; every hash recomputes;
every ``prev_hash`` is the previous delta's hash; ``head_hash``, when not null, is the
last hash. The hash is over the text of the timestamp as chrono's ``to_rfc3339()`` writes
it, which we rebuild from the integer nanoseconds (so files whose timestamps another tool
re-spelled still verify, as they did in the crate).

What the recipe does not cover — ternary strength, observation count, custom metadata,
every layer entry, the configuration, and the tail of the chain when ``head_hash`` is
null — goes into ``report.notes`` instead of being claimed as checked.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from thermo_cli.codec.records import legacy_delta_hash
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.formats.legacy.jsondoc import MAX_LEGACY_BYTES
from thermo_cli.formats.legacy.reader import load_legacy
from thermo_cli.integrity.report import VerifyReport
from thermo_cli.model import Delta, Event, HashScheme

NOTE_UNCOVERED_FIELDS = (
    "the legacy delta hash does not cover ternary_strength, observation_count or custom metadata"
)
NOTE_UNCOVERED_LAYERS = "no hash covers the {n} layer entries (hot/warm/cool/cold) or the configuration"


def uncovered_layers_note(entries: int) -> str:
    """The note that the crate's hashes leave the layers and configuration open, worded for
    the file at hand (a file with no entries still has an unhashed configuration)."""
    if entries == 0:
        return "no hash covers the configuration (the file holds no layer entries)"
    if entries == 1:
        return "no hash covers the 1 layer entry (hot/warm/cool/cold) or the configuration"
    return NOTE_UNCOVERED_LAYERS.format(n=entries)


NOTE_ENGRAM = (
    "an Engram export carries no hash chain (the crate exported no history): its content was read and "
    "checked for shape only"
)
NOTE_NULL_HEAD = (
    "head_hash is null: the crate skips the head check, so deltas removed from the end of the chain "
    "cannot be detected"
)


def legacy_hash(d: Delta) -> str:
    """The crate's delta hash (lower-case hex SHA-256 of the concatenated fields).

    One recipe for the whole package: :func:`thermo_cli.codec.records.legacy_delta_hash`, which
    formats the timestamp as chrono's ``to_rfc3339()`` does (the same text as
    :func:`thermo_cli.codec.timestamps.format_rfc3339` over years 0001..9999).
    """
    return legacy_delta_hash(d)


@dataclass(frozen=True, slots=True)
class ChainResult:
    """Outcome of :func:`check_chain`: counts of deltas passing each check, first fault."""

    length: int
    hashes_ok: int
    links_ok: int
    head_checked: bool
    head_ok: bool
    first_bad: int | None = None
    check: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad is None and self.head_ok


def check_chain(deltas: Sequence[Delta], head_hash: str | None) -> ChainResult:
    """Run the crate's chain checks over every delta; the first fault is the lowest index.

    At one index a bad hash is reported before a bad link (the delta itself was edited).
    A null ``head_hash`` skips the head check, as in the crate.
    """
    first: tuple[int, str, str] | None = None
    hashes_ok = links_ok = 0
    prev: str | None = None
    for i, d in enumerate(deltas):
        try:
            good_hash = legacy_hash(d) == d.hash
        except (ValueError, OSError, UnicodeEncodeError, struct.error, OverflowError):
            good_hash = False
        if good_hash:
            hashes_ok += 1
        elif first is None:
            first = (
                i,
                "legacy hashes",
                "hash mismatch: the stored hash is not the crate's hash of "
                "this delta's fields (id, type, key, value, timestamp, source, strength, prev_hash)",
            )
        if d.prev_hash == prev:
            links_ok += 1
        elif first is None:
            reason = (
                "the first delta has a prev_hash"
                if i == 0
                else "prev_hash does not link to the previous delta's hash (a delta was removed, "
                "inserted or reordered)"
            )
            first = (i, "legacy links", reason)
        prev = d.hash
    head_checked = head_hash is not None
    head_ok = True
    if head_checked:
        head_ok = bool(deltas) and head_hash == deltas[-1].hash
    if first is not None:
        return ChainResult(len(deltas), hashes_ok, links_ok, head_checked, head_ok, *first)
    if not head_ok:
        reason = (
            "head_hash is set but the chain is empty"
            if not deltas
            else "head_hash does not match the last delta's hash (deltas were removed from the end, "
            "or the head was edited)"
        )
        return ChainResult(
            len(deltas),
            hashes_ok,
            links_ok,
            head_checked,
            head_ok,
            len(deltas) - 1 if deltas else None,
            "legacy head",
            reason,
        )
    return ChainResult(len(deltas), hashes_ok, links_ok, head_checked, head_ok)


def verify_legacy(
    source: bytes | Thermogram, *, path: str = "<file>", max_bytes: int = MAX_LEGACY_BYTES
) -> VerifyReport:
    """Verify a crate save file (its bytes, or the Thermogram :func:`load_legacy` made of it).

    A malformed file raises LegacyFormatError; a well-formed file with a broken chain
    gives a report whose ``failure`` names the first bad index and the reason. A
    thermogram imported from an Engram export (which carries no chain) gets a report
    that says so.
    """
    tg = source if isinstance(source, Thermogram) else load_legacy(source, source=path, max_bytes=max_bytes)
    entries = sum(len(layer) for layer in tg.layers.values())
    if _engram_import(tg):
        report = VerifyReport(path=path, format="Engram export (Rust crate JSON)", records=0)
        report.add("structure", True, entries, f"{entries} entries read")
        report.notes.append(NOTE_ENGRAM)
        return report
    info = tg.extras.get("legacy", {})
    file_head = info.get("head_hash", tg.head_hash)
    deltas = [r for r in tg.records if isinstance(r, Delta) and r.scheme is HashScheme.LEGACY]
    report = VerifyReport(
        path=path,
        format=f"legacy {info.get('version', '?')} (Rust crate JSON)",
        head_hash=file_head,
        records=len(deltas),
    )
    result = check_chain(deltas, file_head)
    _add_checks(report, result, deltas)
    report.notes.append(NOTE_UNCOVERED_FIELDS)
    report.notes.append(uncovered_layers_note(entries))
    if file_head is None and deltas:
        report.notes.append(NOTE_NULL_HEAD)
    return report


def _engram_import(tg: Thermogram) -> bool:
    first = tg.records[0] if tg.records else None
    return isinstance(first, Event) and first.kind == "import" and first.fields.get("format") == "engram-json"


def _add_checks(report: VerifyReport, result: ChainResult, deltas: Sequence[Delta]) -> None:
    n = result.length
    report.add(
        "legacy hashes",
        result.hashes_ok == n,
        result.hashes_ok,
        f"{result.hashes_ok} of {n} delta hashes recompute",
    )
    report.add(
        "legacy links",
        result.links_ok == n,
        result.links_ok,
        f"{result.links_ok} of {n} prev_hash links match",
    )
    if result.head_checked:
        report.add(
            "legacy head",
            result.head_ok,
            1 if result.head_ok else 0,
            "head_hash is the last delta's hash" if result.head_ok else "head_hash mismatch",
        )
    else:
        report.add("legacy head", True, 0, "not checked: head_hash is null")
    if result.ok:
        report.add("legacy chain", True, n, f"{n} deltas OK")
    if result.check:
        bad = result.first_bad
        key = deltas[bad].key if bad is not None and 0 <= bad < len(deltas) else None
        report.fail(result.check, result.reason, index=bad, key=key)
