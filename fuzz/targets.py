"""Fuzz targets shared by the atheris entry points (``fuzz/fuzz_*.py``) and the hypothesis tests.

Each target takes untrusted bytes and drives one reader the way the CLI does. The
contract under test: the only exceptions that escape are :mod:`thermo_cli.errors`
classes (a clean one-line error for the user); anything else is a bug. Readers run with
reduced :data:`FUZZ_LIMITS` so that "no allocation beyond the caps" can be checked by
measuring peak memory against a small bound.

Seed corpora come from the golden and broken container vectors (``format/vectors``), the
Rust crate's save files (``tests/fixtures/legacy``), the sample delta stream and the
sample checkpoint (``samples/``); see :func:`seed_corpus`.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from thermo_cli.config.limits import Limits
from thermo_cli.errors import ThermoError, ValidationError
from thermo_cli.operations.audit.verify import verify_file

ROOT = Path(__file__).resolve().parents[1]
KiB = 1024
MiB = 1024 * KiB

FUZZ_LIMITS = Limits(
    max_chunk_bytes=1 * MiB,
    max_block_bytes=1 * MiB,
    max_trailer_bytes=256 * KiB,
    max_record_bytes=1 * MiB,
    max_segment_bytes=2 * MiB,
    max_value_bytes=4 * MiB,
    max_entries_per_chunk=100_000,
    max_chunks=100_000,
    max_segments=100_000,
    max_streams=64,
    max_trailer_chain=10_000,
)
"""Caps for fuzzing: far below the defaults, so exceeding them shows up as memory."""

FUZZ_MAX_LINE = 256 * KiB
FUZZ_MAX_LEGACY = 4 * MiB

_scratch = tempfile.mkdtemp(prefix="thermo-fuzz-")


def _scratch_path(name: str) -> str:
    return os.path.join(_scratch, f"{os.getpid()}-{name}")


def _write(name: str, data: bytes) -> str:
    path = _scratch_path(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# --- targets ------------------------------------------------------------------------------------


def container_target(data: bytes) -> None:
    """Open as a container: full load (every chunk and record), lazy key reads, verification."""
    from thermo_cli import store

    path = _write("in.thermo", data)
    try:
        tg = store.load(path, layers="full", log="full", limits=FUZZ_LIMITS)
        tg.state_digest()
        lazy = store.load(path, limits=FUZZ_LIMITS)
        for key in list(lazy.keys())[:8]:
            lazy.read_entry(key)
        verify_file(path, limits=FUZZ_LIMITS)
    finally:
        os.unlink(path)


def legacy_target(data: bytes) -> None:
    """Read as a Rust-crate save file and as an Engram export, and verify the chain."""
    from thermo_cli.formats.legacy import load_legacy, sniff_engram, verify_legacy
    from thermo_cli.formats.legacy.engram import load_engram

    if sniff_engram(data):
        load_engram(data, source="fuzz", max_bytes=FUZZ_MAX_LEGACY).state_digest()
        return
    tg = load_legacy(data, source="fuzz", max_bytes=FUZZ_MAX_LEGACY)
    verify_legacy(tg, path="fuzz")
    tg.state_digest()


def jsonl_target(data: bytes) -> None:
    """Split into lines (capped) and parse each as a delta; apply the good ones to a thermogram.

    Accepts when at least one line became a delta, so that the statistics of a run show
    how much reached the engine; a bad line is refused like ``thermo apply --skip-invalid``.
    """
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.formats.jsonl import DeltaParser, Limits, iter_lines

    parser = DeltaParser(source="fuzz", limits=Limits(max_line_bytes=FUZZ_MAX_LINE))
    tg = Thermogram(name="fuzz")
    applied = 0
    for lineno, line in iter_lines(io.BytesIO(data), max_line_bytes=FUZZ_MAX_LINE):
        try:
            tg.apply(parser.parse_line(lineno, line))
            applied += 1
        except ThermoError:
            continue
    tg.consolidate()
    if not applied:
        raise ValidationError("no line of the stream is a valid delta")


def safetensors_target(data: bytes) -> None:
    """Import as a safetensors checkpoint into a new thermogram; a refused input writes nothing."""
    from thermo_cli.operations.safetensors import import_safetensors

    src = _write("in.safetensors", data)
    out = _scratch_path("out.thermo")
    try:
        import_safetensors([src], out)
    except ThermoError:
        if os.path.exists(out):
            raise AssertionError("a refused safetensors import left its output file behind") from None
        raise
    finally:
        os.unlink(src)
        if os.path.exists(out):
            os.unlink(out)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "container": container_target,
    "legacy": legacy_target,
    "jsonl": jsonl_target,
    "safetensors": safetensors_target,
}


def run_one(target: Callable[[bytes], None], data: bytes) -> bool:
    """Run ``target``; True if it accepted the input, False if it refused it cleanly.

    Any exception other than a ThermoError propagates: that is the bug a fuzzer reports.
    """
    try:
        target(data)
    except ThermoError:
        return False
    return True


# --- seed corpora ------------------------------------------------------------------------------


def _files(directory: Path, *patterns: str) -> Iterator[Path]:
    for pattern in patterns:
        yield from sorted(directory.glob(pattern))


def seed_corpus(name: str) -> list[bytes]:
    """The seed inputs of a target, from the repository's golden, legacy and sample files."""
    if name == "container":
        paths = list(_files(ROOT / "format" / "vectors", "*.thermo", "broken/*.thermo"))
        return [p.read_bytes() for p in paths]
    if name == "legacy":
        legacy = ROOT / "tests" / "fixtures" / "legacy"
        return [p.read_bytes() for p in _files(legacy, "*/*.thermo", "*/export_*.json")]
    if name == "jsonl":
        text = (ROOT / "samples" / "deltas.jsonl").read_bytes()
        lines = [line for line in text.splitlines() if line.strip()]
        return [text, *lines]
    if name == "safetensors":
        return [(ROOT / "samples" / "checkpoint.safetensors").read_bytes(), *small_safetensors()]
    raise KeyError(name)


def safetensors_bytes(header: dict[str, object], payload: bytes) -> bytes:
    """A safetensors file from a header dict and the data section (no validation)."""
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + payload


def small_safetensors() -> list[bytes]:
    """Tiny valid checkpoints covering several dtypes and shapes (0-d and empty included)."""
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    return [
        save(
            {"w": rng.normal(size=(3, 4)).astype(np.float32), "b": np.arange(4, dtype=np.int64)},
            metadata={"format": "np"},
        ),
        save({"scalar": np.array(1.5, dtype=np.float16), "empty": np.zeros((0, 3), dtype=np.uint8)}),
        save({"flags": np.array([True, False]), "i8": np.array([-1, 2], dtype=np.int8)}),
    ]
