"""thermo migrate / thermo import-engram, and legacy files through the other commands."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Thermo
from thermo_cli import store
from thermo_cli.operations.audit.verify import verify_file

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def _copy(tmp_path: Path, version: str, name: str) -> Path:
    dest = tmp_path / f"{version}-{name}"
    shutil.copyfile(LEGACY / version / name, dest)
    return dest


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_migrate_writes_a_verifiable_container(tmp_path: Path, thermo: Thermo, version: str):
    old = _copy(tmp_path, version, "consolidated.thermo")
    before = old.read_bytes()
    new = tmp_path / "new.thermo"
    r = thermo("migrate", old, new)
    assert r.code == 0, r.err
    assert r.out == ""
    assert "3 legacy deltas kept" in r.err and "2 hot, 4 cold" in r.err
    assert old.read_bytes() == before
    assert store.sniff(new) == "thermo"
    assert verify_file(new).ok
    manifest = json.loads((LEGACY / version / "manifest.json").read_text())
    reads = next(f for f in manifest["files"] if f["file"] == "consolidated.thermo")["reads"]
    for key, expected in reads.items():
        got = store.read(new, key)
        assert (got is None) == (expected is None)
        if got is not None:
            assert hashlib.sha256(got.value).hexdigest() == expected["sha256"]


def test_migrate_json_output(tmp_path: Path, thermo: Thermo):
    old = _copy(tmp_path, "v0.5", "small.thermo")
    r = thermo("migrate", old, tmp_path / "n.thermo", "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["legacy_deltas"] == 10 and doc["crate_version"] == "0.5.x"
    assert doc["source_sha256"] == hashlib.sha256(old.read_bytes()).hexdigest()


def test_migrate_refuses_to_overwrite_without_force(tmp_path: Path, thermo: Thermo):
    old = _copy(tmp_path, "v0.5", "small.thermo")
    new = tmp_path / "n.thermo"
    new.write_bytes(b"keep me")
    r = thermo("migrate", old, new)
    assert r.code == 4 and "--force" in r.err and r.err.count("\n") == 1
    assert new.read_bytes() == b"keep me"
    assert thermo("migrate", old, new, "--force").code == 0
    assert store.sniff(new) == "thermo"


def test_migrate_never_writes_over_the_source(tmp_path: Path, thermo: Thermo):
    old = _copy(tmp_path, "v0.5", "small.thermo")
    before = old.read_bytes()
    r = thermo("migrate", old, old, "--force")
    assert r.code == 4 and "source file itself" in r.err
    assert old.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "index"),
    [("tampered_value.thermo", 1), ("tampered_drop.thermo", 5), ("tampered_head.thermo", 9)],
)
def test_migrate_refuses_a_broken_chain(tmp_path: Path, thermo: Thermo, name: str, index: int):
    old = _copy(tmp_path, "v0.4", name)
    new = tmp_path / "n.thermo"
    r = thermo("migrate", old, new)
    assert r.code == 3
    assert f"at delta {index}" in r.err and r.err.startswith("thermo: error: ")
    assert not new.exists()


def test_migrate_bad_json_is_one_line_naming_the_path(tmp_path: Path, thermo: Thermo):
    doc = json.loads((LEGACY / "v0.5" / "small.thermo").read_bytes())
    doc["dirty_chain"]["deltas"][3]["value"][17] = 300
    old = tmp_path / "bad.thermo"
    old.write_text(json.dumps(doc, indent=2))
    r = thermo("migrate", old, tmp_path / "n.thermo")
    assert r.code == 3
    assert r.err == f"thermo: error: {old}: dirty_chain.deltas[3].value[17]: 300 is not a byte (0..255)\n"


def test_migrate_missing_file_and_wrong_kinds(tmp_path: Path, thermo: Thermo):
    assert thermo("migrate", tmp_path / "nope.thermo", tmp_path / "n.thermo").code == 6
    export = _copy(tmp_path, "v0.5", "export_small.json")
    r = thermo("migrate", export, tmp_path / "n.thermo")
    assert r.code == 4 and "import-engram" in r.err


def test_import_engram(tmp_path: Path, thermo: Thermo):
    export = _copy(tmp_path, "v0.4", "export_small.json")
    out = tmp_path / "imported.thermo"
    r = thermo("import-engram", export, out, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["entries"]["hot"] == 4
    assert store.read(out, "greeting").value == b"hello again"
    assert thermo("import-engram", export, out).code == 4
    assert thermo("import-engram", export, out, "--force").code == 0
    r = thermo("import-engram", _copy(tmp_path, "v0.5", "small.thermo"), tmp_path / "x.thermo")
    assert r.code == 4 and "thermo migrate" in r.err


def test_help_lists_the_commands(thermo: Thermo):
    r = thermo("--help")
    assert "migrate" in r.out and "import-engram" in r.out
