"""Export a thermogram to JSON for other tools, and import it back.

Two formats:

**Engram JSON** (``export_engram``): the Rust crate's export document
(``thermogram_id, name, state, history, metadata``), which users archived with and other
tools read. The crate consolidated first and then exported only the hot and cold entries
with an empty history; here ``state`` holds the entries of all four layers (each item
gains ``layer``, ``updated_at`` and, for tensors, ``tensor``) and ``history`` holds every
delta of the log, consolidated or not (each item gains ``id``, ``source``,
``observation_count``, ``prev_hash`` and ``index``), plus ``events`` for the log's
consolidation points and layer operations. Readers of the crate's format ignore the
additions. Values are arrays of byte values as in the crate; times end in ``+00:00``.

**Thermo JSONL** (``export_jsonl`` / ``import_jsonl``): a lossless, line-oriented dump,
one JSON object per line, so it streams and diffs well:

1. ``{"kind": "thermogram", "format": "thermo-jsonl", "version": 1, "meta": {...},
   "log_length": n, "head_hash": ..., "dirty_start": ...}`` — name, id, configuration,
   metadata and extension state;
2. ``{"kind": "entry", "layer": "hot", "key", "value", "strength", "ternary",
   "update_count", "updated_at"}`` for every entry of every layer;
3. ``{"kind": "delta", "index": i, <the delta stream fields>, "prev_hash", "hash",
   "scheme"}`` or ``{"kind": "event", "index": i, "event": kind, "timestamp", "fields",
   "prev_hash", "hash"}`` for every log record, oldest first.

Delta lines use the fields of the JSONL delta stream (:mod:`thermo_cli.formats.jsonl`), so
``grep '"kind":"delta"'`` of a dump is a stream ``thermo apply`` accepts. Values that are
not JSON (bytes in event fields and extension state, non-finite floats) use a tagged
form: ``{"$b64": ...}``, ``{"$float": "nan"}``, and ``{"$map": {...}}`` escapes a map
whose only key starts with ``$``. Importing a dump rebuilds the same layers and the same
log; every record's hash is recomputed and must equal the one in the dump, so the new
file's chain ends in the same head hash and a tampered dump is refused.

The library never prints: writers take a binary stream, readers a binary stream or
iterable of byte chunks.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

import orjson

from thermo_cli.codec.fastrecords import seal
from thermo_cli.codec.records import is_hex_hash
from thermo_cli.codec.timestamps import format_rfc3339, format_z
from thermo_cli.container.metablock import meta_fields_from_map, meta_to_map
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import CorruptError, FormatError, ThermoError, ValidationError, quote
from thermo_cli.formats import jsonl
from thermo_cli.model import (
    Delta,
    Entry,
    Event,
    HashScheme,
    Layer,
    LogRecord,
    Ternary,
    check_key,
)

JSONL_FORMAT = "thermo-jsonl"
JSONL_VERSION = 1

_DUMPS = orjson.dumps
_DELTA_EXTRA = frozenset({"kind", "index", "prev_hash", "hash", "scheme"})


# --- tagged JSON for CBOR values ---------------------------------------------------------------


def to_tagged(value: Any) -> Any:
    """A CBOR-decodable value (bytes, any float, nested maps) as plain JSON, losslessly."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return {"$int": str(value)}
    if isinstance(value, Mapping):  # a thermogram's extras are a read-only view
        body = {k: to_tagged(v) for k, v in value.items()}
        if len(body) == 1 and next(iter(body)).startswith("$"):
            return {"$map": body}
        return body
    if isinstance(value, list | tuple):
        return [to_tagged(v) for v in value]
    return value


