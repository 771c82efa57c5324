"""Generate or check the golden and broken test vectors of the .thermo container format.

    python format/make_vectors.py           # check every vector (exit 1 on a mismatch)
    python format/make_vectors.py --write   # regenerate format/vectors/*.thermo and *.json

Golden vectors (``format/vectors/<name>.thermo``) sit beside ``<name>.json``: the decoded
content a reader must produce (see ``describe``). Broken vectors
(``format/vectors/broken/<name>.thermo``) sit beside ``<name>.json`` naming the error
``code`` (thermo_cli.errors) a reader must raise and what is wrong. Everything is built
from fixed ids, times and a fixed file id, so regeneration is reproducible; the bytes of
zstd frames can differ between zstd releases, which is why checking compares decoded
content, and byte identity is only checked with the zstd version recorded in
``format/vectors/index.json``. ``format/vectors/ternary/`` belongs to the ternary vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import zstandard

from thermo_cli import store
from thermo_cli.codec import records
from thermo_cli.config.engine import ConsolidationPolicy, PlasticityRule, ThermalConfig
from thermo_cli.container import chunks as ck
from thermo_cli.container.layout import (
    COMMIT_HEADER_SIZE,
    FOOTER_SIZE,
    MAGIC,
    pack_commit_header,
    pack_footer,
)
from thermo_cli.container.reader import Reader
from thermo_cli.container.writer import write_full
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import IntegrityError, ThermoError
from thermo_cli.model import Delta, DeltaType, Entry, Event, Layer, Metadata, TensorSpec, Ternary

HERE = Path(__file__).resolve().parent / "vectors"
BROKEN = HERE / "broken"
FILE_ID = bytes(range(16))
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
VALUE_HEX_MAX = 64


# --- deterministic thermograms ------------------------------------------------------------


def _prefix(minor: int = 1, major: int = 2) -> bytes:
    return MAGIC + bytes((major, minor, 0)) + b"\x00" * 4 + FILE_ID


def _weights(n: int, seed: int, dtype: Any = np.float32) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 0.05).astype(dtype).tobytes()


def _delta(tg: Thermogram, n: int, op: DeltaType, key: str, value: bytes, **kw: Any) -> Delta:
    d = Delta(
        op,
        key,
        value,
        kw.pop("strength", 1.0),
        T0 + n * 1_000_000_000,
        kw.pop("source", "vectors"),
        f"00000000-0000-4000-8000-{n:012d}",
        **kw,
    )
    return tg.apply(d)


def _event(tg: Thermogram, n: int, kind: str, fields: dict[str, Any]) -> Event:
    ev = records.seal(Event(kind, T0 + n * 1_000_000_000, fields, prev_hash=tg.head_hash))
    assert isinstance(ev, Event)
    tg.records.append(ev)
    tg.head_hash = ev.hash
    return ev


def empty(name: str = "empty") -> Thermogram:
    return Thermogram(
        name=name,
        id="00000000-0000-4000-8000-0000000000e0",
        meta=Metadata(created_at_ns=T0, last_consolidation_ns=T0),
        policy=ConsolidationPolicy.manual(),
    )


def small() -> Thermogram:
    """Every kind of field once: four layers, tensors (shuffled f32, f16), ternary, log."""
    tg = Thermogram(
        name="small ✓",
        id="00000000-0000-4000-8000-000000000005",
        thermal=ThermalConfig.organic(),
        plasticity=PlasticityRule.conservative(),
        policy=ConsolidationPolicy.manual(),
        meta=Metadata(
            created_at_ns=T0,
            last_consolidation_ns=T0 + 5,
            total_deltas=0,
            total_consolidations=0,
            custom={"owner": "vectors", "list": [1, -2, 2.5, None, True]},
        ),
        extras={"snn": {"neurons": 3, "state": b"\x00\x01\x02", "rates": [0.5, 0.25]}},
    )
    hot, warm, cool, cold = (tg.layers[x] for x in Layer)
    hot["emb/0"] = Entry("emb/0", _weights(64, 1), 0.875, T0 + 1, 3, None, TensorSpec("F32", (8, 8)))
    hot["emb/1"] = Entry("emb/1", _weights(16, 2, np.float16), 0.5, T0 + 2, 1, None, TensorSpec("F16", (16,)))
    hot["note"] = Entry("note", "héllo".encode(), 1.0, T0 + 3, 1)
    warm["tern"] = Entry("tern", b"\x01", 0.75, T0 + 4, 12, Ternary.POS)
    cool["empty"] = Entry("empty", b"", 0.25, T0 + 5, 2, Ternary.ZERO)
    cold["q/packed"] = Entry(
        "q/packed",
        bytes([0b01100100, 0b00000110]),
        1.0,
        T0 + 6,
        60,
        None,
        TensorSpec("F32", (2, 4), "ternary", struct.pack("<2f", 0.5, 0.25), True, "absmean"),
    )
    _delta(tg, 1, DeltaType.CREATE, "d/a", b"alpha")
    _delta(
        tg,
        2,
        DeltaType.UPDATE,
        "d/a",
        b"alpha-2",
        strength=0.5,
        ternary=None,
        observation_count=4,
        custom={"why": "test"},
    )
    _delta(
        tg, 3, DeltaType.MERGE, "d/t", b"\x00", strength=-1.0, ternary=Ternary.NEG, source="snn_ternary_stdp"
    )
    _delta(tg, 4, DeltaType.DELETE, "d/gone", b"")
    return tg


def consolidated() -> Thermogram:
    """A log with a consolidation point: dirty_start > 0 and records after it."""
    tg = small()
    _event(
        tg,
        5,
        "consolidate",
        {
            "processed": 4,
            "log_size": tg.log_length,
            "log_root": tg.log_root(),
            "state_digest": tg.state_digest(),
        },
    )
    tg.dirty_start = tg.log_length
    _delta(tg, 6, DeltaType.CREATE, "d/after", b"after")
    return tg


def bound_tail() -> Thermogram:
    """Layer events then a binding record, no delta anywhere: dirty_start is past the
    binding (a consolidation point of nothing, §9.5), as an import leaves a file."""
    tg = empty("bound_tail")
    value = _weights(8, 3)
    tg.layers[Layer.COOL]["w/imported"] = Entry(
        "w/imported", value, 0.8, T0, 1, None, TensorSpec("F32", (8,))
    )
    _event(tg, 1, "import", {"key": "w/imported", "sha256": hashlib.sha256(value).digest()})
    size, root = tg.log_length, tg.log_root()
    fields = {"log_size": size, "log_root": root, "state_digest": tg.state_digest()}
    _event(tg, 2, "checkpoint", {**fields, "meta_digest": tg.meta_digest(), "entries": 1})
    tg.dirty_start = tg.log_length
    return tg


def multichunk() -> Thermogram:
    """Several directory chunks in one layer and a value spanning two data chunks."""
    tg = empty("multichunk")
    for i in range(1500):
        k = f"syn/{i:05d}"
        tg.layers[Layer.HOT][k] = Entry(
            k, struct.pack("<f", (i % 97) / 97), 0.5, T0 + i, 1, None, TensorSpec("F32", (1,))
        )
    big = np.arange(300_000, dtype=np.float32).tobytes()  # 1.14 MiB: two data chunks
    tg.layers[Layer.COLD]["big"] = Entry("big", big, 1.0, T0, 1, None, TensorSpec("F32", (300_000,)))
    return tg


# --- writing ------------------------------------------------------------------------------


def write_file(path: Path, tg: Thermogram, *, prefix: bytes | None = None) -> None:
    with open(path, "wb") as f:
        write_full(f, tg, prefix=prefix or _prefix(), seq=0, source=None)


def append_commit(path: Path, tg: Thermogram) -> None:
    """Append like store.commit does, from a thermogram loaded from ``path``."""
    from thermo_cli.container.writer import plan_append

    with Reader(path) as r:
        planned = plan_append(tg, r)
        assert planned is not None
        with open(path, "r+b") as f:
            f.seek(r.committed_end)
            f.truncate()
            f.write(planned[0])


def load_for_append(path: Path) -> Thermogram:
    reader = Reader(path)
    return store.thermogram_from_reader(reader, layers="lazy", log="tail")


# --- describing decoded content -----------------------------------------------------------


def tagged(v: Any) -> Any:
    """JSON form of CBOR data: bytes as {"$hex": ...}; floats and the rest as they are."""
    if isinstance(v, bytes):
        return {"$hex": v.hex()}
    if isinstance(v, dict):
        return {k: tagged(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [tagged(x) for x in v]
    return v


def value_doc(value: bytes) -> dict[str, Any]:
    if len(value) <= VALUE_HEX_MAX:
        return {"value_hex": value.hex()}
    return {"value_len": len(value), "value_sha256": hashlib.sha256(value).hexdigest()}


def entry_doc(e: Entry) -> dict[str, Any]:
    return {
        "key": e.key,
        **value_doc(e.value),
        "strength": e.strength,
        "ternary": None if e.ternary is None else int(e.ternary),
        "update_count": e.update_count,
        "updated_at": e.updated_at_ns,
        "tensor": tagged(records.tensor_to_map(e.tensor)),
    }


# --- RFC 8785 (JCS) canonical JSON, for the digests the vectors carry ------------------------


SAFE_INT = 2**53 - 1
"""Integers beyond this are not exact as JSON numbers (I-JSON, RFC 7493): given as strings."""


def i_json_safe(value: Any) -> Any:
    """``value`` with every integer outside ±(2^53 − 1) replaced by its decimal text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value) if abs(value) > SAFE_INT else value
    if isinstance(value, list):
        return [i_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: i_json_safe(v) for k, v in value.items()}
    return value


