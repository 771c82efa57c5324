"""Writing the crate's format: engine-made thermograms come out as verifiable crate files."""

from __future__ import annotations

import pytest

from tests.formats.legacy._fixtures import fixture_bytes
from thermo_cli.config.engine import ConsolidationPolicy
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import ValidationError
from thermo_cli.formats.legacy import load_legacy, verify_legacy
from thermo_cli.formats.legacy.writer import dump_legacy
from thermo_cli.model import Entry, Layer, Ternary


def _engine_made() -> Thermogram:
    tg = Thermogram(name="made here", policy=ConsolidationPolicy.manual())
    tg.create("a", b"\x00\x01\xff", custom={"why": "test"})
    tg.update("a", b"second", strength=0.25)
    tg.consolidate()
    tg.create("b", bytes(range(256)), ternary=Ternary.NEG, observation_count=4)
    tg.merge("a", b"merged", strength=0.5)
    tg.delete("b")
    return tg


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_engine_deltas_get_the_crates_hashes_and_links(version):
    tg = _engine_made()
    back = load_legacy(dump_legacy(tg, version=version))
    report = verify_legacy(back)
    assert report.ok, report.failure
    dirty = tg.dirty_deltas()
    assert len(back.records) == len(dirty) == 3  # the chain restarts at the consolidation point
    for mine, theirs in zip(dirty, back.records, strict=True):
        assert (mine.key, mine.value, mine.strength, mine.ternary, mine.observation_count, mine.id) == (
            theirs.key,
            theirs.value,
            theirs.strength,
            theirs.ternary,
            theirs.observation_count,
            theirs.id,
        )
    assert back.records[0].prev_hash is None
    assert back.extras["legacy"]["head_hash"] == back.records[-1].hash
    for key in ("a", "b"):
        assert back.read(key) == tg.read(key)
    assert dict(back.layers[Layer.HOT]) == dict(tg.layers[Layer.HOT])
    assert back.meta == tg.meta


def test_04_refuses_entries_it_cannot_hold():
    tg = Thermogram()
    tg.layers[Layer.WARM]["w"] = Entry("w", b"x", 0.5, 0)
    with pytest.raises(ValidationError, match="warm"):
        dump_legacy(tg, version="0.4")
    assert load_legacy(dump_legacy(tg)).layers[Layer.WARM]["w"].value == b"x"
    with pytest.raises(ValidationError, match="version"):
        dump_legacy(tg, version="0.6")


def test_a_tampered_chain_is_written_as_it_is():
    data = fixture_bytes("v0.4", "tampered_head.thermo")
    assert dump_legacy(load_legacy(data), version="0.4") == data
