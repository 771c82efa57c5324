"""The crate's genuine save files (tests/fixtures/legacy) and their manifests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

LEGACY_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "legacy"
VERSIONS = ("v0.4", "v0.5")
TAMPERED = {
    "tampered_value.thermo": ("legacy hashes", 1),
    "tampered_drop.thermo": ("legacy links", 5),
    "tampered_head.thermo": ("legacy head", 9),
}


@cache
def manifest(version: str) -> dict[str, Any]:
    return json.loads((LEGACY_DIR / version / "manifest.json").read_text(encoding="utf-8"))


def manifest_entries() -> list[tuple[str, dict[str, Any]]]:
    """(version, manifest entry) for every save file of both crate versions."""
    return [(v, f) for v in VERSIONS for f in manifest(v)["files"]]


def fixture_bytes(version: str, name: str) -> bytes:
    return (LEGACY_DIR / version / name).read_bytes()


def fixture_ids() -> list[str]:
    return [f"{v}/{f['file']}" for v, f in manifest_entries()]
