"""`thermo ternary pack|unpack` and `thermo quantize`, through typer's CliRunner on tmp files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands
from thermo_cli import store
from thermo_cli.cli._common import app
from thermo_cli.codec.tensors import from_float32, to_float32, value_to_array
from thermo_cli.model import Event, Layer, TensorSpec
from thermo_cli.operations.audit.verify import verify_file

from .test_quantize import weight_like


def run(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    w = weight_like((64, 96), 1)
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "enc.weight": w,
            "enc.bias": w[0].copy(),
            "ids": np.arange(7, dtype=np.int64),
            "half": w[:8].astype(np.float16),
            "empty": np.zeros((0, 3), np.float32),
        },
        str(path),
        metadata={"format": "pt", "note": "test"},
    )
    return path


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "w.npy"
    np.save(path, weight_like((32, 40), 2))
    return path


def test_pack_npy_to_safetensors_and_back(npy, tmp_path):
    packed = tmp_path / "w.ternary.safetensors"
    r = run("ternary", "pack", npy, packed, "--method", "absmean", "--per-row")
    assert r.exit_code == 0, r.stderr
    assert "size:" in r.stderr and "rel L2 error" in r.stderr and "cosine" in r.stderr
    with safe_open(str(packed), framework="numpy") as f:
        meta = f.metadata()
        assert f.get_tensor("w").dtype == np.uint8 and f.get_tensor("w").shape == (32 * 40 // 4,)
        assert f.get_tensor("w.ternary_scales").shape == (32,)
    layout = json.loads(meta["thermo.ternary"])
    assert layout["w"]["method"] == "absmean" and layout["w"]["per_row"] is True
    assert layout["w"]["shape"] == [32, 40] and "2bit" in meta["thermo.ternary.layout"]
    back = tmp_path / "back.npy"
    r = run("ternary", "unpack", packed, back)
    assert r.exit_code == 0, r.stderr and "recorded at pack time" in r.stderr
    restored = np.load(back)
    original = np.load(npy)
    scales = load_file(str(packed))["w.ternary_scales"]
    assert restored.dtype == np.float32 and restored.shape == original.shape
    assert set(np.unique(np.round(restored / scales[:, None], 6))) <= {-1.0, 0.0, 1.0}
    rel = np.linalg.norm(restored - original) / np.linalg.norm(original)
    assert rel == pytest.approx(layout["w"]["rel_l2"], rel=1e-5)


def test_pack_safetensors_keeps_other_tensors_and_metadata(model, tmp_path):
    packed = tmp_path / "p.safetensors"
    r = run("ternary", "pack", model, packed, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    # enc.bias (1-D) stays exact by default: rank >= 2 only
    assert doc["packed"] == 2 and doc["copied"] == 3 and doc["file_after"] < doc["file_before"] / 6
    plain = load_file(str(packed))
    assert plain["ids"].tolist() == list(range(7)) and plain["empty"].shape == (0, 3)
    assert plain["enc.bias"].tobytes() == load_file(str(model))["enc.bias"].tobytes()
    back = tmp_path / "back.safetensors"
    assert run("ternary", "unpack", packed, back).exit_code == 0
    with safe_open(str(back), framework="numpy") as f:
        assert f.metadata() == {"format": "pt", "note": "test"}
        names = set(f.keys())
    assert names == {"enc.weight", "enc.bias", "ids", "half", "empty"}
    restored = load_file(str(back))
    assert restored["half"].dtype == np.float16 and restored["enc.weight"].dtype == np.float32
    assert np.array_equal(restored["ids"], np.arange(7))
    for row in restored["enc.weight"]:  # absmean per row by default: -scale, 0, +scale per row
        assert np.unique(row).size == 3
    assert restored["enc.bias"].tobytes() == load_file(str(model))["enc.bias"].tobytes()


def test_pack_to_thermo_and_unpack(model, tmp_path):
    out = tmp_path / "m.thermo"
    r = run("ternary", "pack", model, out, "--layer", "warm", "--strength", "0.5", "-m", "absmean")
    assert r.exit_code == 0, r.stderr
    tg = store.load(out, layers="full", log="full")
    entries = tg.layers[Layer.WARM]
    assert set(entries) == {"enc.weight", "enc.bias", "ids", "half", "empty"}
    spec = entries["enc.weight"].tensor
    assert spec.encoding == "ternary" and spec.method == "absmean"
    assert len(entries["enc.weight"].value) == 64 * 96 // 4
    assert entries["ids"].tensor == TensorSpec("I64", (7,)) and entries["enc.weight"].strength == 0.5
    kinds = [r.kind for r in tg.records if isinstance(r, Event)]
    assert kinds == ["extension"] + ["import"] * 5 + ["checkpoint"]  # provenance, tensors, binding
    assert verify_file(out).ok
    codes = value_to_array(entries["enc.weight"].value, spec, dequantize=False)
    assert codes.dtype == np.int8 and codes.shape == (64, 96)
    back = tmp_path / "w.npy"
    r = run("ternary", "unpack", out, back, "--key", "half")
    assert r.exit_code == 0, r.stderr
    assert np.load(back).dtype == np.float16
    r = run("ternary", "unpack", out, tmp_path / "all.safetensors")
    assert r.exit_code == 0 and load_file(str(tmp_path / "all.safetensors"))["ids"].tolist() == list(range(7))


def test_pack_to_thermo_records_the_checkpoint_as_an_import_does(model, tmp_path):
    out = tmp_path / "m.thermo"
    assert run("ternary", "pack", model, out).exit_code == 0
    meta = {"format": "pt", "note": "test"}
    extras = store.load(out).extras["safetensors"]
    assert extras == {
        "metadata": meta,
        "index_metadata": None,
        "files": [
            {"file": "model.safetensors", "metadata": meta, "tensors": 5, "bytes": model.stat().st_size}
        ],
    }
    r = run("export-safetensors", out, tmp_path / "e.safetensors")
    assert r.exit_code == 0, r.stderr
    with safe_open(str(tmp_path / "e.safetensors"), framework="numpy") as f:
        assert f.metadata() == meta


def test_bf16_input(tmp_path):
    from thermo_cli.formats.safetensors.format import OutTensor, write_safetensors

    w = weight_like((16, 24), 3)
    bits = from_float32(w, "BF16")
    src = tmp_path / "bf.safetensors"
    write_safetensors(src, [OutTensor("w", "BF16", (16, 24))], lambda t: bits.tobytes())
    packed = tmp_path / "bf.packed.safetensors"
    assert run("ternary", "pack", src, packed).exit_code == 0
    back = tmp_path / "bf.back.safetensors"
    assert run("ternary", "unpack", packed, back).exit_code == 0
    from thermo_cli.formats.safetensors.format import open_safetensors

    sf = open_safetensors(back)
    assert [(t.name, t.dtype, t.shape) for t in sf.tensors] == [("w", "BF16", (16, 24))]
    npy_out = tmp_path / "bf.npy"
    assert run("ternary", "unpack", packed, npy_out).exit_code == 0
    values = np.load(npy_out)
    assert values.dtype == np.float32
    for row in values:  # one scale per row, rounded to BF16
        assert set(np.unique(np.abs(row)).tolist()) <= {
            0.0,
            float(to_float32(from_float32(np.array([np.abs(row).max()], np.float32), "BF16"), "BF16")[0]),
        }


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ternary", "pack", "{d}/w.npy", "{d}/out.bin"], 3, "must be a .thermo or .safetensors file"),
        (["ternary", "pack", "{d}/missing.npy", "{d}/o.thermo"], 6, "no such file"),
        (["ternary", "pack", "{d}/ints.npy", "{d}/o.thermo"], 3, "needs a float tensor, got dtype I32"),
        (
            ["ternary", "pack", "{d}/nan.npy", "{d}/o.thermo"],
            3,
            "2 non-finite values (NaN/Inf), first at index (1, 0)",
        ),
        (["ternary", "pack", "{d}/empty.npy", "{d}/o.thermo"], 3, "has no elements"),
        (["ternary", "pack", "{d}/junk.npy", "{d}/o.thermo"], 3, "not a readable .npy file"),
        (["ternary", "pack", "{d}/w.npy", "{d}/o.thermo", "--threshold", "0"], 3, "threshold"),
        (["ternary", "pack", "{d}/w.npy", "{d}/exists.thermo"], 4, "already exists"),
        (["ternary", "pack", "{d}/w.npy", "{d}/o.thermo", "--layer", "lukewarm"], 3, "layer"),
        (["ternary", "unpack", "{d}/plain.safetensors", "{d}/o.npy"], 3, "is not ternary-packed"),
        (
            ["ternary", "unpack", "{d}/w.npy", "{d}/o.npy"],
            3,
            "unpack input must be a .thermo or .safetensors",
        ),
        (["quantize", "{d}/missing.thermo"], 6, "no such file"),
        (["quantize", "{d}/legacy.thermo"], 4, "thermo migrate"),
    ],
)
def test_bad_input_leaves_files_alone(tmp_path, fixtures_dir, args, code, message):
    np.save(tmp_path / "w.npy", np.ones((2, 4), np.float32))
    np.save(tmp_path / "ints.npy", np.ones(4, np.int32))
    nan = np.ones((3, 2), np.float32)
    nan[1, 0] = np.nan
    nan[2, 1] = np.inf
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "empty.npy", np.zeros((0,), np.float32))
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    (tmp_path / "exists.thermo").write_bytes(b"keep me")
    save_file({"x": np.ones(3, np.float32)}, str(tmp_path / "plain.safetensors"))
    (tmp_path / "legacy.thermo").write_bytes((fixtures_dir / "legacy" / "v0.5" / "small.thermo").read_bytes())
    before = snapshot(tmp_path)
    r = run(*[a.format(d=tmp_path) for a in args])
    assert r.exit_code == code, (r.exit_code, r.stderr)
    assert message in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("thermo: error:")
    assert snapshot(tmp_path) == before


def test_nan_as_zero_and_force(tmp_path):
    nan = weight_like((4, 8), 9)
    nan[0, 3] = np.nan
    src = tmp_path / "n.npy"
    np.save(src, nan)
    out = tmp_path / "n.safetensors"
    out.write_bytes(b"old")
    r = run("ternary", "pack", src, out, "--nan-as-zero", "--force")
    assert r.exit_code == 0, r.stderr
    back = tmp_path / "b.npy"
    assert run("ternary", "unpack", out, back).exit_code == 0
    assert np.load(back)[0, 3] == 0.0


def test_quantize_in_place_is_audited(model, tmp_path):
    raw = tmp_path / "raw.thermo"
    r = run("import-safetensors", model, raw)
    assert r.exit_code == 0, r.stderr
    before = raw.read_bytes()
    r = run("quantize", raw, "--dry-run", "--json", "--min-rank", "1")
    assert r.exit_code == 0 and json.loads(r.stdout)["packed"] == 3
    r = run("quantize", raw, "--dry-run", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["packed"] == 2  # enc.bias is 1-D
    r = run("quantize", raw)  # irreversible: refused without --force
    assert r.exit_code == 4 and r.stderr.count("\n") == 1
    assert str(raw) in r.stderr and "--force" in r.stderr
    assert raw.read_bytes() == before
    r = run(
        "quantize", raw, "--method", "absmean", "--per-row", "--min-rank", "1", "--exclude", "enc.bias", "-f"
    )
    assert r.exit_code == 0, r.stderr
    assert "quantized 2 entries" in r.stderr and "rel L2 error" in r.stderr
    tg = store.load(raw, layers="full", log="full")
    cool = tg.layers[Layer.COOL]
    assert cool["enc.weight"].tensor.encoding == "ternary" and cool["enc.weight"].tensor.per_row
    assert cool["half"].tensor.encoding == "ternary" and cool["half"].tensor.dtype == "F16"
    assert cool["enc.bias"].tensor.encoding == "raw" and cool["ids"].tensor.encoding == "raw"
    events = [r for r in tg.records if isinstance(r, Event)]
    quantized = [e for e in events if e.kind == "quantize"]
    assert sorted(e.fields["key"] for e in quantized) == ["enc.weight", "half"]
    for e in quantized:
        assert e.fields["method"] == "absmean" and len(e.fields["digest"]) == 32
        assert e.fields["digest"] == hashlib.sha256(cool[e.fields["key"]].value).digest()
    assert events[-1].kind == "consolidate"
    assert verify_file(raw).ok
    r = run("quantize", raw, "--force")
    assert r.exit_code == 0 and "nothing to quantize" in r.stderr  # enc.bias: 1-D
    r = run("quantize", raw, "--force", "--min-rank", "1")
    assert r.exit_code == 0 and "quantized 1 entry" in r.stderr
    again = raw.read_bytes()
    r = run("quantize", raw, "--force", "--min-rank", "1")
    assert r.exit_code == 0 and "nothing to quantize" in r.stderr
    assert raw.read_bytes() == again
    r = run("quantize", raw, "--layer", "hot", "--force")
    assert "nothing to quantize" in r.stderr


def test_help_lists_commands():
    r = run("ternary", "--help")
    assert r.exit_code == 0 and "pack" in r.stdout and "unpack" in r.stdout
    assert "--method" in run("quantize", "--help").stdout


def test_unpack_reads_export_keep_ternary_files(model, tmp_path):
    """`export-safetensors --keep-ternary` writes the same layout `ternary unpack` reads."""
    packed_thermo = tmp_path / "m.thermo"
    assert run("ternary", "pack", model, packed_thermo, "--per-row").exit_code == 0
    kept = tmp_path / "kept.safetensors"
    r = run("export-safetensors", packed_thermo, kept, "--keep-ternary")
    assert r.exit_code == 0, r.stderr
    back = tmp_path / "back.safetensors"
    r = run("ternary", "unpack", kept, back)
    assert r.exit_code == 0, r.stderr
    direct = tmp_path / "direct.safetensors"
    d = run("ternary", "unpack", packed_thermo, direct)
    assert d.exit_code == 0
    a, b = load_file(str(back)), load_file(str(direct))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # the export carries the errors recorded at pack time: both unpacks report the same figures
    quality = [line for line in r.stderr.splitlines() if line.startswith("reconstruction")]
    assert quality and "rel L2 error" in quality[0]
    assert quality == [line for line in d.stderr.splitlines() if line.startswith("reconstruction")]


def test_unpack_of_a_kept_export_without_recorded_errors_says_so(tmp_path):
    """Ternary entries no pack/import/quantize event rated: the export records no figures
    and unpack says they are unknown, not that the tensors were never packed."""
    from thermo_cli.codec.tensors import ternary_encode_tensor
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import Entry

    arr = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    value, spec, _ = ternary_encode_tensor(arr, dtype="F32")
    tg = Thermogram(name="bare")
    tg.layers[Layer.HOT]["w"] = Entry(key="w", value=value, strength=0.9, updated_at_ns=1, tensor=spec)
    store.create(tmp_path / "bare.thermo", tg)
    kept = tmp_path / "kept.safetensors"
    assert run("export-safetensors", tmp_path / "bare.thermo", kept, "--keep-ternary").exit_code == 0
    with safe_open(kept, framework="numpy") as f:
        assert "rel_l2" not in json.loads(f.metadata()["thermo.ternary"])["w"]
    r = run("ternary", "unpack", kept, tmp_path / "back.safetensors")
    assert r.exit_code == 0, r.stderr
    assert "reconstruction error: unknown (no figures were recorded" in r.stderr


def test_a_recorded_error_is_dropped_once_the_value_changes(model, tmp_path):
    from thermo_cli.operations.history import recorded_quality

    packed = tmp_path / "m.thermo"
    assert run("ternary", "pack", model, packed).exit_code == 0
    before = recorded_quality(packed)
    name = sorted(before)[0]
    deltas = tmp_path / "d.jsonl"
    deltas.write_text(json.dumps({"op": "update", "key": name, "value": "replaced"}) + "\n")
    r = run("apply", packed, deltas)
    assert r.exit_code == 0, r.stderr
    after = recorded_quality(packed)
    assert name not in after and set(after) == set(before) - {name}
