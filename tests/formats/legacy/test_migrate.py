"""Migration keeps the legacy chain, continues it, drops nothing and never touches OLD."""

from __future__ import annotations

import hashlib
import io
import json
import shutil

import pytest

from tests.conftest import clock_after
from tests.formats.legacy._fixtures import LEGACY_DIR, TAMPERED, fixture_bytes, manifest_entries
from thermo_cli import store
from thermo_cli.config.clock import use_clock
from thermo_cli.errors import ChainError, IntegrityError, RefusedError, ValidationError
from thermo_cli.formats.legacy import load_legacy
from thermo_cli.formats.legacy.jsondoc import MAX_CUSTOM_DEPTH
from thermo_cli.formats.legacy.verify import NOTE_UNCOVERED_FIELDS
from thermo_cli.integrity import merkle
from thermo_cli.integrity.state import state_digest
from thermo_cli.model import Delta, Event, HashScheme, Layer
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.migrate import (
    import_engram_file,
    migrate_file,
    prepare_migration,
    record_migration,
)

GOOD = [(v, f) for v, f in manifest_entries() if f["file"] not in TAMPERED]
GOOD_IDS = [f"{v}/{f['file']}" for v, f in GOOD]


def _copy(tmp_path, version: str, name: str):
    src = tmp_path / f"{version}-{name}"
    shutil.copyfile(LEGACY_DIR / version / name, src)
    return src


def _same_delta(a: Delta, b: Delta) -> bool:
    fields = (
        "id",
        "delta_type",
        "key",
        "value",
        "strength",
        "timestamp_ns",
        "source",
        "ternary",
        "observation_count",
        "custom",
        "prev_hash",
        "hash",
        "scheme",
    )
    return all(getattr(a, f) == getattr(b, f) for f in fields)


@pytest.mark.parametrize(("version", "info"), GOOD, ids=GOOD_IDS)
def test_migrated_file_keeps_everything(tmp_path, version, info):
    old = _copy(tmp_path, version, info["file"])
    before = old.read_bytes()
    new = tmp_path / "new.thermo"
    result = migrate_file(old, new)
    assert old.read_bytes() == before  # OLD is only read
    assert result.legacy_deltas == info["chain_len"]
    assert result.source_sha256 == hashlib.sha256(before).hexdigest()

    original = load_legacy(before)
    tg = store.load(new, layers="full", log="full")
    assert (tg.id, tg.name) == (original.id, original.name)
    assert (tg.thermal, tg.plasticity, tg.policy, tg.meta) == (
        original.thermal,
        original.plasticity,
        original.policy,
        original.meta,
    )
    for layer in Layer:
        assert dict(tg.layers[layer]) == dict(original.layers[layer])
    n = info["chain_len"]
    assert len(tg.records) == n + 1
    assert all(_same_delta(a, b) for a, b in zip(tg.records[:n], original.records, strict=True))
    assert all(r.scheme is HashScheme.LEGACY for r in tg.records[:n])

    event = tg.records[-1]
    assert isinstance(event, Event) and event.kind == "migrate"
    assert event.prev_hash == (info["head_hash"] if n else None)  # the new chain continues
    assert event.fields["source_sha256"] == hashlib.sha256(before).digest()
    assert event.fields["source_version"] == version[1:]
    assert event.fields["crate_version"] == f"{version[1:]}.x"
    assert event.fields["legacy_deltas"] == n
    # the crate's dirty deltas are still dirty; with none, the migration's binding closes the tail
    assert tg.dirty_start == (0 if n else 1)
    for key, expected in info["reads"].items():
        got = store.read(new, key)
        assert (got is None) == (expected is None)
        if got is not None:
            assert hashlib.sha256(got.value).hexdigest() == expected["sha256"]
            assert got.source == expected["from"]

    report = verify_file(new)
    assert report.ok, report.failure


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_export_round_trip_shows_the_same_content(tmp_path, version):
    exchange = pytest.importorskip("thermo_cli.formats.dump")
    old = _copy(tmp_path, version, "consolidated.thermo")
    new = tmp_path / "new.thermo"
    migrate_file(old, new)

    def lines(tg):
        buf = io.BytesIO()
        exchange.export_jsonl(tg, tg.records, buf, log_length=tg.log_length, head_hash=tg.head_hash)
        return buf.getvalue().splitlines()

    before = lines(store.load(old, log="full"))
    after = lines(store.load(new, layers="full", log="full"))
    assert before[1:] == after[1 : len(before)]  # entries and legacy deltas, line for line
    assert b'"migrate"' in after[-1]
    head_before, head_after = json.loads(before[0]), json.loads(after[0])
    del head_before["meta"]["extras"]["legacy"]
    for header in (head_before, head_after):
        del header["log_length"], header["head_hash"]
    assert head_before == head_after  # name, id, configuration and metadata


