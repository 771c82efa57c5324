"""Helpers: small thermogram files, re-sealed (consistently forged) logs, key pairs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from thermo_cli import store
from thermo_cli.codec import records
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.operations.audit import keys


def make_tg(n: int = 30, *, consolidate: bool = True, tail: int = 4, seed: int = 0) -> Thermogram:
    """n deltas over 6 keys, a consolidation (state bound), then ``tail`` more deltas."""
    tg = Thermogram(name="audit-test")
    for i in range(n):
        tg.update(
            f"key{i % 6}",
            f"value {seed} {i}".encode(),
            strength=0.875,
            timestamp_ns=1_700_000_000_000_000_000 + i,
        )
    if consolidate:
        tg.consolidate()
    for i in range(tail):
        tg.update(f"new{i}", b"tail value", strength=0.5, timestamp_ns=1_700_000_100_000_000_000 + i)
    return tg


def find_entry(tg: Thermogram, key: str):
    """(layer, entry) of the hottest layer holding ``key``."""
    for layer, mapping in tg.layers.items():
        if key in mapping:
            return layer, mapping[key]
    raise KeyError(key)


def write(path: Path, tg: Thermogram) -> Path:
    store.create(path, tg, overwrite=True)
    return path


def load_full(path: Path) -> Thermogram:
    """A thermogram with every record and entry in memory, detached from its file."""
    tg = store.load(path, layers="full", log="full")
    tg.persisted = 0  # writing it elsewhere must write these records, not copy the file's
    return tg


def reseal(tg: Thermogram, start: int) -> None:
    """Re-link and re-hash records from ``start`` on: a forger's consistent rewrite."""
    recs = tg.records
    for i in range(start, len(recs)):
        rec = recs[i]
        rec.prev_hash = recs[i - 1].hash if i else None
        rec.encoded = None
        rec.hash = None
        records.seal(rec)
    tg.head_hash = recs[-1].hash if recs else None


@pytest.fixture
def thermo_file(tmp_path: Path) -> Path:
    return write(tmp_path / "t.thermo", make_tg())


@pytest.fixture
def keypair(tmp_path: Path):
    """(private key path, PublicKey) of 'alice'."""
    path = tmp_path / "alice"
    pub = keys.generate(path)
    return path, pub


def file_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


def flip(path: Path, offset: int, out: Path, mask: int = 0x01) -> Path:
    data = bytearray(file_bytes(path))
    data[offset] ^= mask
    out.write_bytes(bytes(data))
    os.utime(out)
    return out
