"""Legacy files are recognised by content, from the first bytes only."""

from __future__ import annotations

import json

import pytest

from tests.formats.legacy._fixtures import LEGACY_DIR, fixture_bytes
from thermo_cli.formats.legacy import sniff_engram, sniff_legacy

SAVE_FILES = sorted(p.relative_to(LEGACY_DIR).as_posix() for p in LEGACY_DIR.glob("v0.*/*.thermo"))


@pytest.mark.parametrize("name", SAVE_FILES)
def test_every_save_file_is_legacy_from_its_first_kilobyte(name):
    head = (LEGACY_DIR / name).read_bytes()[:1024]
    assert sniff_legacy(head) and not sniff_engram(head)


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_engram_exports(version):
    head = fixture_bytes(version, "export_small.json")[:1024]
    assert sniff_engram(head) and not sniff_legacy(head)


def test_other_key_orders_and_layouts():
    doc = json.loads(fixture_bytes("v0.5", "small.thermo"))
    sorted_compact = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert sniff_legacy(sorted_compact[:200])
    assert sniff_legacy(b"\xef\xbb\xbf\r\n  " + sorted_compact[:200])


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"THERMO\x00\x01",
        b"[]",
        b'{"id": "x", "name": "y"}',
        b'{"hot_entries" 1}',
        b'# "hot_entries": {',
        b'{"kind": "thermogram", "format": "thermo-jsonl"}',
        b"\x00" * 64,
        fixture_bytes("v0.5", "manifest.json")[:1024],
    ],
)
def test_other_content_is_not_legacy(head):
    assert not sniff_legacy(head)
    assert not sniff_engram(head)
