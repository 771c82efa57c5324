"""``--to URL`` on the commands that make a new file, and ``thermo upload``: the file is
written locally, verified, uploaded, and no local or remote leftover remains either way."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.cli.conftest import LEGACY_SMALL, SAMPLES, Thermo
from thermo_cli import store


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The system temporary directory for the test (to see that nothing stays there), and
    an empty ``memory://up/`` store."""
    tmp = tmp_path / "systmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    fs = fsspec.filesystem("memory")
    fs.mkdir("/up")
    yield tmp
    fs.rm("/up", recursive=True)


def _objects() -> list[str]:
    return sorted(fsspec.filesystem("memory").find("/up"))


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    for s in range(3):
        tensors = {
            f"s{s}.w": rng.standard_normal((32, 32)).astype(np.float32),
            f"s{s}.b": np.ones(4, np.float32),
        }
        save_file(tensors, str(tmp_path / f"part-{s}.safetensors"))
    return tmp_path


def test_import_safetensors_to_a_url(thermo: Thermo, scratch: Path, shards: Path) -> None:
    r = thermo(
        "import-safetensors",
        str(shards / "part-*.safetensors"),
        "--to",
        "memory://up/m.thermo",
        "--jobs",
        "2",
        "--json",
    )
    assert r.code == 0, r.err
    assert json.loads(r.out)["out"] == "memory://up/m.thermo"
    assert "uploaded" in r.err
    assert _objects() == ["/up/m.thermo"]
    tg = store.load("memory://up/m.thermo")
    assert tg.name == "m" and len(tg.keys()) == 6
    assert list(scratch.iterdir()) == []  # the local file is gone
    again = thermo("import-safetensors", str(shards / "part-0.safetensors"), "--to", "memory://up/m.thermo")
    assert again.code == 4 and again.err.startswith("thermo: error: memory://up/m.thermo: already exists")
    assert (
        thermo(
            "import-safetensors",
            str(shards / "part-0.safetensors"),
            "--to",
            "memory://up/m.thermo",
            "--force",
        ).code
        == 0
    )
    assert len(store.load("memory://up/m.thermo").keys()) == 2


def test_import_jsonl_and_migrate_to_urls(thermo: Thermo, scratch: Path, tmp_path: Path) -> None:
    r = thermo("import-jsonl", SAMPLES / "deltas.jsonl", "--to", "memory://up/from-jsonl.thermo")
    assert r.code == 0, r.err
    assert "into memory://up/from-jsonl.thermo" in r.err
    m = thermo("migrate", LEGACY_SMALL, "--to", "memory://up/migrated.thermo", "--json")
    assert m.code == 0, m.err
    assert json.loads(m.out)["target"] == "memory://up/migrated.thermo"
    assert _objects() == ["/up/from-jsonl.thermo", "/up/migrated.thermo"]
    assert store.load("memory://up/from-jsonl.thermo").name == "from-jsonl"
    assert list(scratch.iterdir()) == []


def test_out_and_to_are_alternatives(thermo: Thermo, scratch: Path, tmp_path: Path) -> None:
    both = thermo("migrate", LEGACY_SMALL, tmp_path / "x.thermo", "--to", "memory://up/x.thermo")
    assert both.code == 2 and "one of them" in both.err
    neither = thermo("import-jsonl", SAMPLES / "deltas.jsonl")
    assert neither.code == 2
    assert _objects() == [] and not (tmp_path / "x.thermo").exists()


def test_bad_targets_fail_before_any_work(thermo: Thermo, scratch: Path, shards: Path) -> None:
    http = thermo(
        "import-safetensors", str(shards / "part-0.safetensors"), "--to", "https://example.invalid/m.thermo"
    )
    assert http.code == 3 and http.err.count("\n") == 1 and "HTTP(S) servers take no uploads" in http.err
    missing = thermo("import-jsonl", SAMPLES / "deltas.jsonl", "--to", f"file://{shards}/no-dir/m.thermo")
    assert missing.code == 6 and "no such bucket or directory" in missing.err
    assert list(scratch.iterdir()) == []


def test_a_failed_upload_leaves_nothing(
    thermo: Thermo, scratch: Path, shards: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    def broken_put(self: object, *args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(MemoryFileSystem, "put_file", broken_put)
    r = thermo("import-safetensors", str(shards / "part-0.safetensors"), "--to", "memory://up/m.thermo")
    assert r.code == 3
    assert r.err.strip() == "thermo: error: memory://up/m.thermo: upload failed: network is unreachable"
    assert _objects() == [] and list(scratch.iterdir()) == []


def test_upload_command(thermo: Thermo, scratch: Path, filled: Path) -> None:
    r = thermo("upload", filled, "memory://up/run/t.thermo", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["bytes"] == filled.stat().st_size
    listed = thermo("keys", "memory://up/run/t.thermo")
    assert listed.code == 0 and listed.out == thermo("keys", filled).out != ""
    assert thermo("upload", filled, "memory://up/run/t.thermo").code == 4
    assert thermo("upload", filled, "memory://up/run/t.thermo", "--force").code == 0
    damaged = filled.with_name("damaged.thermo")
    data = bytearray(filled.read_bytes())
    data[len(data) // 2] ^= 0x10
    damaged.write_bytes(bytes(data))
    bad = thermo("upload", damaged, "memory://up/run/damaged.thermo")
    assert bad.code == 3 and "damaged.thermo" in bad.err
    assert _objects() == ["/up/run/t.thermo"]
