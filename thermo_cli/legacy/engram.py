"""The crate's Engram JSON export (``export_*.json``): read it as an import source, write it.

Users archived thermograms with ``export_to_json()``, which consolidated first and then
wrote the hot and cold entries as one ``state`` list (no layer, no timestamps, no
configuration) and an always-empty ``history``. Importing therefore rebuilds what it
can: every entry goes to the hot layer — a key listed a second time is the cold copy and
goes to the cold layer — with ``updated_at`` set to the export's last consolidation, and
the default configuration. The import is logged as one ``Event(kind="import")`` that
keeps everything the export said that has no other home (export time, the file's
SHA-256, the history rows), so nothing in the export is lost.

Writing Engram JSON is :func:`thermo_cli.exchange.export_engram`'s job.
"""

from __future__ import annotations

import hashlib
from typing import Any

from thermo_cli.engine.chain import new_event
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.legacy.jsondoc import MAX_LEGACY_BYTES, Document, join, parse_document
from thermo_cli.model import DeltaType, Entry, Layer, Metadata, now_ns

FORMAT_NAME = "engram-json"
_DELTA_TYPES = {t.legacy_name: t for t in DeltaType}


def load_engram(data: bytes, *, source: str = "<file>", max_bytes: int = MAX_LEGACY_BYTES) -> Thermogram:
    """An Engram export (bytes) → a new Thermogram whose log starts with the import event."""
    doc = parse_document(data, source=source, max_bytes=max_bytes)
    root = doc.obj(doc.root, "$")
    meta = doc.obj(doc.req(root, "metadata", ""), "metadata")

    def meta_time(name: str) -> int:
        return doc.time(doc.req(meta, name, "metadata"), join("metadata", name))

    def meta_uint(name: str) -> int:
        return doc.uint(doc.req(meta, name, "metadata"), join("metadata", name))

    last_consolidation = meta_time("last_consolidation")
    tg = Thermogram(
        name=doc.text(doc.req(root, "name", ""), "name"),
        id=doc.text(doc.req(root, "thermogram_id", ""), "thermogram_id"),
        meta=Metadata(
            created_at_ns=meta_time("thermogram_created_at"),
            last_consolidation_ns=last_consolidation,
            total_deltas=meta_uint("total_deltas"),
            total_consolidations=meta_uint("total_consolidations"),
        ),
    )
    state = doc.arr(doc.req(root, "state", ""), "state")
    entries = [_state_entry(doc, raw, f"state[{i}]", last_consolidation) for i, raw in enumerate(state)]
    for entry, layer in zip(entries, _layers_for(doc, entries), strict=True):
        tg.layers[layer][entry.key] = entry
    history = [_history_row(doc, raw, f"history[{i}]")
               for i, raw in enumerate(doc.arr(doc.req(root, "history", ""), "history"))]
    event = new_event("import", now_ns(), {
        "format": FORMAT_NAME,
        "source_sha256": hashlib.sha256(doc.data).digest(),
        "source_size": len(doc.data),
        "exported_at_ns": meta_time("exported_at"),
        "total_entries": meta_uint("total_entries"),
        "entries": len(state),
        "history": history,
    }, None)
    tg.records.append(event)
    tg.head_hash = event.hash
    tg.dirty_start = tg.log_length  # the import is a consolidation point: nothing is dirty
    tg.layers_modified = True
    return tg


def _layers_for(doc: Document, entries: list[Entry]) -> list[Layer]:
    """Where each listed entry goes: a key listed once is hot; listed n times (hottest
    first, as every exporter wrote them), the first is hot, the last cold, and the ones
    between warm then cool."""
    listed: dict[str, int] = {}
    for e in entries:
        listed[e.key] = listed.get(e.key, 0) + 1
    order = {1: (Layer.HOT,), 2: (Layer.HOT, Layer.COLD), 3: (Layer.HOT, Layer.WARM, Layer.COLD),
             4: tuple(Layer)}
    seen: dict[str, int] = {}
    out = []
    for i, e in enumerate(entries):
        n = listed[e.key]
        if n > 4:
            raise doc.error(f"state[{i}].key", f"key {e.key!r} is listed {n} times (at most once per layer)")
        k = seen.get(e.key, 0)
        seen[e.key] = k + 1
        out.append(order[n][k])
    return out


def _state_entry(doc: Document, value: Any, path: str, updated_at_ns: int) -> Entry:
    e = doc.obj(value, path)
    return Entry(
        key=doc.key(doc.req(e, "key", path), join(path, "key")),
        value=doc.byte_array(doc.req(e, "value", path), join(path, "value")),
        strength=doc.f32(doc.req(e, "strength", path), join(path, "strength")),
        updated_at_ns=updated_at_ns,
        update_count=doc.uint(doc.req(e, "update_count", path), join(path, "update_count")),
        ternary=doc.ternary(e.get("ternary_strength"), join(path, "ternary_strength")),
    )


def _history_row(doc: Document, value: Any, path: str) -> dict[str, Any]:
    """One history row as event data (the crate's export never wrote any, but it could)."""
    h = doc.obj(value, path)
    kind = doc.text(doc.req(h, "delta_type", path), join(path, "delta_type"))
    if kind not in _DELTA_TYPES:
        raise doc.error(join(path, "delta_type"),
                        f"unknown delta type {kind!r} (expected Create, Update, Delete or Merge)")
    tern = doc.ternary(h.get("ternary_strength"), join(path, "ternary_strength"))
    return {
        "ts": doc.time(doc.req(h, "timestamp", path), join(path, "timestamp")),
        "op": _DELTA_TYPES[kind].label,
        "key": doc.text(doc.req(h, "key", path), join(path, "key")),
        "s": doc.f32(doc.req(h, "strength", path), join(path, "strength")),
        "tern": None if tern is None else int(tern),
        "hash": doc.text(doc.req(h, "hash", path), join(path, "hash")),
    }