def test_consolidating_after_migration_folds_the_legacy_deltas(tmp_path):
    old = _copy(tmp_path, "v0.5", "small.thermo")
    new = tmp_path / "new.thermo"
    migrate_file(old, new)
    with store.locked(new):
        tg = store.load(new)
        tg.consolidate()
        store.commit(new, tg)
    tg = store.load(new, layers="full", log="full")
    assert tg.dirty_count == 0 and tg.records[-1].kind == "consolidate"
    assert tg.read("greeting") == b"merged!"
    assert verify_file(new).ok


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
@pytest.mark.parametrize("name", sorted(TAMPERED))
def test_broken_chains_are_refused(tmp_path, version, name):
    old = _copy(tmp_path, version, name)
    new = tmp_path / "new.thermo"
    _check, index = TAMPERED[name]
    with pytest.raises(IntegrityError, match=f"at delta {index}"):
        migrate_file(old, new)
    assert not new.exists()


def test_existing_output_needs_overwrite_and_the_source_is_never_replaced(tmp_path):
    old = _copy(tmp_path, "v0.5", "small.thermo")
    new = tmp_path / "new.thermo"
    new.write_bytes(b"precious")
    with pytest.raises(RefusedError):
        migrate_file(old, new)
    assert new.read_bytes() == b"precious"
    migrate_file(old, new, overwrite=True)
    assert store.sniff(new) == "thermo"
    before = old.read_bytes()
    for target in (old, tmp_path / "." / old.name):
        with pytest.raises(RefusedError, match="source file itself"):
            migrate_file(old, target, overwrite=True)
    assert old.read_bytes() == before


def test_wrong_kinds_are_refused_with_a_hint(tmp_path):
    export = _copy(tmp_path, "v0.5", "export_small.json")
    with pytest.raises(RefusedError, match="import-engram"):
        migrate_file(export, tmp_path / "a.thermo")
    save = _copy(tmp_path, "v0.5", "small.thermo")
    with pytest.raises(RefusedError, match="thermo migrate"):
        import_engram_file(save, tmp_path / "b.thermo")
    migrate_file(save, tmp_path / "c.thermo")
    with pytest.raises(RefusedError, match=r"already a \.thermo container"):
        migrate_file(tmp_path / "c.thermo", tmp_path / "d.thermo")


def test_import_engram_file(tmp_path):
    export = _copy(tmp_path, "v0.4", "export_small.json")
    out = tmp_path / "imported.thermo"
    result = import_engram_file(export, out)
    assert result.entries["hot"] == 4
    tg = store.load(out, layers="full", log="full")
    assert tg.keys() == ["bytes/utf8", "empty_value", "greeting", "vec/a"]
    assert tg.records[0].kind == "import"
    assert verify_file(out).ok


def test_record_migration_needs_a_legacy_thermogram():
    tg = load_legacy(fixture_bytes("v0.5", "small.thermo"))
    record_migration(tg, b"", source="x")
    with pytest.raises(ValidationError, match="not loaded from a Rust-crate save file"):
        record_migration(tg, b"", source="x")


def test_prepare_migration_does_not_need_a_file():
    tg = prepare_migration(fixture_bytes("v0.5", "fourtemp.thermo"), source="mem")
    assert "legacy" not in tg.extras
    assert tg.head_hash == tg.records[-1].hash


def test_deepest_accepted_custom_json_survives_migration(tmp_path):
    doc = json.loads(fixture_bytes("v0.5", "small.thermo"))
    deep: object = [1, 2]
    for i in range(MAX_CUSTOM_DEPTH - 1):
        deep = {f"level{i}": deep}
    doc["metadata"]["custom"] = deep
    doc["dirty_chain"]["deltas"][0]["metadata"]["custom"] = deep  # not hashed by the crate
    old = tmp_path / "deep.thermo"
    old.write_text(json.dumps(doc, indent=2))
    new = tmp_path / "new.thermo"
    migrate_file(old, new)
    tg = store.load(new, layers="full", log="full")
    assert tg.meta.custom == deep and tg.records[0].custom == deep
    assert verify_file(new).ok


# --- the migrate event binds the state; in-place upgrades are migrations ------------------------


def _migrate_fields(tg) -> dict:
    event = tg.records[-1]
    assert isinstance(event, Event) and event.kind == "migrate"
    return dict(event.fields)


