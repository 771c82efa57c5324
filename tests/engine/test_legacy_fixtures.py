"""The engine on the Rust crate's own save files (loaded by thermo_cli.formats.legacy).

Reads agree with what the crate's read() returned (the fixtures' manifests), the crate's
hash chains verify (and the tampered copies fail at the right record), and consolidating
with the fixed Merge/Delete semantics leaves every unpruned key reading the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thermo_cli.formats.legacy import load_legacy
from thermo_cli.model import Delta

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy"
CASES = [
    (version, f)
    for version in ("v0.4", "v0.5")
    for f in json.loads((LEGACY / version / "manifest.json").read_text())["files"]
    if f["load_ok"] and not f["file"].startswith("tampered")
]


@pytest.mark.parametrize(("version", "case"), CASES, ids=[f"{v}/{c['file']}" for v, c in CASES])
def test_crate_files_read_verify_and_consolidate_consistently(version, case):
    tg = load_legacy((LEGACY / version / case["file"]).read_bytes())
    for key, expected in case["reads"].items():
        got = tg.read(key)
        assert (None if got is None else got.hex()) == (None if expected is None else expected["hex"]), key
    deleted = {k for k, r in case["reads"].items() if r is None}
    assert tg.keys() == sorted(set(case["keys_visible"]) - deleted)
    assert tg.verify_chain().ok
    before = {k: tg.read(k) for k in tg}
    report = tg.consolidate()
    assert report.processed == case["chain_len"]
    for key, value in before.items():
        if key not in report.pruned_keys:
            assert tg.read(key) == value, key
    assert sum(isinstance(r, Delta) for r in tg.records) == case["chain_len"]  # history kept
    assert tg.verify_chain().ok


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
@pytest.mark.parametrize(
    ("name", "index", "reason"),
    [
        ("tampered_value", 1, "hash mismatch"),
        ("tampered_drop", 5, "prev_hash"),
        ("tampered_head", 9, "head hash"),
    ],
)
def test_tampered_crate_files_fail_at_the_changed_record(version, name, index, reason):
    tg = load_legacy((LEGACY / version / f"{name}.thermo").read_bytes())
    check = tg.verify_chain()
    assert not check.ok
    assert check.index == index
    assert reason in check.reason