def jcs(value: Any) -> str:
    """RFC 8785 serialization: no whitespace, keys sorted by UTF-16 code units, ECMAScript numbers."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) > SAFE_INT:
            raise ValueError(f"integer {value} is not exact in JSON: pass it through i_json_safe")
        return str(value)
    if isinstance(value, float):
        return es_number(value)
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"not JSON: {type(value).__name__}")


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jcs_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def es_number(x: float) -> str:
    """ECMAScript Number::toString of a finite double (what RFC 8785 §3.2.2.3 requires)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("NaN and infinities are not JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    all_digits = whole + frac
    lead = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.lstrip("0").rstrip("0") or "0"
    n = len(whole) - lead + (int(exp) if exp else 0)
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return sign + head + "e" + ("+" if e > 0 else "-") + str(abs(e))


LIST_MAX = 40


def layer_doc(layer: Any) -> Any:
    """Entries in key order; a long layer as count, first entries and a digest of all."""
    docs = [entry_doc(e) for _, e in sorted(layer.items(), key=lambda kv: kv[0].encode())]
    if len(docs) <= LIST_MAX:
        return docs
    canon = jcs(i_json_safe(docs)).encode()
    return {
        "count": len(docs),
        "first": docs[:3],
        "last": docs[-1],
        "entries_sha256": hashlib.sha256(canon).hexdigest(),
    }


def record_doc(i: int, rec: Any) -> dict[str, Any]:
    m = records.delta_map(rec) if isinstance(rec, Delta) else records.event_map(rec)
    doc = tagged({k: v for k, v in m.items() if k not in ("value",)})
    if "value" in m:
        doc.update(value_doc(m["value"]))
    return {"index": i, "hash": rec.hash, "bytes_sha256": hashlib.sha256(rec.encoded).hexdigest(), **doc}


def describe(path: Path) -> dict[str, Any]:
    """The decoded content of a container, as its JSON description records it."""
    from thermo_cli.container.metablock import meta_to_map

    tg = store.load(path, layers="full", log="full")
    origin = store.info(tg)
    assert origin is not None and origin.reader is not None
    r = origin.reader
    return {
        "format": [r.prefix.major, r.prefix.minor],
        "file_id": r.prefix.file_id.hex(),
        "commits": sum(1 for _ in r.trailers()),
        "torn_tail_bytes": r.torn_tail_bytes,
        "meta": tagged(meta_to_map(tg)),
        "layers": {layer.label: layer_doc(tg.layers[layer]) for layer in Layer},
        "log": {
            "size": tg.log_length,
            "head": tg.head_hash,
            "dirty_start": tg.dirty_start,
            "root": tg.log_root().hex(),
            "records": [record_doc(i, rec) for i, rec in enumerate(tg.records)],
        },
    }


# --- crafting broken files -----------------------------------------------------------------


class Craft:
    """Rebuild the last commit of a single-commit file with altered blocks, re-signing them."""

    def __init__(self, src: Path) -> None:
        self.data = bytearray(src.read_bytes())
        with Reader(src) as r:
            self.trailer = r.trailer.to_map()
            self.meta = cbor2.loads(r.read_block(r.trailer.meta, "meta"))
            self.index = cbor2.loads(r.read_block(r.trailer.index, "index"))
            self.toff = r.trailer.off
            self.start = r.trailer.start
        del self.data[self.toff :]

    def put(self, stored: bytes) -> int:
        off = len(self.data)
        self.data += stored
        return off

    def block(self, raw: bytes, *, compress: bool = True) -> dict[str, Any]:
        stored = ck.compress(raw, 3) if compress else raw
        return {
            "off": self.put(stored),
            "len": len(stored),
            "raw": len(raw),
            "codec": "zstd" if compress else "none",
            "sha256": hashlib.sha256(stored).digest(),
        }

    def finish(
        self,
        *,
        meta_raw: bytes | None = None,
        index_raw: bytes | None = None,
        trailer_raw: bytes | None = None,
    ) -> bytes:
        t = dict(self.trailer)
        if meta_raw is not None:
            t["meta"] = self.block(meta_raw)
        if index_raw is not None:
            t["index"] = self.block(index_raw)
        if self.start is not None:  # 2.1: the body digest covers the blocks added after the header
            t["body_sha256"] = hashlib.sha256(self.data[self.start + COMMIT_HEADER_SIZE :]).digest()
        raw = trailer_raw if trailer_raw is not None else cbor2.dumps(t, canonical=True)
        self.put(raw)
        self.put(pack_footer(len(raw), hashlib.sha256(raw).digest()))
        if self.start is not None:
            header = pack_commit_header(len(self.data) - self.start, t["seq"])
            self.data[self.start : self.start + COMMIT_HEADER_SIZE] = header
        return bytes(self.data)


def _flip(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0xFF
    return bytes(b)


def broken_vectors(small_path: Path) -> dict[str, tuple[bytes, str, str, str]]:
    """name → (bytes, expected error code, operation, what is wrong)."""
    good = small_path.read_bytes()
    out: dict[str, tuple[bytes, str, str, str]] = {}
    with Reader(small_path) as r:
        idx = r.index
        meta_ref = r.trailer.meta
        seg = r.segments(0)[0]
        data_chunk = idx[Layer.HOT].streams[0].chunks[0]
        dir_chunk = idx[Layer.HOT].dirs[0]
        toff = r.trailer.off

    def add(name: str, data: bytes, code: str, why: str, op: str = "load") -> None:
        out[name] = (data, code, op, why)

    add(
        "not_thermo",
        b"PK\x03\x04 this is a zip file, not a thermogram" + bytes(40),
        "bad-magic",
        "the file does not start with the magic",
    )
    add(
        "crlf_to_lf",
        good.replace(b"\r\n", b"\n"),
        "bad-magic",
        "CR LF in the magic was converted to LF (text-mode transfer)",
    )
    add("lf_to_crlf", good.replace(b"\n", b"\r\n"), "bad-magic", "LF was converted to CR LF")
    add("major_3", good[:9] + b"\x03" + good[10:], "unsupported-version", "major version 3")
    add("short_magic", good[:5], "truncated", "the file ends inside the magic")
    add("short_prefix", good[:20], "truncated", "the file ends inside the 32-byte prefix")
    add("no_commit", good[:toff], "truncated", "no footer: the only commit was cut off")
    add(
        "trailer_digest",
        _flip(good, len(good) - 20),
        "integrity",
        "the footer's trailer digest does not match (the only commit)",
    )
    add("meta_digest", _flip(good, meta_ref.off + 3), "integrity", "a byte of the meta block changed")
    add(
        "data_chunk_digest",
        _flip(good, data_chunk.off + data_chunk.len // 2),
        "integrity",
        "a byte of a data chunk changed",
        "load_full",
    )
    add(
        "dir_chunk_digest",
        _flip(good, dir_chunk.off + 5),
        "integrity",
        "a byte of a directory chunk changed",
        "load_full",
    )
    add(
        "segment_digest",
        _flip(good, seg.off + 10),
        "integrity",
        "a byte of a log segment changed",
        "load_full",
    )

    # structures re-signed so the reader gets past the digests to the real problem
    c = Craft(small_path)
    rows = c.index["layers"]["hot"]["streams"][0]
    rows["chunk"] = 1 << 30
    add(
        "chunk_size_cap",
        c.finish(index_raw=cbor2.dumps(c.index, canonical=True)),
        "limit-exceeded",
        "a data stream claims 1 GiB chunks (cap max_chunk_bytes = 4 MiB)",
    )

    c = Craft(small_path)
    deep: Any = 0
    for _ in range(100):
        deep = [deep]
    c.meta["meta"]["custom"] = deep
    add(
        "deep_nesting",
        c.finish(meta_raw=cbor2.dumps(c.meta, canonical=True)),
        "limit-exceeded",
        "custom metadata nested 100 levels deep (cap 32)",
    )

    c = Craft(small_path)
    add(
        "non_canonical_meta",
        c.finish(meta_raw=_unsorted(c.meta)),
        "corrupt",
        "meta block map keys are not in deterministic order",
    )

    c = Craft(small_path)
    add(
        "duplicate_key_meta",
        c.finish(meta_raw=_duplicate_key(c.meta)),
        "corrupt",
        "meta block map has a duplicate key",
    )

    c = Craft(small_path)
    add(
        "indefinite_meta",
        c.finish(meta_raw=_indefinite(c.meta)),
        "corrupt",
        "meta block uses an indefinite-length map",
    )

    c = Craft(small_path)
    c.trailer["index"]["off"] = 10**12
    add("offset_outside", c.finish(), "corrupt", "the index reference points past the end of the file")

    c = Craft(small_path)
    c.index["layers"]["hot"]["dir"]["first"][0] = "zzz"
    add(
        "key_range_wrong",
        c.finish(index_raw=cbor2.dumps(c.index, canonical=True)),
        "corrupt",
        "a directory row's first key sorts after its last key",
    )

    c = Craft(small_path)
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(8 << 20))
    st = c.index["layers"]["hot"]["streams"][0]
    _set_chunk0(st, c.put(bomb), bomb)
    add(
        "zstd_bomb",
        c.finish(index_raw=cbor2.dumps(c.index, canonical=True)),
        "limit-exceeded",
        "a data chunk is a zstd frame of 8 MiB of zeros (cap max_chunk_bytes = 4 MiB)",
        "load_full",
    )

    c = Craft(small_path)
    nocs = zstandard.ZstdCompressor(level=1, write_content_size=False).compressobj()
    st = c.index["layers"]["hot"]["streams"][0]
    frame = nocs.compress(bytes(min(st["size"], st["chunk"]))) + nocs.flush()
    _set_chunk0(st, c.put(frame), frame)
    add(
        "zstd_no_content_size",
        c.finish(index_raw=cbor2.dumps(c.index, canonical=True)),
        "corrupt",
        "a data chunk's zstd frame does not declare its content size",
        "load_full",
    )

    c = Craft(small_path)
    st = c.index["layers"]["hot"]["streams"][0]
    with Reader(small_path) as r:
        first = r.index[Layer.HOT].streams[0].chunks[0]
        orig = r.pread(first.off, first.len)
    padded = orig + b"\x00trailing"
    _set_chunk0(st, c.put(padded), padded)
    add(
        "zstd_trailing_bytes",
        c.finish(index_raw=cbor2.dumps(c.index, canonical=True)),
        "corrupt",
        "bytes follow a data chunk's zstd frame",
        "load_full",
    )

    c = Craft(small_path)
    seg_bytes = struct.pack("<I", 0xFFFFFFF0) + b"x" * 16
    c.trailer["log"]["table"] = c.block(
        cbor2.dumps(
            {
                "prev": None,
                "segments": [[c.put(seg_bytes), len(seg_bytes), 0, 4, hashlib.sha256(seg_bytes).digest()]],
            },
            canonical=True,
        )
    )
    add(
        "record_length_cap",
        c.finish(),
        "limit-exceeded",
        "a log record claims 4 GiB (cap max_record_bytes = 256 MiB)",
        "load_full",
    )

    amplification_vectors(small_path, add)

    c = Craft(small_path)
    c.trailer["log"]["head"] = b"\x11" * 32
    add("head_mismatch", c.finish(), "integrity", "the trailer's head is not the last record's hash")
    framing_vectors(small_path, small_path.with_name("appended.thermo"), add)
    misnamed = small_path.with_name("split_keys.misnamed.tmp")
    write_split_keys(misnamed, misname_first=True)
    add(
        "split_key_index_misnamed_part",
        misnamed.read_bytes(),
        "integrity",
        "a split key index block lists its first part under a last key the part does not hold "
        "(every digest valid): a reader may miss keys, so verify fails on the key index",
        "verify",
    )
    misnamed.unlink()
    auth_vectors(small_path.with_name("signed.thermo"), add)
    return out


def amplification_vectors(small_path: Path, add: Any) -> None:
    """Files that are small on disk but decode to far more than their size (spec §10).

    zstd stores millions of one-byte items (``0xa0``, an empty map) in a few kilobytes;
    each costs tens of bytes once decoded, so the item cap must hold before decoding.
    """
    c = Craft(small_path)
    c.meta["meta"]["custom"] = [{}] * 2_000_000
    add(
        "meta_2m_empty_maps",
        c.finish(meta_raw=cbor2.dumps(c.meta, canonical=True)),
        "limit-exceeded",
        "the meta block's custom metadata is 2,000,000 empty maps (cap max_cbor_items = 1,000,000)",
    )

    c = Craft(small_path)
    ref = c.block(cbor2.dumps(c.meta, canonical=True))
    ref["raw"] = 255 << 20
    c.trailer["meta"] = ref
    add(
        "meta_huge_bytes",
        c.finish(),
        "limit-exceeded",
        "the meta block declares 255 MiB decompressed (cap max_meta_bytes = 64 MiB), checked before reading",
    )

    c = Craft(small_path)
    c.index["padding"] = [[]] * 1_100_000
    add(
        "index_too_many_items",
        c.finish(index_raw=cbor2.dumps(c.index, canonical=True)),
        "limit-exceeded",
        "the index block carries an extra key of 1,100,000 empty arrays (cap max_cbor_items = 1,000,000)",
    )


def framing_vectors(small_path: Path, appended_path: Path, add: Any) -> None:
    """Format 2.1 framing: damage that must never pass for a torn tail or an older state."""
    appended = appended_path.read_bytes()
    with Reader(appended_path) as r:
        last, prev = r.trailer, r._prev_trailer(r.trailer)
    add(
        "footer_magic_bitflip",
        _flip(appended, len(appended) - 1),
        "integrity",
        "one bit of the last footer's end magic flipped: the last commit is complete but damaged, "
        "not a torn tail (a reader must not fall back to the commit before it)",
    )
    assert last.start is not None
    add(
        "header_length_bitflip",
        _flip(appended, last.start + 9),
        "integrity",
        "a bit of the last commit header's length flipped (its CRC-32 fails): damaged, not torn",
    )
    old = appended[prev.off : prev.off + prev.len + FOOTER_SIZE]
    add(
        "appended_old_commit",
        appended + old,
        "integrity",
        "the trailer and footer of an older commit appended (a rollback): its start and length do "
        "not reach the end of the file",
    )
    small = small_path.read_bytes()
    add(
        "file_appended_to_itself",
        small + small,
        "integrity",
        "a file followed by a copy of itself: the copy's commit is not framed at the end of the "
        "file, and the bytes after the real commit belong to no commit",
    )
    add(
        "bytes_after_commit",
        appended + b"not a commit header: bytes no commit covers" * 2,
        "integrity",
        "bytes after the last commit that do not start a commit header (not a torn tail)",
    )
    c = Craft(small_path)
    gap = c.put(b"\xa5" * 64)  # referenced by no block; only body_sha256 covers it
    padded = bytearray(c.finish())
    padded[gap : gap + 64] = bytes(64)
    add(
        "zeroed_unreferenced_gap",
        bytes(padded),
        "integrity",
        "64 bytes that no block references were zeroed: loads, but verify fails on body_sha256",
        "verify",
    )


def _set_chunk0(stream: dict[str, Any], off: int, stored: bytes) -> None:
    """Point a stream's first data chunk (columnar rows) at ``stored`` written at ``off``."""
    cols = stream["chunks"]
    cols["off"] = struct.pack("<Q", off) + cols["off"][8:]
    cols["len"] = struct.pack("<Q", len(stored)) + cols["len"][8:]
    cols["sha256"] = hashlib.sha256(stored).digest() + cols["sha256"][32:]


def _unsorted(m: dict[str, Any]) -> bytes:
    """The map encoded with its keys in reverse order (each item canonical)."""
    items = sorted(m.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()), reverse=True)
    return _map_head(len(items)) + b"".join(
        cbor2.dumps(k, canonical=True) + cbor2.dumps(v, canonical=True) for k, v in items
    )


def _duplicate_key(m: dict[str, Any]) -> bytes:
    items = sorted(m.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
    items.insert(1, items[0])
    return _map_head(len(items)) + b"".join(
        cbor2.dumps(k, canonical=True) + cbor2.dumps(v, canonical=True) for k, v in items
    )


def _indefinite(m: dict[str, Any]) -> bytes:
    items = sorted(m.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
    return (
        b"\xbf"
        + b"".join(cbor2.dumps(k, canonical=True) + cbor2.dumps(v, canonical=True) for k, v in items)
        + b"\xff"
    )


def _map_head(n: int) -> bytes:
    return bytes([0xA0 + n]) if n < 24 else bytes([0xB8, n])


# --- the vector set -------------------------------------------------------------------------


def build_golden(outdir: Path) -> dict[str, str]:
    """Write every golden vector into ``outdir``; returns name → what it shows."""
    outdir.mkdir(parents=True, exist_ok=True)
    shows = {}
    write_file(outdir / "empty.thermo", empty())
    shows["empty"] = "no entries, no log records"
    write_file(outdir / "small.thermo", small())
    shows["small"] = "every field once: 4 layers, tensors (shuffled F32, F16, ternary), deltas, extras"
    write_file(outdir / "consolidated.thermo", consolidated())
    shows["consolidated"] = "a consolidation event, dirty_start > 0, a log table"

    write_file(outdir / "appended.thermo", small())
    tg = load_for_append(outdir / "appended.thermo")
    _delta(tg, 10, DeltaType.CREATE, "d/appended", b"one")
    append_commit(outdir / "appended.thermo", tg)
    tg = load_for_append(outdir / "appended.thermo")
    tg.extras["snn"]["neurons"] = 4
    tg.meta.total_deltas += 1
    _delta(tg, 11, DeltaType.UPDATE, "d/appended", b"two")
    append_commit(outdir / "appended.thermo", tg)
    shows["appended"] = "three commits: two appends (records, then records plus a new meta block)"

    data = (outdir / "appended.thermo").read_bytes()
    tg = load_for_append(outdir / "appended.thermo")
    _delta(tg, 12, DeltaType.CREATE, "d/torn", b"never committed")
    from thermo_cli.container.writer import plan_append

    with Reader(outdir / "appended.thermo") as r:
        planned = plan_append(tg, r)
    assert planned is not None
    (outdir / "torn_tail.thermo").write_bytes(data + planned[0][: len(planned[0]) - 30])
    shows["torn_tail"] = "appended.thermo plus an append cut 30 bytes short: reads as appended, tail reported"

    write_file(outdir / "bound_tail.thermo", bound_tail())
    shows["bound_tail"] = (
        "an import event then a checkpoint, no delta: dirty_start is past the checkpoint "
        "(a consolidation point of nothing, §9.5)"
    )

    write_file(outdir / "multichunk.thermo", multichunk())
    shows["multichunk"] = "1,500 entries in several directory chunks; a 1.1 MiB value across two data chunks"

    _write_cow(outdir / "cow.thermo")
    shows["cow"] = (
        "multichunk.thermo plus a copy-on-write layer commit (§12.5): one strength changed, one value "
        "replaced, one key deleted, one added; a new stream, two directory chunks and an index appended"
    )

    (outdir / "torn_zeros.thermo").write_bytes(data + bytes(600))
    shows["torn_zeros"] = "appended.thermo plus 600 zero bytes (an append lost in a power cut): torn tail"

    write_split_keys(outdir / "split_keys.thermo")
    shows["split_keys"] = (
        "consolidated.thermo plus an append of 10 deltas whose key index block is split into "
        "parts of 4 keys (§9.7): a reader finds each key by its part's last key"
    )

    _write_future_minor(outdir / "future_minor.thermo")
    shows["future_minor"] = "version 2.2 with unknown fields in trailer and meta (ignored, still hashed)"

    _write_upgrade_pair(outdir / "v2_0.thermo", outdir / "v2_0_upgraded.thermo")
    shows["v2_0"] = "format 2.0 (no commit framing), two commits: still read and verified"
    shows["v2_0_upgraded"] = "v2_0.thermo after one more delta: a write rewrites a 2.0 file as 2.1 (seq + 1)"

    write_signed(outdir / "signed.thermo")
    shows["signed"] = (
        f"small.thermo signed by the TEST key in {TEST_KEY_FILE} (a checkpoint with state and meta "
        "digests, then a signature record): verify --require-signed-head passes with that key"
    )
    return shows


@contextlib.contextmanager
def _key_index_parts(per_part: int, *, misname_first: bool = False) -> Iterator[None]:
    """Make the writer split key index blocks above ``per_part`` keys (the reference writer
    splits above 2,048): small vectors then show split blocks. With ``misname_first`` the
    first part is listed under a last key it does not hold."""
    from thermo_cli.container import keyindex, writer

    real_parts, real_maps = writer.PART_KEYS, writer.part_maps

    def maps(latest: dict[str, int], n: int) -> list[tuple[bytes, dict[str, Any]]]:
        parts = keyindex.part_maps(latest, n)
        return [(parts[0][0] + b"~", parts[0][1]), *parts[1:]] if misname_first else parts

    writer.PART_KEYS, writer.part_maps = per_part, maps
    try:
        yield
    finally:
        writer.PART_KEYS, writer.part_maps = real_parts, real_maps


def write_split_keys(path: Path, *, misname_first: bool = False) -> None:
    """consolidated() and one append of ten deltas, its key index split in parts of four."""
    write_file(path, consolidated())
    tg = load_for_append(path)
    for i in range(10):
        _delta(tg, 30 + i, DeltaType.CREATE, f"d/split/{i:02d}", b"split %d" % i)
    with _key_index_parts(4, misname_first=misname_first):
        append_commit(path, tg)


def _write_cow(path: Path) -> None:
    """A copy-on-write commit after a rewrite: changes in two directory chunks, bound."""
    from thermo_cli.container.cow import plan_cow

    write_file(path, multichunk())
    tg = load_for_append(path)
    hot = tg.layers[Layer.HOT]
    hot["syn/00007"].strength = 0.75
    hot["syn/01400"].value = struct.pack("<f", 2.5)
    del hot["syn/01401"]
    hot["syn/01400x"] = Entry("syn/01400x", b"added by copy-on-write", 0.25, T0 + 9, 1)
    root = tg.log_root()
    _event(
        tg,
        20,
        "bind",
        {"events": 0, "kinds": [], "log_size": 0, "log_root": root, "state_digest": tg.state_digest()},
    )
    with Reader(path) as r:
        planned = plan_cow(tg, r)
        assert planned is not None
        with open(path, "r+b") as f:
            f.seek(r.committed_end)
            f.write(b"".join(planned[0]))


# --- signed vectors (a published TEST key: never use it for anything else) -------------------

TEST_KEY_NAME = "alice"
TEST_KEY_FILE = "TEST-KEY-alice.txt"
TEST_KEY_SEED = hashlib.sha256(b"thermo format vectors: TEST KEY, never use it for anything else").digest()


def test_key() -> Any:
    """The vectors' Ed25519 TEST private key (its seed is published in TEST_KEY_FILE)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(TEST_KEY_SEED)


def test_key_text() -> str:
    from thermo_cli.integrity import note

    verifier = note.verifier_key(TEST_KEY_NAME, note.public_key_bytes(test_key().public_key()))
    return (
        "# TEST KEY for the signed vectors only. It is public: anything it signs proves nothing.\n"
        "# Ed25519 private key seed (hex), then the C2SP verifier key (thermo verify --pubkey).\n"
        f"seed {TEST_KEY_SEED.hex()}\n"
        f"verifier {verifier}\n"
    )


def test_pubkey() -> Any:
    from thermo_cli.operations.audit.keys import load_public

    return load_public(test_key_text().splitlines()[-1].split(" ", 1)[1])


def _signing(path: Path, n: int) -> Any:
    """A fixed clock for writes through the store (a signature's record time), and no
    lock file left beside the vectors."""
    from thermo_cli.config.clock import SteppingClock, use_clock

    class _Ctx:
        def __enter__(self) -> None:
            self.ctx = use_clock(SteppingClock(T0 + n * 1_000_000_000, 1))
            self.ctx.__enter__()

        def __exit__(self, *exc: Any) -> None:
            self.ctx.__exit__(*exc)
            Path(f"{path}.lock").unlink(missing_ok=True)

    return _Ctx()


def write_signed(path: Path) -> None:
    """small.thermo, then ``thermo sign`` with the TEST key: checkpoint + signature records."""
    from thermo_cli.operations.audit import checkpoints

    write_file(path, small())
    with _signing(path, 20):
        checkpoints.sign(path, test_key(), TEST_KEY_NAME)


def _forged(tg: Thermogram, seq: int = 0) -> bytes:
    """``tg`` written straight through the container writer: every digest recomputed, no
    binding added, no key — what anyone can do to a file."""
    import io

    buf = io.BytesIO()
    write_full(buf, tg, prefix=_prefix(), seq=seq, source=None)
    return buf.getvalue()


def _reseal(tg: Thermogram) -> None:
    prev = None
    for rec in tg.records:
        rec.prev_hash = prev
        rec.encoded = None
        rec.hash = None
        records.seal(rec)
        prev = rec.hash
    tg.head_hash = prev


PLAIN_VERIFY = {
    "bind_after_signature": {"test_key": True, "ok": True, "authentication": "partially-signed"},
    "signatures_stripped": {"test_key": False, "ok": True, "authentication": "unsigned"},
}
"""What ``verify`` without ``require_signed_head`` (with the TEST key as ``pubkeys`` when
``test_key``) reports for the broken vectors that fail only a signed-head check."""


def auth_vectors(signed_path: Path, add: Any) -> None:
    """Files that are intact but not what their signature says, or not signed at all."""
    import dataclasses

    tg = store.thermogram_from_reader(Reader(signed_path), layers="full", log="full")
    tg.persisted = 0
    thermal = dataclasses.replace(tg.thermal, decay_rates=(0.9, 0.9, 0.9, 0.9), prune_threshold=0.5)
    tg.__dict__["_thermal"] = thermal  # behind the thermogram's back: no event, no binding
    add(
        "config_tampered",
        _forged(tg),
        "integrity",
        "signed.thermo with thermal.decay_rates and prune_threshold changed in the meta block, "
        "every digest recomputed: the meta digest bound (and signed) at the checkpoint differs",
        "verify",
    )

    tg = store.thermogram_from_reader(Reader(signed_path), layers="full", log="full")
    tg.persisted = 0
    tg.layers[Layer.HOT]["note"].value = b"changed after the signature"
    with _signing(signed_path, 30):
        tg.append_event("quantize", {"keys": ["note"]})
        tg.bind_state()
    add(
        "bind_after_signature",
        _forged(tg),
        "integrity",
        "signed.thermo with a layer change and a bind record after the signed checkpoint: passes "
        "plain verify (partially-signed), fails verify --require-signed-head with the TEST key",
        "verify_signed_head",
    )

    tg = store.thermogram_from_reader(Reader(signed_path), layers="full", log="full")
    tg.persisted = 0
    checkpoint = next(i for i, r in enumerate(tg.records) if isinstance(r, Event) and r.kind == "checkpoint")
    tg.dirty_start = checkpoint + 1
    add(
        "dirty_start_past_deltas",
        _forged(tg),
        "integrity",
        "signed.thermo with dirty_start moved past the checkpoint although uncommitted deltas "
        "precede it (they would be hidden from reads): not a consolidation point (§9.5)",
        "verify",
    )

    tg = store.thermogram_from_reader(Reader(signed_path), layers="full", log="full")
    tg.persisted = 0
    tg.records = [r for r in tg.records if not (isinstance(r, Event) and r.kind == "signature")]
    _reseal(tg)
    add(
        "signatures_stripped",
        _forged(tg),
        "integrity",
        "signed.thermo with its signature record removed and the log re-hashed: passes plain "
        "verify reported unsigned, fails verify --require-signed-head with the TEST key",
        "verify_signed_head",
    )


def _write_upgrade_pair(old: Path, new: Path) -> None:
    """A 2.0 file and what a write makes of it: the whole file rewritten as 2.1 (spec §12)."""
    write_file(old, small(), prefix=_prefix(minor=0))
    tg = load_for_append(old)
    _delta(tg, 10, DeltaType.CREATE, "d/appended", b"one")
    append_commit(old, tg)
    tg = load_for_append(old)
    _delta(tg, 11, DeltaType.UPDATE, "d/appended", b"upgraded")
    with Reader(old) as r, open(new, "wb") as f:
        write_full(f, tg, prefix=_prefix(minor=1), seq=r.trailer.seq + 1, source=r)


def _write_future_minor(path: Path) -> None:
    write_file(path, small(), prefix=_prefix(minor=2))
    c = Craft(path)
    c.meta["future_meta_field"] = {"added_in": "2.2"}
    c.trailer["future_trailer_field"] = [1, 2, 3]
    path.write_bytes(c.finish(meta_raw=cbor2.dumps(c.meta, canonical=True)))


def run_op(path: Path, op: str) -> None:
    if op == "load":
        store.load(path)
    elif op == "load_full":
        store.load(path, layers="full", log="full")
    elif op == "verify":
        from thermo_cli.operations.audit.verify import verify_file

        report = verify_file(path)
        if not report.ok:
            reason = report.failure.reason if report.failure else "a check failed"
            raise IntegrityError(f"{path}: {reason}")
    elif op == "verify_signed_head":
        from thermo_cli.operations.audit.verify import verify_file

        report = verify_file(path, pubkeys=[test_pubkey()], require_signed_head=True)
        if not report.ok:
            reason = report.failure.reason if report.failure else "a check failed"
            raise IntegrityError(f"{path}: {reason}")
    else:
        raise ValueError(op)


def write_all() -> None:
    shows = build_golden(HERE)
    index: dict[str, Any] = {
        "zstandard": zstandard.__version__,
        "zstd": zstandard.ZSTD_VERSION,
        "golden": {},
        "broken": {},
    }
    for name, why in shows.items():
        (HERE / f"{name}.json").write_text(
            json.dumps(describe(HERE / f"{name}.thermo"), indent=1, ensure_ascii=False) + "\n"
        )
        index["golden"][name] = why
    BROKEN.mkdir(exist_ok=True)
    for name, (data, code, op, why) in broken_vectors(HERE / "small.thermo").items():
        (BROKEN / f"{name}.thermo").write_bytes(data)
        spec: dict[str, Any] = {"error": code, "operation": op, "description": why}
        if name in PLAIN_VERIFY:
            spec["plain_verify"] = PLAIN_VERIFY[name]
        (BROKEN / f"{name}.json").write_text(json.dumps(spec, indent=1) + "\n")
        index["broken"][name] = code
    (HERE / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    (HERE / TEST_KEY_FILE).write_text(test_key_text())


def check_all() -> list[str]:
    """Problems found (empty when every vector decodes or fails as described)."""
    problems = []
    index = json.loads((HERE / "index.json").read_text())
    if (HERE / TEST_KEY_FILE).read_text() != test_key_text():
        problems.append(f"{TEST_KEY_FILE}: does not hold the vectors' TEST key")
    for name in index["golden"]:
        want = json.loads((HERE / f"{name}.json").read_text())
        got = json.loads(json.dumps(describe(HERE / f"{name}.thermo"), ensure_ascii=False))
        if got != want:
            problems.append(f"golden {name}: decoded content differs from {name}.json")
    for name, code in index["broken"].items():
        spec = json.loads((BROKEN / f"{name}.json").read_text())
        try:
            run_op(BROKEN / f"{name}.thermo", spec["operation"])
        except ThermoError as exc:
            if exc.code != code:
                problems.append(f"broken {name}: got {exc.code} ({exc}), expected {code}")
            continue
        problems.append(f"broken {name}: read without error, expected {code}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="regenerate the vectors")
    args = ap.parse_args(argv)
    if args.write:
        write_all()
    problems = check_all()
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{'FAILED' if problems else 'ok'}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