def _hex_digests(value: Any) -> Any:
    """An event's fields for the log view: bytes (digests, roots) as lowercase hex, the one
    spelling hashes have in every other command's output; the rest as :func:`to_tagged`."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {k: _hex_digests(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hex_digests(v) for v in value]
    return to_tagged(value)


def from_tagged(value: Any, what: str = "value") -> Any:
    """Inverse of :func:`to_tagged`."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$b64":
                return jsonl._b64(inner, what)
            if tag == "$float":
                if inner not in ("nan", "inf", "-inf"):
                    raise ValidationError(f'{what}: "$float" must be "nan", "inf" or "-inf"')
                return float(inner)
            if tag == "$int":
                if not isinstance(inner, str) or not inner.lstrip("-").isdigit():
                    raise ValidationError(f'{what}: "$int" must be decimal text')
                return int(inner)
            if tag == "$map":
                if not isinstance(inner, dict):
                    raise ValidationError(f'{what}: "$map" must hold an object')
                return {k: from_tagged(v, f"{what}.{k}") for k, v in inner.items()}
        return {k: from_tagged(v, f"{what}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [from_tagged(v, what) for v in value]
    return value


# --- shared pieces ---------------------------------------------------------------------------


def _layer_items(tg: Thermogram) -> Iterator[tuple[Layer, Entry]]:
    """Every entry, layer by layer (hot → cold), keys in byte order: stable output."""
    for layer in Layer:
        mapping = tg.layers[layer]
        for key in sorted(mapping.keys(), key=lambda k: k.encode("utf-8")):
            yield layer, mapping[key]


def _ternary_name(t: Ternary | None) -> str | None:
    return None if t is None else t.legacy_name


def entry_count(tg: Thermogram) -> int:
    return sum(len(tg.layers[layer]) for layer in Layer)


# --- Engram JSON ------------------------------------------------------------------------------


def export_engram(
    tg: Thermogram,
    records: Iterable[LogRecord],
    out: IO[bytes],
    *,
    exported_at_ns: int | None = None,
    start_index: int = 0,
    on_item: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Write the Engram JSON document of ``tg`` (all layers) with ``records`` as history.

    Streams: one state or history item is encoded at a time, so memory stays bounded by
    the largest value. ``start_index`` is the log index of the first record given.
    Returns counts (entries, deltas, events) for the caller's summary.
    """
    import numpy as np

    exported = tg.now_ns() if exported_at_ns is None else exported_at_ns
    write = out.write
    option = orjson.OPT_SERIALIZE_NUMPY
    write(b'{"thermogram_id":' + _DUMPS(tg.id) + b',"name":' + _DUMPS(tg.name) + b',"state":[')
    n_entries = 0
    for layer, e in _layer_items(tg):
        item: dict[str, Any] = {
            "key": e.key,
            "value": np.frombuffer(e.value, dtype=np.uint8),
            "strength": e.strength,
            "ternary_strength": _ternary_name(e.ternary),
            "update_count": e.update_count,
            "layer": layer.label,
            "updated_at": format_rfc3339(e.updated_at_ns),
        }
        if e.tensor is not None:
            item["tensor"] = _tensor_doc(e.tensor)
        write((b"\n" if n_entries == 0 else b",\n") + _DUMPS(item, option=option))
        n_entries += 1
        if on_item is not None:
            on_item()
    write(b'],"history":[')
    n_deltas = 0
    events: list[dict[str, Any]] = []
    total_deltas = 0
    for index, rec in enumerate(records, start_index):
        if isinstance(rec, Event):
            events.append(
                {
                    "index": index,
                    "timestamp": format_rfc3339(rec.timestamp_ns),
                    "kind": rec.kind,
                    "fields": to_tagged(rec.fields),
                    "hash": rec.hash,
                    "prev_hash": rec.prev_hash,
                }
            )
            continue
        hist = {
            "timestamp": format_rfc3339(rec.timestamp_ns),
            "delta_type": rec.delta_type.legacy_name,
            "key": rec.key,
            "strength": rec.strength,
            "ternary_strength": _ternary_name(rec.ternary),
            "hash": rec.hash,
            "id": rec.id,
            "source": rec.source,
            "observation_count": rec.observation_count,
            "prev_hash": rec.prev_hash,
            "index": index,
        }
        write((b"\n" if n_deltas == 0 else b",\n") + _DUMPS(hist))
        n_deltas += 1
        total_deltas += 1
        if on_item is not None:
            on_item()
    write(b'],"events":[')
    for i, ev in enumerate(events):
        write((b"\n" if i == 0 else b",\n") + _DUMPS(ev))
    meta = {
        "exported_at": format_rfc3339(exported),
        "thermogram_created_at": format_rfc3339(tg.meta.created_at_ns),
        "last_consolidation": format_rfc3339(tg.meta.last_consolidation_ns),
        "total_deltas": tg.meta.total_deltas,
        "total_consolidations": tg.meta.total_consolidations,
        "total_entries": n_entries,
    }
    write(b'],"metadata":' + _DUMPS(meta) + b"}\n")
    return {"entries": n_entries, "deltas": n_deltas, "events": len(events)}


def _tensor_doc(spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"dtype": spec.dtype, "shape": list(spec.shape), "encoding": spec.encoding}
    if spec.encoding != "raw":
        doc["scales"] = base64.b64encode(spec.scales or b"").decode("ascii")
        doc["per_row"] = spec.per_row
        doc["method"] = spec.method
    return doc


# --- thermo JSONL: export --------------------------------------------------------------------


def header_doc(tg: Thermogram, *, log_length: int, head_hash: str | None) -> dict[str, Any]:
    return {
        "kind": "thermogram",
        "format": JSONL_FORMAT,
        "version": JSONL_VERSION,
        "meta": to_tagged(meta_to_map(tg)),
        "log_length": log_length,
        "head_hash": head_hash,
        "dirty_start": tg.dirty_start,
    }


def entry_doc(layer: Layer, e: Entry) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "entry",
        "layer": layer.label,
        "key": e.key,
        "value": jsonl.encode_value(e.value, e.tensor),
        "strength": e.strength,
        "update_count": e.update_count,
        "updated_at": format_z(e.updated_at_ns),
    }
    if e.ternary is not None:
        doc["ternary"] = int(e.ternary)
    return doc


def record_doc(
    index: int, rec: LogRecord, *, dirty_start: int | None = None, values: bool = True
) -> dict[str, Any]:
    """The one JSON shape of a log record: dump lines, ``thermo log --json``, anything else.

    Delta fields are those of the delta stream (absent optional fields are left out),
    plus ``kind``, ``index``, the hashes and the hash ``scheme``. Given ``dirty_start``
    (the log view) a delta also says whether it is ``consolidated`` and its value
    ``size``, and an event's byte fields are hex; those are views of the file, not part
    of a dump line (which keeps ``{"$b64": …}`` so it reads back losslessly).
    ``values=False`` leaves the value out.
    """
    if isinstance(rec, Event):
        return {
            "kind": "event",
            "index": index,
            "event": rec.kind,
            "timestamp": format_z(rec.timestamp_ns),
            "fields": to_tagged(rec.fields) if dirty_start is None else _hex_digests(rec.fields),
            "prev_hash": rec.prev_hash,
            "hash": rec.hash,
        }
    doc = jsonl.delta_to_obj(rec)
    if "meta" in doc:
        doc["meta"] = to_tagged(doc["meta"])
    if rec.ternary is not None and "strength" not in doc:
        doc["strength"] = rec.strength
    if not values:
        doc.pop("value", None)
    doc.update(
        {
            "kind": "delta",
            "index": index,
            "prev_hash": rec.prev_hash,
            "hash": rec.hash,
            "scheme": "legacy" if rec.scheme is HashScheme.LEGACY else "v2",
        }
    )
    if dirty_start is not None:
        doc["consolidated"] = index < dirty_start
        doc["size"] = len(rec.value)
    return doc


def export_jsonl(
    tg: Thermogram,
    records: Iterable[LogRecord],
    out: IO[bytes],
    *,
    log_length: int,
    head_hash: str | None,
    start_index: int = 0,
    on_item: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Write the lossless JSONL dump: header, every entry, every log record."""
    write = out.write
    write(_DUMPS(header_doc(tg, log_length=log_length, head_hash=head_hash)) + b"\n")
    n_entries = 0
    for layer, e in _layer_items(tg):
        write(_DUMPS(entry_doc(layer, e)) + b"\n")
        n_entries += 1
        if on_item is not None:
            on_item()
    n_deltas = n_events = 0
    for index, rec in enumerate(records, start_index):
        write(_DUMPS(record_doc(index, rec)) + b"\n")
        if isinstance(rec, Event):
            n_events += 1
        else:
            n_deltas += 1
        if on_item is not None:
            on_item()
    return {"entries": n_entries, "deltas": n_deltas, "events": n_events}


# --- thermo JSONL: import --------------------------------------------------------------------


def is_dump_header(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "thermogram"


def import_dump(
    lines: Iterable[tuple[int, bytes]],
    *,
    limits: jsonl.Limits | None = None,
    on_item: Callable[[], None] | None = None,
) -> Thermogram:
    """Rebuild a thermogram from a dump's lines (``jsonl.iter_lines`` output).

    Every record is re-sealed and its hash compared with the dump's; links are checked
    as the log is rebuilt. Errors name the line.
    """
    it = iter(lines)
    first = next(it, None)
    if first is None:
        raise FormatError("empty input: expected a thermo JSONL export")
    lineno, line = first
    header = jsonl.load_line(lineno, line)
    if not is_dump_header(header):
        raise jsonl.LineError(lineno, 'expected the export header ({"kind": "thermogram", ...})')
    tg = _thermogram_from_header(lineno, header)
    parser = jsonl.DeltaParser(limits=limits, extra_fields=_DELTA_EXTRA, lenient=True)
    state = _DumpState(tg, _dirty_start(lineno, header))
    for lineno, line in it:
        obj = jsonl.load_line(lineno, line)
        kind = obj.get("kind") if isinstance(obj, dict) else None
        try:
            if kind == "entry":
                state.add_entry(obj)
            elif kind == "delta":
                state.add_record(obj.get("index"), _delta_from_dump(parser, lineno, obj))
            elif kind == "event":
                state.add_record(obj.get("index"), _event_from_dump(obj))
            else:
                raise ValidationError(f'"kind": expected "entry", "delta" or "event", got {quote(kind)}')
        except jsonl.LineError:
            raise
        except ThermoError as exc:
            raise jsonl.LineError(lineno, str(exc)) from None
        if on_item is not None:
            on_item()
    state.finish(header)
    return tg


def _thermogram_from_header(lineno: int, header: dict[str, Any]) -> Thermogram:
    if header.get("format") != JSONL_FORMAT:
        raise jsonl.LineError(
            lineno, f'"format": expected "{JSONL_FORMAT}", got {quote(header.get("format"))}'
        )
    version = header.get("version")
    if version != JSONL_VERSION:
        raise jsonl.LineError(
            lineno, f"version {quote(version)} is not supported (this reader knows version {JSONL_VERSION})"
        )
    try:
        fields = meta_fields_from_map(from_tagged(header.get("meta"), "meta"), "meta")
    except (CorruptError, ValidationError) as exc:
        raise jsonl.LineError(lineno, str(exc)) from None
    return Thermogram(**fields)


def _dirty_start(lineno: int, header: dict[str, Any]) -> int:
    dirty_start = header.get("dirty_start", 0)
    if type(dirty_start) is not int or dirty_start < 0:
        raise jsonl.LineError(lineno, "dirty_start: expected an unsigned integer")
    return dirty_start


def _delta_from_dump(parser: jsonl.DeltaParser, lineno: int, obj: dict[str, Any]) -> Delta:
    body = dict(obj)
    if "meta" in body:
        body["meta"] = from_tagged(body["meta"], "meta")
    d = parser.from_obj(lineno, body)
    scheme = obj.get("scheme", "v2")
    if scheme not in ("v2", "legacy"):
        raise ValidationError(f'scheme: expected "v2" or "legacy", got {quote(scheme)}')
    d.scheme = HashScheme.LEGACY if scheme == "legacy" else HashScheme.V2
    d.prev_hash = _hash_field(obj.get("prev_hash"), "prev_hash", nullable=True)
    d.hash = _hash_field(obj.get("hash"), "hash", nullable=False)
    return d


def _event_from_dump(obj: dict[str, Any]) -> Event:
    kind = obj.get("event")
    if not isinstance(kind, str) or not kind:
        raise ValidationError("event: expected the event kind as text")
    fields = from_tagged(obj.get("fields", {}), "fields")
    if not isinstance(fields, dict):
        raise ValidationError("fields: expected an object")
    ts = obj.get("timestamp")
    if ts is None:
        raise ValidationError('missing field "timestamp"')
    return Event(
        kind=kind,
        timestamp_ns=jsonl.parse_timestamp(ts),
        fields=fields,
        prev_hash=_hash_field(obj.get("prev_hash"), "prev_hash", nullable=True),
        hash=_hash_field(obj.get("hash"), "hash", nullable=False),
    )


def _hash_field(value: Any, name: str, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not is_hex_hash(value):
        raise ValidationError(f"{name}: expected 64 lower-case hex digits, got {quote(value)}")
    return value


class _DumpState:
    """Accumulates a dump's entries and records, checking order, hashes and links.

    The records are collected here and handed to the thermogram whole at the end
    (:meth:`Thermogram.restore_log`), once the dump is known to be complete.
    """

    def __init__(self, tg: Thermogram, dirty_start: int) -> None:
        self.tg = tg
        self.dirty_start = dirty_start
        self.records: list[LogRecord] = []
        self.head_hash: str | None = None
        self.seen_record = False

    def add_entry(self, obj: dict[str, Any]) -> None:
        if self.seen_record:
            raise ValidationError("entry lines must come before the log records")
        allowed = {"kind", "layer", "key", "value", "strength", "ternary", "update_count", "updated_at"}
        extra = obj.keys() - allowed
        if extra:
            raise ValidationError(f"unknown field(s) {sorted(extra)} in an entry")
        layer = Layer.parse(obj["layer"] if isinstance(obj.get("layer"), str) else "")
        key = check_key(obj.get("key"))
        if key in self.tg.layers[layer]:
            raise ValidationError(f"entry {quote(key)} appears twice in layer {layer.label}")
        value, tensor = jsonl.decode_value(obj.get("value"))
        tern_raw = obj.get("ternary")
        ternary = None if tern_raw is None else Ternary.coerce(tern_raw)
        strength = obj.get("strength")
        if (
            isinstance(strength, bool)
            or not isinstance(strength, int | float)
            or not math.isfinite(strength)
            or not -1.0 <= strength <= 1.0
        ):
            raise ValidationError(f"strength: expected a number in [-1, 1], got {quote(strength)}")
        count = obj.get("update_count", 1)
        if type(count) is not int or count < 0:
            raise ValidationError(f"update_count: expected an unsigned integer, got {quote(count)}")
        updated = jsonl.parse_timestamp(obj.get("updated_at"), "updated_at")
        self.tg.put_entry(
            layer,
            Entry(
                key=key,
                value=value,
                strength=float(strength),
                updated_at_ns=updated,
                update_count=count,
                ternary=ternary,
                tensor=tensor,
            ),
        )

    def add_record(self, index: Any, rec: LogRecord) -> None:
        self.seen_record = True
        expected = len(self.records)
        if index is not None and index != expected:
            raise ValidationError(f"index: expected record {expected}, got {quote(index)}")
        if rec.prev_hash != self.head_hash:
            raise ValidationError(f"prev_hash does not link to the previous record (log index {expected})")
        claimed = rec.hash
        rec.hash = None
        seal(rec)
        if rec.hash != claimed:
            raise ValidationError(
                f"hash does not match the record's fields (log index {expected}): the dump was altered"
            )
        self.records.append(rec)
        self.head_hash = rec.hash

    def finish(self, header: dict[str, Any]) -> None:
        found = len(self.records)
        want_len = header.get("log_length")
        if want_len is not None and want_len != found:
            raise TruncatedDumpError(f"export promises {want_len} log records, found {found} (truncated?)")
        want_head = header.get("head_hash")
        if want_head != self.head_hash:
            raise TruncatedDumpError("export's head_hash does not match its last record")
        if self.dirty_start > found:
            raise CorruptError("dirty_start lies beyond the end of the log")
        self.tg.restore_log(self.records, dirty_start=self.dirty_start)


class TruncatedDumpError(FormatError):
    """The dump ends before the records its header promises."""

    code = "truncated"
