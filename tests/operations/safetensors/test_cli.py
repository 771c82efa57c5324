"""``thermo import-safetensors`` / ``export-safetensors`` through CliRunner: output and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands on the app
from tests.operations.safetensors.crafting import craft, write
from thermo_cli import store
from thermo_cli.cli._common import app
from thermo_cli.model import Layer

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "checkpoint.safetensors"


def thermo(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_import_then_export_round_trip(tmp_path: Path) -> None:
    code, out, err = thermo("import-safetensors", SAMPLE, tmp_path / "c.thermo")
    assert code == 0, err
    assert out == ""
    assert "imported 43 tensors" in err and "cool layer" in err
    code, out, err = thermo("export-safetensors", tmp_path / "c.thermo", tmp_path / "c.safetensors")
    assert code == 0, err
    assert "exported 43 tensors" in err
    assert (tmp_path / "c.safetensors").read_bytes()[8:] != b""
    a, b = SAMPLE.read_bytes(), (tmp_path / "c.safetensors").read_bytes()
    hlen_a, hlen_b = int.from_bytes(a[:8], "little"), int.from_bytes(b[:8], "little")
    assert a[8 + hlen_a :] == b[8 + hlen_b :]  # same tensor bytes in the same order


def test_json_output_and_options(tmp_path: Path) -> None:
    code, out, err = thermo(
        "import-safetensors",
        SAMPLE,
        tmp_path / "t.thermo",
        "--ternary",
        "--method",
        "absmean",
        "--per-row",
        "--layer",
        "cold",
        "--strength",
        "0.7",
        "--prefix",
        "m/",
        "--exclude",
        "pooler.*",
        "--name",
        "mini",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["layer"] == "cold" and doc["ternary"] == 15 and doc["skipped"] == 2
    assert all(q["key"].startswith("m/") for q in doc["ternary_quality"])
    tg = store.load(tmp_path / "t.thermo")
    assert tg.name == "mini" and len(tg.layers[Layer.COLD]) == 41
    code, out, err = thermo(
        "export-safetensors",
        tmp_path / "t.thermo",
        tmp_path / "k.safetensors",
        "--keep-ternary",
        "--prefix",
        "m/",
        "--layer",
        "cold",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["tensors"] == 41 and doc["ternary_kept"] == 15 and doc["layers"] == ["cold"]


def test_several_inputs_then_out(tmp_path: Path) -> None:
    save_file({"a": np.arange(3, dtype=np.int32)}, tmp_path / "a.safetensors")
    save_file({"b": np.ones((2, 2), np.float64)}, tmp_path / "b.safetensors")
    code, _, err = thermo(
        "import-safetensors", tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "ab.thermo"
    )
    assert code == 0, err
    code, _, err = thermo("export-safetensors", tmp_path / "ab.thermo", tmp_path / "ab.safetensors")
    assert code == 0, err
    got = load_file(tmp_path / "ab.safetensors")
    assert got["a"].dtype == np.int32 and got["b"].shape == (2, 2)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    code, _, err = thermo("import-safetensors", SAMPLE, tmp_path / "d.thermo", "--dry-run")
    assert code == 0 and "would import 43 tensors" in err
    assert not (tmp_path / "d.thermo").exists()


@pytest.mark.parametrize(
    ("blob", "needle"),
    [
        (
            craft({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, header_len=999),
            "invalid header length",
        ),
        (
            craft(
                {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                b"\0" * 8,
                header_len=200_000_000,
            ),
            "exceeds the 100,000,000-byte cap",
        ),
        (
            craft({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
            "invalid shape, data type, or offset",
        ),
        (
            craft(
                {"__metadata__": {"k": 7}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0"
            ),
            "expected a string",
        ),
        (b"\x05\x00", "header too small"),
    ],
)
def test_malformed_input_exits_3_with_one_line_and_touches_nothing(
    tmp_path: Path, blob: bytes, needle: str
) -> None:
    bad = write(tmp_path / "bad.safetensors", blob)
    out = tmp_path / "o.thermo"
    out.write_bytes(b"keep me")
    before = sorted(os.listdir(tmp_path))
    code, stdout, err = thermo("import-safetensors", bad, out, "--force")
    assert code == 3
    assert stdout == ""
    assert err.startswith("thermo: error: ") and needle in err and err.count("\n") == 1
    assert out.read_bytes() == b"keep me" and sorted(os.listdir(tmp_path)) == before


def test_exit_codes_for_refused_missing_and_usage(tmp_path: Path) -> None:
    (tmp_path / "x.thermo").write_bytes(b"keep")
    code, _, err = thermo("import-safetensors", SAMPLE, tmp_path / "x.thermo")
    assert code == 4 and "already exists" in err
    code, _, err = thermo("import-safetensors", tmp_path / "nope.safetensors", tmp_path / "y.thermo")
    assert code == 6 and "no such file" in err
    code, _, err = thermo("import-safetensors", SAMPLE)
    assert code == 2
    code, _, err = thermo("import-safetensors", SAMPLE, tmp_path / "y.thermo", "--method", "absmean")
    assert code == 2 and "--ternary" in err
    code, _, err = thermo(
        "import-safetensors", SAMPLE, tmp_path / "y.thermo", "--ternary", "--method", "nope"
    )
    assert code == 2
    code, _, err = thermo("import-safetensors", SAMPLE, tmp_path / "y.safetensors")
    assert code == 3 and "LAST argument is the output" in err
    assert sorted(os.listdir(tmp_path)) == ["x.thermo"]
    thermo("import-safetensors", SAMPLE, tmp_path / "ok.thermo")
    (tmp_path / "exists.safetensors").write_bytes(b"keep")
    code, _, err = thermo("export-safetensors", tmp_path / "ok.thermo", tmp_path / "exists.safetensors")
    assert code == 4 and (tmp_path / "exists.safetensors").read_bytes() == b"keep"
    code, _, err = thermo(
        "export-safetensors", tmp_path / "ok.thermo", tmp_path / "z.safetensors", "--layer", "hot"
    )
    assert code == 3 and "no tensor entries" in err
    assert not (tmp_path / "z.safetensors").exists()
