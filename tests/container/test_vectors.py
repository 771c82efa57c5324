"""Golden vectors decode to their JSON descriptions; broken vectors raise their error code."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import zstandard

from thermo_cli.container.reader import Reader
from thermo_cli.errors import FormatError, ThermoError
from thermo_cli.operations.audit.verify import verify_file

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "format" / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())


def _tool():
    spec = importlib.util.spec_from_file_location("make_vectors", ROOT / "format" / "make_vectors.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_vectors"] = mod
    spec.loader.exec_module(mod)
    return mod


TOOL = _tool()


@pytest.mark.parametrize("name", sorted(INDEX["golden"]))
def test_golden_vector_decodes_to_its_description(name: str) -> None:
    want = json.loads((VECTORS / f"{name}.json").read_text())
    got = json.loads(json.dumps(TOOL.describe(VECTORS / f"{name}.thermo"), ensure_ascii=False))
    assert got == want


@pytest.mark.parametrize("name", sorted(INDEX["golden"]))
def test_golden_vector_verifies(name: str) -> None:
    report = verify_file(VECTORS / f"{name}.thermo")
    assert report.ok, report.failure


@pytest.mark.parametrize("name", sorted(INDEX["broken"]))
def test_broken_vector_raises_its_error(name: str) -> None:
    spec = json.loads((VECTORS / "broken" / f"{name}.json").read_text())
    path = VECTORS / "broken" / f"{name}.thermo"
    with pytest.raises(ThermoError) as info:
        TOOL.run_op(path, spec["operation"])
    assert info.value.code == spec["error"], str(info.value)
    assert "\n" not in str(info.value)
    if isinstance(info.value, FormatError):  # the message says which file, once
        assert str(info.value).startswith(f"{path}: "), str(info.value)
        assert str(info.value).count(str(path)) == 1, str(info.value)


def test_torn_tail_vector_reports_its_tail() -> None:
    with Reader(VECTORS / "torn_tail.thermo") as r:
        assert r.torn_tail_bytes > 0
    assert verify_file(VECTORS / "torn_tail.thermo").torn_tail_bytes > 0


def test_multichunk_vector_really_spans_chunks() -> None:
    with Reader(VECTORS / "multichunk.thermo") as r:
        hot = r.index[next(iter(r.index))]
        assert len(hot.dirs) >= 2
        assert any(len(s.chunks) >= 2 for li in r.index.values() for s in li.streams)


@pytest.mark.skipif(zstandard.__version__ != INDEX["zstandard"], reason="zstd output differs across releases")
def test_regenerating_gives_identical_bytes(tmp_path: Path) -> None:
    TOOL.build_golden(tmp_path)
    for name in INDEX["golden"]:
        assert (tmp_path / f"{name}.thermo").read_bytes() == (VECTORS / f"{name}.thermo").read_bytes(), name
    for name, (data, code, _op, _why) in TOOL.broken_vectors(VECTORS / "small.thermo").items():
        assert data == (VECTORS / "broken" / f"{name}.thermo").read_bytes(), name
        assert INDEX["broken"][name] == code


def test_signed_vector_has_a_signed_head_under_the_test_key() -> None:
    report = verify_file(VECTORS / "signed.thermo", pubkeys=[TOOL.test_pubkey()], require_signed_head=True)
    assert report.ok, report.failure
    assert report.authentication["status"] == "signed" and report.authentication["signers"] == ["alice"]
    seed = (VECTORS / TOOL.TEST_KEY_FILE).read_text()
    assert "TEST KEY" in seed and TOOL.TEST_KEY_SEED.hex() in seed


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n in INDEX["broken"]
        if "plain_verify" in json.loads((VECTORS / "broken" / f"{n}.json").read_text())
    ),
)
def test_broken_vector_plain_verify_outcome(name: str) -> None:
    want = json.loads((VECTORS / "broken" / f"{name}.json").read_text())["plain_verify"]
    keys = [TOOL.test_pubkey()] if want["test_key"] else []
    report = verify_file(VECTORS / "broken" / f"{name}.thermo", pubkeys=keys)
    assert report.ok == want["ok"] and report.authentication["status"] == want["authentication"]


def test_config_tampered_vector_fails_the_meta_digest() -> None:
    report = verify_file(VECTORS / "broken" / "config_tampered.thermo", pubkeys=[TOOL.test_pubkey()])
    assert report.failure is not None and report.failure.check == "meta digest"
