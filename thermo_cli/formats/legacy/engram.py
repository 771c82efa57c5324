"""Read the crate's Engram JSON export (``export_*.json``) as an import source.

Users archived thermograms with ``export_to_json()``, which consolidated first and then
wrote the hot and cold entries as one ``state`` list (no layer, no timestamps, no
configuration) and an always-empty ``history``. Importing therefore rebuilds what it
can: every entry goes to the hot layer — a key listed a second time is the cold copy and
goes to the cold layer — with ``updated_at`` set to the export's last consolidation, and
the default configuration. Exports written by thermo itself (all four layers; items with
``layer``, ``updated_at`` and maybe ``tensor``) are read with those members.

The import is logged as one ``Event(kind="import")`` that keeps everything the export
said that has no other home (export time, the file's SHA-256, the history rows), so
nothing in the export is lost. Writing Engram JSON is
:func:`thermo_cli.formats.dump.export_engram`'s job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import quote
from thermo_cli.formats.legacy.jsondoc import MAX_LEGACY_BYTES, Document, join, parse_document
from thermo_cli.model import Entry, Layer, Metadata, TensorSpec

FORMAT_NAME = "engram-json"
_LAYERS = {layer.label: layer for layer in Layer}


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
    for i, ((entry, given), layer) in enumerate(zip(entries, _layers_for(doc, entries), strict=True)):
        target = given if given is not None else layer
        if entry.key in tg.layers[target]:
            raise doc.error(f"state[{i}].key", f"key {quote(entry.key)} is listed twice for one layer")
        tg.put_entry(target, entry)
    history = [
        _history_row(doc, raw, f"history[{i}]")
        for i, raw in enumerate(doc.arr(doc.req(root, "history", ""), "history"))
    ]
    events = doc.custom(root.get("events"), "events")
    tg.append_event(
        "import",
        {
            "format": FORMAT_NAME,
            "source_sha256": hashlib.sha256(doc.data).digest(),
            "source_size": len(doc.data),
            "exported_at_ns": meta_time("exported_at"),
            "total_entries": meta_uint("total_entries"),
            "entries": len(state),
            "history": history,
            "events": events,
        },
        bind=True,
    )
    tg.mark_layers_changed()  # a new thermogram no file holds: written whole, even with no entries
    return tg


def _layers_for(doc: Document, entries: list[tuple[Entry, Layer | None]]) -> list[Layer]:
    """Where each entry without a ``layer`` member goes (the crate's export has none).

    A key listed once is hot. Listed n times (hottest first, as the crate wrote hot then
    cold), the first copy is hot, the last cold, and any between warm then cool.
    """
    listed: dict[str, int] = {}
    for e, given in entries:
        if given is None:
            listed[e.key] = listed.get(e.key, 0) + 1
    order = {
        1: (Layer.HOT,),
        2: (Layer.HOT, Layer.COLD),
        3: (Layer.HOT, Layer.WARM, Layer.COLD),
        4: tuple(Layer),
    }
    seen: dict[str, int] = {}
    out = []
    for i, (e, given) in enumerate(entries):
        if given is not None:
            out.append(given)
            continue
        n = listed[e.key]
        if n > 4:
            raise doc.error(
                f"state[{i}].key", f"key {quote(e.key)} is listed {n} times (at most once per layer)"
            )
        k = seen.get(e.key, 0)
        seen[e.key] = k + 1
        out.append(order[n][k])
    return out


def _state_entry(doc: Document, value: Any, path: str, default_time: int) -> tuple[Entry, Layer | None]:
    """One ``state`` item; ``layer``, ``updated_at`` and ``tensor`` are read when present
    (thermo's own exports add them; the crate's do not)."""
    e = doc.obj(value, path)
    layer = None
    if e.get("layer") is not None:
        name = doc.text(e["layer"], join(path, "layer"))
        if name not in _LAYERS:
            raise doc.error(join(path, "layer"), f"expected hot, warm, cool or cold, got {quote(name)}")
        layer = _LAYERS[name]
    updated = e.get("updated_at")
    entry = Entry(
        key=doc.key(doc.req(e, "key", path), join(path, "key")),
        value=doc.byte_array(doc.req(e, "value", path), join(path, "value")),
        strength=doc.f32(doc.req(e, "strength", path), join(path, "strength")),
        updated_at_ns=default_time if updated is None else doc.time(updated, join(path, "updated_at")),
        update_count=doc.uint(doc.req(e, "update_count", path), join(path, "update_count")),
        ternary=doc.ternary(e.get("ternary_strength"), join(path, "ternary_strength")),
        tensor=_tensor(doc, e.get("tensor"), join(path, "tensor")),
    )
    return entry, layer


def _tensor(doc: Document, value: Any, path: str) -> TensorSpec | None:
    if value is None:
        return None
    t = doc.obj(value, path)
    sp = join(path, "shape")
    shape = tuple(doc.uint(x, f"{sp}[{i}]") for i, x in enumerate(doc.arr(doc.req(t, "shape", path), sp)))
    encoding = doc.text(doc.req(t, "encoding", path), join(path, "encoding"))
    if encoding not in ("raw", "ternary"):
        raise doc.error(join(path, "encoding"), f"expected raw or ternary, got {quote(encoding)}")
    scales = None
    if t.get("scales") is not None:
        try:
            scales = base64.b64decode(doc.text(t["scales"], join(path, "scales")), validate=True)
        except binascii.Error:
            raise doc.error(join(path, "scales"), "not valid base64") from None
    per_row = t.get("per_row", False)
    return TensorSpec(
        dtype=doc.text(doc.req(t, "dtype", path), join(path, "dtype")),
        shape=shape,
        encoding=encoding,
        scales=scales,
        per_row=doc.boolean(per_row, join(path, "per_row")),
        method=doc.opt_text(t.get("method"), join(path, "method")),
    )


def _history_row(doc: Document, value: Any, path: str) -> Any:
    """One history row, checked for the crate's fields and kept whole as event data.

    A history row has no value, so it cannot be replayed as a delta; it is kept
    verbatim (extra members included) so nothing the export said is lost.
    """
    h = doc.obj(value, path)
    doc.delta_type(doc.req(h, "delta_type", path), join(path, "delta_type"))
    doc.ternary(h.get("ternary_strength"), join(path, "ternary_strength"))
    doc.time(doc.req(h, "timestamp", path), join(path, "timestamp"))
    doc.text(doc.req(h, "key", path), join(path, "key"))
    doc.f32(doc.req(h, "strength", path), join(path, "strength"))
    doc.opt_text(h.get("hash"), join(path, "hash"))
    return doc.custom(h, path)
