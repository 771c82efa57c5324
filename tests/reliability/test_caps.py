"""Resource caps: hostile sizes are refused before anything big is allocated, naming the cap.

Covers decompression bombs (a chunk or block claiming a huge size, a zstd frame that
holds more than it declares, a frame without a declared size), gigantic length and
count fields, deep CBOR/JSON nesting, a 10 GB JSONL line (a stream, never written to
disk) and 1 MB keys, for the container reader, the JSONL parser, the legacy reader and the
safetensors importer. Peak memory is measured with tracemalloc.
"""

from __future__ import annotations

import contextlib
import struct
import subprocess
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from fuzz.targets import safetensors_bytes
from tests.reliability.conftest import LEGACY, VECTORS, Thermo
from tests.reliability.crafting import Rebuild
from tests.reliability.harness import ROOT, THERMO, child_env
from thermo_cli import store
from thermo_cli.codec import cbor
from thermo_cli.config.limits import Limits, use_limits
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import (
    CorruptError,
    FormatError,
    IntegrityError,
    LimitExceededError,
    ThermoError,
    ValidationError,
)
from thermo_cli.formats.jsonl import DeltaParser, LineLimitError, iter_lines, parse_text

MiB = 1 << 20
SMALL = (VECTORS / "small.thermo").read_bytes()
ALLOCATION_BOUND = 32 * MiB
"""Peak bytes allowed while refusing a hostile input (the inputs here are a few KB)."""


