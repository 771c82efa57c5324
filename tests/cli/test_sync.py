"""``--sync`` on every command that exports a file: without it the output still appears
atomically but is never fsynced (as ``cp`` and ``np.save``); with it the file and its
directory are fsynced. The bytes are the same either way. Thermograms are always fsynced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

Sync = tuple[str, int]


@pytest.fixture
def tensor_file(tmp_path: Path, thermo) -> Path:
    """A thermogram holding one packed tensor ``w``, with a checkpoint (for ``prove``)."""
    src = tmp_path / "w.npy"
    np.save(src, (np.random.default_rng(5).standard_normal((32, 48)) * 0.1).astype(np.float32))
    path = tmp_path / "w.thermo"
    assert thermo("ternary", "pack", src, path).code == 0
    assert thermo("checkpoint", path).code == 0
    return path


EXPORTS = {
    "ternary unpack": (lambda f, out: ["ternary", "unpack", f, out], "w.npy"),
    "ternary unpack .safetensors": (lambda f, out: ["ternary", "unpack", f, out], "w.safetensors"),
    "ternary pack .safetensors": (
        lambda f, out: ["ternary", "pack", f.with_name("w.npy"), out],
        "p.safetensors",
    ),
    "export": (lambda f, out: ["export", f, out], "dump.jsonl"),
    "export-safetensors": (lambda f, out: ["export-safetensors", f, out], "e.safetensors"),
    "get --as-npy": (lambda f, out: ["get", f, "w", "--as-npy", out], "g.npy"),
    "prove --out": (lambda f, out: ["prove", f, "w", "--out", out], "proof.json"),
    "checkpoint --out": (lambda f, out: ["checkpoint", f, "--out", out], "note.txt"),
}


@pytest.mark.parametrize("command", EXPORTS)
def test_sync_fsyncs_the_export_and_its_directory_and_only_then(command, tensor_file, thermo, syncs):
    argv, name = EXPORTS[command]
    outputs = {}
    for sync in (False, True):
        d = tensor_file.parent / ("synced" if sync else "plain")
        d.mkdir()
        out = d / name
        syncs.clear()
        run = thermo(*argv(tensor_file, out), *(["--sync"] if sync else []))
        assert run.code == 0, run.err
        mine = [kind for kind, ino in syncs if ino in (out.stat().st_ino, d.stat().st_ino)]
        assert mine == (["file", "dir"] if sync else [])
        assert [p.name for p in d.iterdir()] == [name]  # no temporary file left beside it
        outputs[sync] = out.read_bytes()
    assert outputs[False] == outputs[True]


def test_a_thermogram_output_is_fsynced_without_sync(tmp_path, thermo, syncs):
    src = tmp_path / "w.npy"
    np.save(src, np.ones((8, 8), dtype=np.float32))
    out = tmp_path / "new" / "w.thermo"
    out.parent.mkdir()
    assert thermo("ternary", "pack", src, out).code == 0
    kinds = {kind for kind, ino in syncs if ino in (out.stat().st_ino, out.parent.stat().st_ino)}
    assert "dir" in kinds and kinds & {"file", "data"}
