"""format/schema.cddl describes every CBOR structure of the golden vectors (needs pycddl)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest

from thermo_cli.container import chunks as ck
from thermo_cli.container.blocks import BlockRef
from thermo_cli.container.reader import Reader

pycddl = pytest.importorskip("pycddl")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "format" / "schema.cddl").read_text()
VECTORS = ROOT / "format" / "vectors"
_cache: dict[str, object] = {}


def validate(rule: str, data: bytes) -> None:
    if rule not in _cache:
        _cache[rule] = pycddl.Schema(f"root = {rule}\n" + SCHEMA)
    _cache[rule].validate_cbor(data)  # type: ignore[attr-defined]


def structures(path: Path) -> Iterator[tuple[str, bytes]]:
    with Reader(path) as r:
        for t in r.trailers():
            yield "trailer", r.pread(t.off, t.len)
            yield "meta-block", r.read_block(t.meta, "meta")
            yield "index-block", r.read_block(t.index, "index")
            if t.table is not None:
                yield "log-table", r.read_block(t.table, "log table")
            if t.keys is not None:
                block = cbor2.loads(r.read_block(t.keys, "key index"))
                yield "key-index-block", r.read_block(t.keys, "key index")
                for part in block.get("parts", ()):
                    ref = BlockRef.from_map(part["block"], "part", 32, t.off)
                    yield "key-index-part", r.read_block(ref, "key index part")
        for li in r.index.values():
            for d in li.dirs:
                raw = ck.decompress(r.pread(d.off, d.len), d.raw, cap=d.raw, cap_name="c", what="d")
                yield ("dir-chunk" if d.ident is None else "state-chunk"), raw
                if d.ident is not None:
                    off, n, size, _ = d.ident
                    yield (
                        "identity-chunk",
                        ck.decompress(r.pread(off, n), size, cap=size, cap_name="c", what="i"),
                    )
        for rec in r.iter_raw_records(0):
            yield "record", rec.data


@pytest.mark.parametrize("name", sorted(json.loads((VECTORS / "index.json").read_text())["golden"]))
def test_every_structure_matches_the_schema(name: str) -> None:
    kinds = set()
    for rule, data in structures(VECTORS / f"{name}.thermo"):
        validate(rule, data)
        kinds.add(rule)
    assert {"trailer", "meta-block", "index-block"} <= kinds


def test_the_schema_rejects_a_wrong_structure() -> None:
    with Reader(VECTORS / "small.thermo") as r:
        meta = cbor2.loads(r.read_block(r.trailer.meta, "meta"))
    del meta["thermal"]
    with pytest.raises(Exception, match="thermal"):
        validate("meta-block", cbor2.dumps(meta, canonical=True))
    meta = {"t": "delta", "id": "x"}
    with pytest.raises(Exception):  # noqa: B017
        validate("record", cbor2.dumps(meta, canonical=True))