def peak_while(fn: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """(exception raised by ``fn`` or None, peak bytes allocated while it ran)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            fn()
            raised = None
        except ThermoError as exc:
            raised = exc
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return raised, peak


def _u64_col(col: bytes, value: int) -> bytes:
    return value.to_bytes(8, "little") + col[8:]


# --- container: crafted, re-signed files ------------------------------------------------------


def _meta_raw(rb: Rebuild) -> None:
    rb.trailer["meta"]["raw"] = 2**40


def _index_raw(rb: Rebuild) -> None:
    rb.trailer["index"]["raw"] = 2**40


def _dir_raw(rb: Rebuild) -> None:
    table = rb.index["layers"]["hot"]["dir"]
    table["raw"] = _u64_col(table["raw"], 2**40)
    rb.index_changed = True


def _dir_count(rb: Rebuild) -> None:
    table = rb.index["layers"]["hot"]["dir"]
    table["count"] = _u64_col(table["count"], 2**40)
    rb.index_changed = True


def _stream_chunk(rb: Rebuild) -> None:
    rb.index["layers"]["hot"]["streams"][0]["chunk"] = 1 << 30
    rb.index_changed = True


def _stream_size(rb: Rebuild) -> None:
    rb.index["layers"]["hot"]["streams"][0]["size"] = 2**62
    rb.index_changed = True


def _lying_frame(rb: Rebuild) -> None:
    """A data chunk whose zstd frame declares its raw size (256 B) but holds 64 MiB."""
    stream = rb.index["layers"]["hot"]["streams"][2]
    big = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(bytes(64 * MiB))
    assert big[4] == 0x80  # 4-byte content size field right after the window descriptor
    declared = stream["size"]
    rb.set_data_chunk("hot", 2, 0, big[:6] + declared.to_bytes(4, "little") + big[10:])


def _unsized_frame(rb: Rebuild) -> None:
    stream = rb.index["layers"]["hot"]["streams"][2]
    cobj = zstandard.ZstdCompressor(level=1, write_content_size=False).compressobj()
    rb.set_data_chunk("hot", 2, 0, cobj.compress(bytes(stream["size"])) + cobj.flush())


def _segment_count(rb: Rebuild) -> None:
    row = rb.segment_rows()[0]
    row[3] = 2**40
    rb.set_records(row, rb.records(row))


def _record_length(rb: Rebuild) -> None:
    row = rb.segment_rows()[0]
    records = rb.records(row)
    seg = struct.pack("<I", 0xFFFFFFF0) + records[0]
    rb.set_records(row, [])  # re-point the row, then put the hostile bytes in its place
    row[0], row[1] = rb.put(seg), len(seg)
    import hashlib

    row[4] = hashlib.sha256(seg).digest()
    if not rb.trailer["log"].get("segments"):
        rb.trailer["log"]["table"] = rb.block(cbor.encode(rb._table))


def _log_size(rb: Rebuild) -> None:
    rb.trailer["log"]["size"] = 2**60


def _megabyte_key(rb: Rebuild) -> None:
    layer, i = next(rb.dir_rows())
    chunk = rb.dir_chunk(layer, i)
    key = "k" * MiB
    chunk["keys"][0] = key
    rb.index["layers"][layer]["dir"]["first"][i] = key
    rb.set_dir_chunk(layer, i, chunk)


def _deep_custom(rb: Rebuild) -> None:
    deep: Any = 0
    for _ in range(5000):
        deep = [deep]
    rb.meta["meta"]["custom"] = deep
    import cbor2

    raw = b"\x81" * 5000 + b"\x00"
    rb.meta["meta"]["custom"] = None
    body = cbor2.dumps(rb.meta, canonical=True)
    # splice the 5000-deep array in place of the null custom value
    marker = cbor2.dumps("custom") + b"\xf6"
    assert marker in body
    rb.trailer["meta"] = rb.block(body.replace(marker, cbor2.dumps("custom") + raw, 1))


CONTAINER_CASES: dict[str, tuple[Callable[[Rebuild], None], type[ThermoError], str]] = {
    "meta block claims 1 TiB": (_meta_raw, LimitExceededError, "max_meta_bytes"),
    "index block claims 1 TiB": (_index_raw, LimitExceededError, "max_block_bytes"),
    "directory chunk claims 1 TiB": (_dir_raw, LimitExceededError, "max_chunk_bytes"),
    "directory chunk claims 2^40 entries": (_dir_count, LimitExceededError, "max_entries_per_chunk"),
    "stream claims 1 GiB chunks": (_stream_chunk, LimitExceededError, "max_chunk_bytes"),
    "stream claims 2^62 bytes": (_stream_size, CorruptError, "cannot hold"),
    "zstd frame holds 64 MiB, declares 256 B": (_lying_frame, CorruptError, "zstd"),
    "zstd frame without a content size": (_unsized_frame, CorruptError, "content size"),
    "segment claims 2^40 records": (_segment_count, CorruptError, "records"),
    "record frame claims 4 GiB": (_record_length, LimitExceededError, "max_record_bytes"),
    "log claims 2^60 records": (_log_size, CorruptError, ""),
    "directory key of 1 MiB": (_megabyte_key, CorruptError, "4096"),
    "custom metadata 5000 levels deep": (_deep_custom, LimitExceededError, "32"),
}


@pytest.mark.parametrize("case", list(CONTAINER_CASES))
def test_hostile_container_is_refused_before_allocating(case: str, tmp_path: Path) -> None:
    mutate, error, cap = CONTAINER_CASES[case]
    rb = Rebuild(SMALL)
    mutate(rb)
    path = tmp_path / "hostile.thermo"
    path.write_bytes(rb.finish())
    before = path.read_bytes()

    raised, peak = peak_while(lambda: store.load(path, layers="full", log="full"))

    assert isinstance(raised, error), (case, raised)
    assert cap in str(raised), (case, str(raised))
    if error is LimitExceededError and cap.startswith("max_"):
        assert f"limits=Limits({cap}=" in str(raised)  # names the parameter that raises it
    assert peak < ALLOCATION_BOUND, (case, peak)
    assert len(str(raised)) < 500
    assert path.read_bytes() == before


def test_hostile_container_through_the_cli(tmp_path: Path, thermo: Thermo) -> None:
    rb = Rebuild(SMALL)
    _lying_frame(rb)
    path = tmp_path / "bomb.thermo"
    path.write_bytes(rb.finish())
    run = thermo("export", path, tmp_path / "out.jsonl")
    assert run.code == 3 and run.err.count("\n") == 1 and "zstd" in run.err
    assert not (tmp_path / "out.jsonl").exists()
    verify = thermo("verify", "--json", path)
    assert verify.code == 1 and orjson.loads(verify.out)["ok"] is False


def test_footer_claiming_a_4_gib_trailer_is_not_a_commit(tmp_path: Path) -> None:
    data = bytearray(SMALL)
    data[-44:-40] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "f.thermo"
    path.write_bytes(bytes(data))
    raised, peak = peak_while(lambda: store.load(path))
    assert isinstance(raised, IntegrityError | FormatError) and peak < ALLOCATION_BOUND


@pytest.mark.parametrize("vector", ["zstd_bomb", "chunk_size_cap", "record_length_cap", "deep_nesting"])
def test_broken_cap_vectors_are_refused_before_allocating(vector: str) -> None:
    path = VECTORS / "broken" / f"{vector}.thermo"
    raised, peak = peak_while(lambda: store.load(path, layers="full", log="full"))
    assert isinstance(raised, LimitExceededError) and peak < ALLOCATION_BOUND, (raised, peak)


def test_caps_can_be_raised_or_lowered_for_trusted_files() -> None:
    path = VECTORS / "multichunk.thermo"
    tg = store.load(path, layers="full", limits=Limits())
    assert sum(len(tg.layers[layer]) for layer in tg.layers)
    knob = r"max_chunk_bytes=1024 \(raise it with limits=Limits\(max_chunk_bytes=…\)"
    with pytest.raises(LimitExceededError, match=knob):
        store.load(path, layers="full", limits=Limits(max_chunk_bytes=1024))


# --- CBOR ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("100,000 nested arrays", b"\x81" * 100_000 + b"\x00"),
        ("100,000 nested maps", b"\xa1\x61a" * 100_000 + b"\x00"),
        ("100,000 nested tags", b"\xc6" * 100_000 + b"\x00"),
        ("byte string of 2^63 bytes", b"\x5b" + (2**63).to_bytes(8, "big")),
        ("text of 2^40 bytes", b"\x7b" + (2**40).to_bytes(8, "big") + b"a" * 100),
        ("array of 2^63 items", b"\x9b" + (2**63).to_bytes(8, "big") + b"\x00" * 10),
        ("map of 2^32 pairs", b"\xba" + (2**32 - 1).to_bytes(4, "big")),
    ],
)
def test_cbor_decoder_refuses_deep_or_huge_items_cheaply(name: str, data: bytes) -> None:
    raised, peak = peak_while(lambda: cbor.decode(data))
    assert isinstance(raised, LimitExceededError | CorruptError), (name, raised)
    if "nested" in name:
        assert isinstance(raised, LimitExceededError) and "32" in str(raised)
    assert peak < ALLOCATION_BOUND, (name, peak)


# --- JSONL -----------------------------------------------------------------------------------------


class EndlessLine:
    """A stream holding one line of ``total`` bytes without a newline, made on demand."""

    def __init__(self, total: int, prefix: bytes = b"") -> None:
        self.left = total
        self.consumed = 0
        self.prefix = prefix

    def read1(self, n: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
        else:
            size = min(self.left, n if n > 0 else MiB)
            out = b"x" * size
            self.left -= size
        self.consumed += len(out)
        return out

    read = read1


TEN_GB = 10 * 1000**3


def test_ten_gb_jsonl_line_is_refused_after_reading_about_the_cap() -> None:
    cap = 8 * MiB
    first = b'{"op": "create", "key": "a", "value": "ok"}\n'
    stream = EndlessLine(TEN_GB, prefix=first + b'{"op": "create", "key": "')
    lines: Iterator[tuple[int, bytes]] = iter_lines(stream, max_line_bytes=cap)
    assert next(lines)[0] == 1
    raised, peak = peak_while(lambda: next(lines))
    assert isinstance(raised, LineLimitError)
    text = str(raised)
    assert "line 2" in text and f"maximum of {cap} bytes" in text and "max_line_bytes=" in text
    assert stream.consumed <= cap + 2 * MiB
    assert peak < cap + 4 * MiB


def test_ten_gb_line_on_stdin_of_thermo_apply(tmp_path: Path) -> None:
    """The default cap (64 MiB) through a real pipe: the writer is cut off, the file untouched."""
    path = tmp_path / "t.thermo"
    store.create(path, Thermogram(name="t"))
    before = path.read_bytes()
    proc = subprocess.Popen(
        [*THERMO, "apply", str(path), "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(),
    )
    fed = [0]

    def feed() -> None:
        block = b"x" * MiB
        assert proc.stdin is not None
        try:
            proc.stdin.write(b'{"op": "create", "key": "k", "value": "')
            while fed[0] < TEN_GB:
                proc.stdin.write(block)
                fed[0] += len(block)
        except (BrokenPipeError, OSError, ValueError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    assert proc.stderr is not None and proc.stdout is not None
    err = proc.stderr.read()
    proc.wait(timeout=120)
    feeder.join(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    if proc.stdin is not None and not proc.stdin.closed:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    assert proc.returncode == 3, err
    assert b"line 1: line longer than the maximum of 67108864 bytes" in err and b"--max-line-bytes" in err
    assert fed[0] < 80 * MiB, fed[0]
    assert path.read_bytes() == before


def test_max_line_bytes_flag_raises_the_cap(tmp_path: Path, thermo: Thermo) -> None:
    path = tmp_path / "t.thermo"
    store.create(path, Thermogram(name="t"))
    line = orjson.dumps({"op": "create", "key": "big", "value": "v" * (2 * MiB)}) + b"\n"
    src = tmp_path / "big.jsonl"
    src.write_bytes(line)
    refused = thermo("apply", path, src, "--max-line-bytes", str(MiB))
    assert refused.code == 3 and f"maximum of {MiB} bytes" in refused.err
    accepted = thermo("apply", path, src, "--max-line-bytes", str(4 * MiB))
    assert accepted.code == 0, accepted.err
    assert len(store.read(path, "big").value) == 2 * MiB  # type: ignore[union-attr]


def test_megabyte_key_in_jsonl_is_refused_with_a_short_message(tmp_path: Path, thermo: Thermo) -> None:
    path = tmp_path / "t.thermo"
    store.create(path, Thermogram(name="t"))
    before = path.read_bytes()
    src = tmp_path / "k.jsonl"
    src.write_bytes(orjson.dumps({"op": "create", "key": "k" * MiB, "value": "v"}) + b"\n")
    run = thermo("apply", path, src)
    assert run.code == 3 and "4096" in run.err and len(run.err) < 300
    assert path.read_bytes() == before


def test_jsonl_tensor_with_gigantic_shape_is_refused_without_allocating() -> None:
    line = orjson.dumps(
        {
            "op": "create",
            "key": "t",
            "value": {"dtype": "f32", "shape": [100_000, 100_000, 100_000], "b64": "AAAA"},
        }
    )
    raised, peak = peak_while(lambda: DeltaParser().parse_line(1, line))
    assert isinstance(raised, ValidationError) and "shape" in str(raised) and peak < ALLOCATION_BOUND


def test_jsonl_meta_nesting_is_capped() -> None:
    for depth in (20, 5000):
        line = b'{"op": "create", "key": "k", "value": "v", "meta": ' + b"[" * depth + b"]" * depth + b"}"
        with pytest.raises(ValidationError, match=r"depth|deeper"):
            DeltaParser().parse_line(1, line)


def test_library_refuses_megabyte_key() -> None:
    with pytest.raises(ValidationError, match="4096"):
        Thermogram(name="t").create("k" * MiB, b"v")


# --- legacy JSON -----------------------------------------------------------------------------------


def _legacy_doc() -> dict[str, Any]:
    return orjson.loads((LEGACY / "v0.5" / "consolidated.thermo").read_bytes())


def test_legacy_file_over_the_size_cap_is_refused_before_parsing() -> None:
    from thermo_cli.formats.legacy import load_legacy

    data = (LEGACY / "v0.5" / "consolidated.thermo").read_bytes()
    raised, _ = peak_while(lambda: load_legacy(data, max_bytes=1000))
    assert isinstance(raised, LimitExceededError) and "1000" in str(raised)


def test_legacy_deep_json_is_refused() -> None:
    from thermo_cli.formats.legacy import load_legacy

    text = (LEGACY / "v0.5" / "small.thermo").read_text()
    i = text.index('"name"')
    j = text.index(",", i)
    data = (text[:i] + '"name": ' + "[" * 100_000 + "]" * 100_000 + text[j:]).encode()
    raised, peak = peak_while(lambda: load_legacy(data))
    assert isinstance(raised, FormatError) and peak < ALLOCATION_BOUND + 4 * len(data)


def test_legacy_megabyte_key_is_refused() -> None:
    from thermo_cli.formats.legacy import load_legacy

    doc = _legacy_doc()
    layers = ("hot_entries", "warm_entries", "cool_entries", "cold_entries")
    layer = next(name for name in layers if doc[name])
    key = next(iter(doc[layer]))
    entry = doc[layer].pop(key)
    entry["key"] = "k" * MiB
    doc[layer]["k" * MiB] = entry
    raised, _ = peak_while(lambda: load_legacy(orjson.dumps(doc)))
    assert isinstance(raised, FormatError | ValidationError) and "4096" in str(raised)


# --- safetensors -------------------------------------------------------------------------------------


def _import(tmp_path: Path, data: bytes) -> tuple[ThermoError | None, int, Path]:
    from thermo_cli.operations.safetensors import import_safetensors

    src = tmp_path / "in.safetensors"
    src.write_bytes(data)
    out = tmp_path / "out.thermo"
    raised, peak = peak_while(lambda: import_safetensors([src], out))
    assert isinstance(raised, ThermoError | None)
    return raised, peak, out  # type: ignore[return-value]


@pytest.mark.parametrize("header_len", [10**9, 2**63, 2**64 - 1])
def test_safetensors_header_length_beyond_the_cap(tmp_path: Path, header_len: int) -> None:
    raised, peak, out = _import(tmp_path, struct.pack("<Q", header_len) + b"{}" + bytes(100))
    assert isinstance(raised, LimitExceededError) and "100,000,000" in str(raised)
    assert peak < ALLOCATION_BOUND and not out.exists()


def test_safetensors_gigantic_shape(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 16]}}
    data = safetensors_bytes(header, bytes(16))
    raised, peak, out = _import(tmp_path, data)
    assert isinstance(raised, FormatError) and peak < ALLOCATION_BOUND and not out.exists()


def test_safetensors_offsets_beyond_the_file(tmp_path: Path) -> None:
    data = safetensors_bytes({"w": {"dtype": "F32", "shape": [2**20], "data_offsets": [0, 2**22]}}, bytes(16))
    raised, peak, out = _import(tmp_path, data)
    assert isinstance(raised, FormatError) and peak < ALLOCATION_BOUND and not out.exists()


def test_safetensors_megabyte_tensor_name(tmp_path: Path) -> None:
    data = safetensors_bytes({"k" * MiB: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(16))
    raised, _, out = _import(tmp_path, data)
    assert isinstance(raised, ValidationError | FormatError) and "4096" in str(raised) and not out.exists()


def test_limit_max_line_bytes_sets_the_cap_and_the_flag_still_wins(tmp_path: Path, thermo: Thermo) -> None:
    path = tmp_path / "t.thermo"
    store.create(path, Thermogram(name="t"))
    src = tmp_path / "line.jsonl"
    src.write_bytes(orjson.dumps({"op": "create", "key": "k", "value": "v" * 100}) + b"\n")
    refused = thermo("--limit", "max_line_bytes=64", "apply", path, src)
    assert refused.code == 3 and "maximum of 64 bytes" in refused.err
    accepted = thermo("--limit", "max_line_bytes=64", "apply", path, src, "--max-line-bytes", "1024")
    assert accepted.code == 0, accepted.err


# --- amplification: small files that decode to far more than their size -------------------

AMPLIFICATION = {
    "meta_2m_empty_maps": "max_cbor_items",
    "meta_huge_bytes": "max_meta_bytes",
    "index_too_many_items": "max_cbor_items",
}


@pytest.mark.parametrize("vector", sorted(AMPLIFICATION))
@pytest.mark.parametrize("command", ["keys", "stats", "apply"])
def test_amplification_vectors_fail_fast_through_the_cli(
    vector: str, command: str, tmp_path: Path, thermo: Thermo
) -> None:
    path = tmp_path / "attack.thermo"
    path.write_bytes((VECTORS / "broken" / f"{vector}.thermo").read_bytes())
    before = path.read_bytes()
    args: list[object] = [command, path]
    run = thermo(*args, input='{"op": "delete", "key": "k"}\n' if command == "apply" else None)
    assert run.code == 3, run
    assert run.err.count("\n") == 1 and f"{AMPLIFICATION[vector]}=" in run.err, run.err
    assert path.read_bytes() == before


@pytest.mark.parametrize("vector", sorted(AMPLIFICATION))
def test_amplification_vectors_fail_verify_naming_the_cap(vector: str, thermo: Thermo) -> None:
    run = thermo("verify", "--json", VECTORS / "broken" / f"{vector}.thermo")
    doc = orjson.loads(run.out)
    assert run.code == 1 and doc["ok"] is False and AMPLIFICATION[vector] in run.out


@pytest.mark.parametrize("vector", sorted(AMPLIFICATION))
def test_amplification_vectors_are_refused_before_allocating(vector: str) -> None:
    path = VECTORS / "broken" / f"{vector}.thermo"
    raised, peak = peak_while(lambda: store.load(path, layers="full", log="full"))
    assert isinstance(raised, LimitExceededError) and AMPLIFICATION[vector] in str(raised)
    assert peak < ALLOCATION_BOUND, peak


def test_raising_the_item_cap_reads_the_amplified_meta() -> None:
    path = VECTORS / "broken" / "meta_2m_empty_maps.thermo"
    tg = store.load(path, limits=Limits(max_cbor_items=2_100_000))
    assert len(tg.meta.custom) == 2_000_000


def test_torn_tail_search_stops_at_its_cap(tmp_path: Path) -> None:
    path = tmp_path / "torn.thermo"
    path.write_bytes(SMALL + bytes(3 * MiB))
    assert store.load(path).name  # a torn tail within the cap is ignored
    with pytest.raises(LimitExceededError, match="max_tail_scan_bytes=1048576"):
        store.load(path, limits=Limits(max_tail_scan_bytes=MiB))


def test_jsonl_line_of_empty_objects_is_refused_before_parsing() -> None:
    line = b'{"op": "delete", "key": "k", "meta": [' + b",".join([b"{}"] * 5000) + b"]}\n"
    raised, peak = peak_while(lambda: parse_text(line, limits=Limits(max_json_containers=1000)))
    assert isinstance(raised, LineLimitError) and raised.line == 1, raised
    assert "max_json_containers=1000" in str(raised) and peak < ALLOCATION_BOUND


def test_legacy_file_of_empty_objects_is_refused_before_parsing() -> None:
    from thermo_cli.formats.legacy import load_legacy

    doc = _legacy_doc()
    doc["padding"] = [{}] * 5000
    data = orjson.dumps(doc)
    with use_limits(Limits(max_json_containers=1000)):
        raised, peak = peak_while(lambda: load_legacy(data))
    assert isinstance(raised, LimitExceededError) and "max_json_containers=1000" in str(raised), raised
    assert peak < ALLOCATION_BOUND
