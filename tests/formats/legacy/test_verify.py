"""The crate's chain check, reproduced: what passes, what fails (first index + reason), limits."""

from __future__ import annotations

import json

import pytest

from tests.formats.legacy._fixtures import TAMPERED, fixture_bytes, manifest_entries
from thermo_cli.codec.records import legacy_delta_hash
from thermo_cli.formats.legacy import legacy_hash, load_legacy, verify_legacy
from thermo_cli.formats.legacy.verify import NOTE_NULL_HEAD, NOTE_UNCOVERED_FIELDS, uncovered_layers_note

GOOD = [(v, f) for v, f in manifest_entries() if f["load_ok"]]
BAD = [(v, f) for v, f in manifest_entries() if not f["load_ok"]]


def _edited(version: str, edit) -> bytes:  # edit: a function changing the parsed JSON
    doc = json.loads(fixture_bytes(version, "small.thermo"))
    edit(doc)
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()


@pytest.mark.parametrize(("version", "info"), GOOD, ids=[f"{v}/{f['file']}" for v, f in GOOD])
def test_untampered_fixtures_pass(version, info):
    report = verify_legacy(fixture_bytes(version, info["file"]), path=info["file"])
    assert report.ok, report.failure
    assert report.records == info["chain_len"]
    chain = next(c for c in report.checks if c.name == "legacy chain")
    assert chain.detail == f"{info['chain_len']} deltas OK"
    assert NOTE_UNCOVERED_FIELDS in report.notes
    assert any(n.startswith("no hash covers") for n in report.notes)


@pytest.mark.parametrize(
    ("entries", "wording"),
    [
        (0, "no hash covers the configuration (the file holds no layer entries)"),
        (1, "no hash covers the 1 layer entry (hot/warm/cool/cold) or the configuration"),
        (7, "no hash covers the 7 layer entries (hot/warm/cool/cold) or the configuration"),
    ],
)
def test_the_uncovered_layers_note_fits_the_count(entries, wording):
    assert uncovered_layers_note(entries) == wording


def test_a_file_without_entries_does_not_speak_of_0_entries():
    report = verify_legacy(fixture_bytes("v0.5", "empty.thermo"), path="empty.thermo")
    assert "no hash covers the configuration (the file holds no layer entries)" in report.notes
    assert not any("0 layer entries" in n for n in report.notes)


@pytest.mark.parametrize(("version", "info"), BAD, ids=[f"{v}/{f['file']}" for v, f in BAD])
def test_tampered_fixtures_fail_at_the_crates_index(version, info):
    report = verify_legacy(fixture_bytes(version, info["file"]), path=info["file"])
    check, index = TAMPERED[info["file"]]
    assert not report.ok
    assert report.failure.check == check
    assert report.failure.index == index
    # the crate said the same: "Delta 1 hash…", "Delta 5 does not link…", "Head hash…"
    crate = info["load_error"]
    if check != "legacy head":
        assert f"Delta {index} " in crate
    word = {"legacy hashes": "hash", "legacy links": "link", "legacy head": "head"}[check]
    assert word in report.failure.reason


def test_report_counts_and_json():
    report = verify_legacy(fixture_bytes("v0.5", "tampered_value.thermo"))
    doc = report.to_json()
    assert doc["ok"] is False
    hashes = next(c for c in report.checks if c.name == "legacy hashes")
    assert (hashes.ok, hashes.count) == (False, 9)
    assert report.failure.key == "vec/a"


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
@pytest.mark.parametrize(
    "spell",
    [
        lambda t: t[:-1] + ("" if "." in t else ".") + "0" * (9 - len(t[:-1].partition(".")[2])) + "Z",
        lambda t: t[:-1] + "+00:00",
        lambda t: t.replace("T16:", "T18:")[:-1] + "+02:00",
        lambda t: t.replace("2026-11-22T16:", "2026-11-21T22:")[:-1] + "-18:00",
    ],
    ids=["nine-digits", "plus-zero", "plus-two-hours", "minus-eighteen-hours"],
)
def test_timestamps_respelled_by_other_tools_still_verify(version, spell):
    def respell(doc):
        for d in doc["dirty_chain"]["deltas"]:
            d["metadata"]["timestamp"] = spell(d["metadata"]["timestamp"])

    data = _edited(version, respell)
    before = [
        d["metadata"]["timestamp"]
        for d in json.loads(fixture_bytes(version, "small.thermo"))["dirty_chain"]["deltas"]
    ]
    after = [d["metadata"]["timestamp"] for d in json.loads(data)["dirty_chain"]["deltas"]]
    assert before != after
    assert verify_legacy(data).ok


def test_changed_instant_fails_at_that_delta():
    def shift(doc):
        doc["dirty_chain"]["deltas"][3]["metadata"]["timestamp"] = "2026-11-22T16:06:31Z"

    report = verify_legacy(_edited("v0.5", shift))
    assert (report.failure.check, report.failure.index) == ("legacy hashes", 3)


def test_null_head_skips_the_head_check_and_says_so():
    def drop_tail(doc):
        doc["dirty_chain"]["head_hash"] = None
        doc["dirty_chain"]["deltas"].pop()

    report = verify_legacy(_edited("v0.5", drop_tail))
    assert report.ok  # the crate accepts it too: the limit is reported, not hidden
    assert NOTE_NULL_HEAD in report.notes
    head = next(c for c in report.checks if c.name == "legacy head")
    assert head.detail.startswith("not checked")


def test_uncovered_fields_can_change_without_failing_and_the_report_says_so():
    def edit(doc):
        meta = doc["dirty_chain"]["deltas"][0]["metadata"]
        meta["ternary_strength"] = "Pos"
        meta["observation_count"] = 99
        meta["custom"] = {"forged": True}

    report = verify_legacy(_edited("v0.5", edit))
    assert report.ok
    assert "ternary_strength, observation_count or custom" in report.notes[0]


def test_first_delta_with_a_prev_hash_fails_at_index_0():
    def edit(doc):
        doc["dirty_chain"]["deltas"][0]["prev_hash"] = "00" * 32

    report = verify_legacy(_edited("v0.5", edit))
    assert report.failure.index == 0
    # its hash covers prev_hash, so the hash check fails first at the same index
    assert report.failure.check == "legacy hashes"


def test_reordered_deltas_fail_at_the_first_moved_one():
    def edit(doc):
        d = doc["dirty_chain"]["deltas"]
        d[2], d[3] = d[3], d[2]

    report = verify_legacy(_edited("v0.4", edit))
    assert (report.failure.check, report.failure.index) == ("legacy links", 2)


def test_head_on_an_empty_chain_fails():
    doc = json.loads(fixture_bytes("v0.5", "empty.thermo"))
    doc["dirty_chain"]["head_hash"] = "ab" * 32
    report = verify_legacy(json.dumps(doc).encode())
    assert not report.ok
    assert report.failure.check == "legacy head"


def test_hash_recipe_matches_the_shared_one():
    tg = load_legacy(fixture_bytes("v0.5", "custom_metadata.thermo"))
    for d in tg.records:
        assert legacy_hash(d) == legacy_delta_hash(d) == d.hash


def test_verify_accepts_a_loaded_thermogram():
    tg = load_legacy(fixture_bytes("v0.4", "tampered_drop.thermo"))
    report = verify_legacy(tg, path="x.thermo")
    assert report.path == "x.thermo"
    assert report.failure.index == 5
    assert report.format.startswith("legacy 0.4")