@pytest.mark.parametrize(("version", "name"), [("v0.4", "consolidated.thermo"), ("v0.5", "fourtemp.thermo")])
def test_the_migrate_event_binds_log_and_layers(tmp_path, version, name):
    old = _copy(tmp_path, version, name)
    new = tmp_path / "new.thermo"
    migrate_file(old, new)
    tg = store.load(new, layers="full", log="full")
    f = _migrate_fields(tg)
    n = len(tg.records) - 1
    assert f["log_size"] == n
    assert f["log_root"] == merkle.root([r.encoded for r in tg.records[:n]])
    assert f["state_digest"] == state_digest(tg.layers)
    report = verify_file(new)
    assert report.ok, report.failure
    detail = next(c.detail for c in report.checks if c.name == "state digest")
    assert f"bound at record {n} (migrate)" in detail
    assert NOTE_UNCOVERED_FIELDS in report.notes  # the crate's recipe leaves fields unhashed


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_an_in_place_upgrade_is_a_migration(tmp_path, version):
    old = _copy(tmp_path, version, "small.thermo")
    before = old.read_bytes()
    migrated = tmp_path / "migrated.thermo"
    migrate_file(old, migrated)
    with store.locked(old):
        tg = store.load(old)
        assert store.commit(old, tg, upgrade=True) == "rewrite"
    assert store.sniff(old) == "thermo"
    a = store.load(migrated, layers="full", log="full")
    b = store.load(old, layers="full", log="full")
    fa, fb = _migrate_fields(a), _migrate_fields(b)
    assert fb["source_sha256"] == hashlib.sha256(before).digest() and fb["source_size"] == len(before)
    assert fa == fb
    assert [r.hash for r in a.records[:-1]] == [r.hash for r in b.records[:-1]]
    assert all(dict(a.layers[x]) == dict(b.layers[x]) for x in Layer)
    assert "legacy" not in b.extras and a.extras == b.extras
    assert verify_file(old).ok


@pytest.mark.clock
def test_an_upgrade_after_an_operation_logs_the_migration_last(tmp_path):
    old = _copy(tmp_path, "v0.5", "small.thermo")
    # within 24 h of the crate's last consolidation: the update stays dirty
    with use_clock(clock_after(old, 1)), store.locked(old):
        tg = store.load(old)
        tg.update("added", b"after the crate", strength=0.5)
        store.commit(old, tg, upgrade=True)
    tg = store.load(old, layers="full", log="full")
    kinds = [getattr(r, "kind", None) or r.scheme.name for r in tg.records]
    assert kinds[-1] == "migrate" and kinds[-2] == "V2" and "LEGACY" in kinds
    assert tg.read("added") == b"after the crate"
    assert verify_file(old).ok


@pytest.mark.clock
def test_an_operation_years_after_the_crate_consolidates_before_the_migration(tmp_path):
    """The kept 24 h trigger fires on the first delta after years; migrate still comes last."""
    old = _copy(tmp_path, "v0.5", "small.thermo")
    later = clock_after(old, 24 * 365 * 7)
    with use_clock(later), store.locked(old):
        tg = store.load(old)
        tg.update("added", b"after the crate", strength=0.5)
        store.commit(old, tg, upgrade=True)
    tg = store.load(old, layers="full", log="full")
    kinds = [getattr(r, "kind", None) or r.scheme.name for r in tg.records]
    assert tg.log_length == 13
    assert kinds[-3:] == ["V2", "consolidate", "migrate"]
    assert tg.meta.last_consolidation_ns == later()
    assert tg.read("added") == b"after the crate"
    assert verify_file(old).ok


def test_an_upgrade_of_a_broken_chain_is_refused_and_leaves_the_file(tmp_path):
    old = _copy(tmp_path, "v0.5", "tampered_value.thermo")
    before = old.read_bytes()
    tg = store.load(old)
    with pytest.raises(IntegrityError, match="refusing to migrate a broken chain"):
        store.commit(old, tg, upgrade=True)
    assert old.read_bytes() == before


def test_an_upgrade_refuses_another_or_a_changed_file(tmp_path):
    a = _copy(tmp_path, "v0.5", "small.thermo")
    b = _copy(tmp_path, "v0.5", "fourtemp.thermo")
    before = b.read_bytes()
    with pytest.raises(RefusedError, match="different file"):
        store.commit(b, store.load(a), upgrade=True)
    assert b.read_bytes() == before
    tg = store.load(a)
    a.write_bytes(a.read_bytes() + b"\n")  # someone else saved it meanwhile
    changed = a.read_bytes()
    with pytest.raises(ChainError, match="changed by another writer"):
        store.commit(a, tg, upgrade=True)
    assert a.read_bytes() == changed


def test_crate_files_are_size_checked_before_they_are_read(tmp_path, monkeypatch):
    import thermo_cli.formats.legacy as legacy_pkg
    import thermo_cli.operations.audit.verify as verify_module
    from thermo_cli.errors import LimitExceededError

    real = legacy_pkg.read_legacy_file
    capped = lambda p, **kw: real(p, max_bytes=100)  # noqa: E731
    monkeypatch.setattr(legacy_pkg, "read_legacy_file", capped)
    monkeypatch.setattr(verify_module, "read_legacy_file", capped)  # imported at its module level
    old = _copy(tmp_path, "v0.5", "small.thermo")
    with pytest.raises(LimitExceededError, match=r"exceeds the legacy file (limit|cap)"):
        store.load(old)
    with pytest.raises(LimitExceededError, match=r"exceeds the legacy file (limit|cap)"):
        verify_file(old)
