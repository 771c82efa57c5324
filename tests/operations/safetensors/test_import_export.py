"""import → thermogram → export: bit-exact for every dtype, audited, sharded, filtered, atomic."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from tests.operations.safetensors.crafting import craft, write
from thermo_cli import errors, store
from thermo_cli.integrity.state import state_digest
from thermo_cli.model import Event, Layer
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.safetensors import (
    DTYPE_BITS,
    EXTRAS_KEY,
    OutTensor,
    StreamedEntry,
    TernaryOptions,
    export_safetensors,
    import_safetensors,
    iter_tensor_bytes,
    open_safetensors,
    tensor_nbytes,
    write_safetensors,
)

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "checkpoint.safetensors"
settings.register_profile("st", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def tensors_of(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    sf = open_safetensors(path)
    return {info.name: (info.dtype, info.shape, data) for info, data in iter_tensor_bytes(sf)}


def make(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]], metadata=None) -> Path:
    specs = [OutTensor(n, d, s) for n, (d, s, _) in tensors.items()]
    return write_safetensors(path, specs, lambda t: tensors[t.name][2], metadata, overwrite=True)


@st.composite
def checkpoints(draw: st.DrawFn) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Every safetensors dtype, shapes from 0-d to 4-d including empty ones."""
    names = draw(
        st.lists(st.text("abcxyz._0123", min_size=1, max_size=8), min_size=1, max_size=5, unique=True)
    )
    out = {}
    for name in names:
        dtype = draw(st.sampled_from(sorted(DTYPE_BITS)))
        shape = draw(
            st.lists(st.integers(0, 4), max_size=4)
            .map(tuple)
            .filter(lambda s, d=dtype: math.prod(s) * DTYPE_BITS[d] % 8 == 0)
        )
        n = tensor_nbytes(dtype, shape)
        out[name] = (dtype, shape, draw(st.binary(min_size=n, max_size=n)))
    return out


@settings(settings.get_profile("st"), max_examples=25)
@given(
    tensors=checkpoints(),
    meta=st.none() | st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
)
def test_round_trip_is_bit_exact_for_every_dtype(
    tmp_path_factory: pytest.TempPathFactory, tensors, meta
) -> None:
    d = tmp_path_factory.mktemp("rt")
    src = make(d / "in.safetensors", tensors, meta)
    import_safetensors([src], d / "m.thermo")
    export_safetensors(d / "m.thermo", d / "out.safetensors")
    assert tensors_of(d / "out.safetensors") == tensors
    assert open_safetensors(d / "out.safetensors").metadata == meta


def test_sample_round_trip_matches_the_original_and_loads_with_numpy(tmp_path: Path) -> None:
    report = import_safetensors([SAMPLE], tmp_path / "c.thermo")
    assert report.tensors == 43 and report.ternary == 0
    assert {"F32", "F16", "BF16", "I64", "BOOL", "F8_E4M3"} <= set(report.dtypes)
    export_safetensors(tmp_path / "c.thermo", tmp_path / "c.safetensors")
    assert tensors_of(tmp_path / "c.safetensors") == tensors_of(SAMPLE)
    assert open_safetensors(tmp_path / "c.safetensors").metadata == open_safetensors(SAMPLE).metadata
    with safe_open(tmp_path / "c.safetensors", framework="numpy") as f:  # numpy has no BF16/F8 dtypes
        assert np.array_equal(f.get_tensor("embeddings.position_ids"), np.arange(128)[None, :])
        assert f.get_tensor("embeddings.attention_mask").dtype == np.bool_


def test_entries_keep_dtype_shape_strength_and_layer(tmp_path: Path) -> None:
    import_safetensors([SAMPLE], tmp_path / "c.thermo", layer="cold", strength=0.5, prefix="bert/")
    tg = store.load(tmp_path / "c.thermo")
    assert len(tg.layers[Layer.COLD]) == 43 and not tg.layers[Layer.COOL]
    e = tg.layers[Layer.COLD]["bert/encoder.layer.1.attention.self.query.weight"]
    assert (e.tensor.dtype, e.tensor.shape, e.tensor.encoding) == ("BF16", (64, 64), "raw")
    assert e.strength == pytest.approx(0.5)
    assert e.value == tensors_of(SAMPLE)["encoder.layer.1.attention.self.query.weight"][2]
    assert tg.extras[EXTRAS_KEY]["metadata"]["model_type"] == "bert"


def test_audit_log_has_one_event_per_tensor_and_a_state_checkpoint(tmp_path: Path) -> None:
    import_safetensors([SAMPLE], tmp_path / "c.thermo")
    tg = store.load(tmp_path / "c.thermo", layers="full", log="full")
    events = [r for r in tg.records if isinstance(r, Event) and r.kind == "import"]
    assert len(events) == 43
    original = tensors_of(SAMPLE)
    for ev in events:
        f = ev.fields
        dtype, shape, data = original[f["tensor"]]
        assert (f["op"], f["source"]) == ("create", "import-safetensors")
        assert (f["dtype"], tuple(f["shape"]), f["bytes"]) == (dtype, shape, len(data))
        assert f["sha256"] == hashlib.sha256(data).digest()
        assert f["sha256"] == hashlib.sha256(tg.layers[Layer.COOL][f["key"]].value).digest()
    log_bytes = sum(len(r.encoded) for r in tg.records)
    assert log_bytes < 30_000 < SAMPLE.stat().st_size  # digests only, never the tensor bytes
    last = tg.records[-1]
    assert last.kind == "checkpoint" and last.fields["state_digest"] == state_digest(tg.layers)
    assert last.fields["log_size"] == 44  # the provenance's extension event, 42 tensors
    assert verify_file(tmp_path / "c.thermo").ok


def layer_handed_to_the_container(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Filled with the cool layer of the next ``store.create`` call (which still writes)."""
    seen: dict = {}
    real_create = store.create

    def spy(path, tg, *, overwrite=False):
        seen.update(tg.layers[Layer.COOL])
        return real_create(path, tg, overwrite=overwrite)

    monkeypatch.setattr(store, "create", spy)
    return seen


def test_raw_entries_are_streamed_not_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer handed to the container holds StreamedEntry objects that read on demand."""
    seen = layer_handed_to_the_container(monkeypatch)
    import_safetensors([SAMPLE], tmp_path / "c.thermo")
    assert seen and all(isinstance(e, StreamedEntry) for e in seen.values())
    assert not any(hasattr(e, "__dict__") for e in seen.values())  # slots only: no hidden byte copy


def test_small_totals_keep_the_bytes_read_by_the_first_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raw tensors totalling <= 2x the largest one are held (streaming would peak as high)."""
    seen = layer_handed_to_the_container(monkeypatch)
    save_file({"big": np.ones((64, 64), np.float32), "small": np.arange(8)}, tmp_path / "m.safetensors")
    import_safetensors([tmp_path / "m.safetensors"], tmp_path / "m.thermo")
    assert seen and not any(isinstance(e, StreamedEntry) for e in seen.values())
    assert np.array_equal(load_file(tmp_path / "m.safetensors")["small"], np.arange(8))
    export_safetensors(tmp_path / "m.thermo", tmp_path / "back.safetensors")
    assert tensors_of(tmp_path / "back.safetensors") == tensors_of(tmp_path / "m.safetensors")


def test_ternary_import_packs_float_matrices_only(tmp_path: Path) -> None:
    report = import_safetensors([SAMPLE], tmp_path / "t.thermo", ternary=TernaryOptions(method="absmean"))
    tg = store.load(tmp_path / "t.thermo", log="full")  # the import events are history: nothing uncommitted
    cool = tg.layers[Layer.COOL]
    original = tensors_of(SAMPLE)
    packed = {k for k in cool if cool[k].tensor.encoding == "ternary"}
    assert packed == {k for k, (d, s, _) in original.items() if len(s) >= 2 and d not in ("I64", "BOOL")}
    assert report.ternary == len(packed) == 16
    assert all(q.cosine > 0.8 for q in report.quality)
    assert report.stored_bytes < SAMPLE.stat().st_size / 4
    ev = next(r for r in tg.records if isinstance(r, Event) and r.fields.get("key") == "pooler.dense.weight")
    assert ev.fields["encoding"] == "ternary" and ev.fields["method"] == "absmean"
    assert ev.fields["value_sha256"] == hashlib.sha256(cool["pooler.dense.weight"].value).digest()

    export_safetensors(tmp_path / "t.thermo", tmp_path / "deq.safetensors")
    back = tensors_of(tmp_path / "deq.safetensors")
    for k, (dtype, shape, data) in original.items():
        assert back[k][:2] == (dtype, shape)
        if k not in packed:
            assert back[k][2] == data
    with safe_open(tmp_path / "deq.safetensors", framework="numpy") as f:
        w = f.get_tensor("pooler.dense.weight")
    w0 = np.frombuffer(original["pooler.dense.weight"][2], np.float32).reshape(64, 64)
    assert np.dot(w.ravel(), w0.ravel()) / np.linalg.norm(w) / np.linalg.norm(w0) > 0.8


def test_keep_ternary_writes_codes_scales_and_layout(tmp_path: Path) -> None:
    imported = import_safetensors([SAMPLE], tmp_path / "t.thermo", ternary=TernaryOptions(per_row=True))
    report = export_safetensors(tmp_path / "t.thermo", tmp_path / "k.safetensors", keep_ternary=True)
    assert report.ternary_kept == 16
    sf = open_safetensors(tmp_path / "k.safetensors")
    layout = json.loads(sf.metadata["thermo.ternary"])
    # the reconstruction errors measured at import are written as `thermo ternary pack` writes them
    assert {q.key: (q.rel_l2, q.cosine) for q in imported.quality} == {
        name: (d["rel_l2"], d["cosine"]) for name, d in layout.items()
    }
    entry = layout["embeddings.word_embeddings.weight"]
    assert entry["shape"] == [512, 64] and entry["per_row"] is True
    got = tensors_of(tmp_path / "k.safetensors")
    assert got["embeddings.word_embeddings.weight"][:2] == ("U8", (512 * 64 // 4,))
    assert got[entry["scales"]][:2] == ("F32", (512,))


def test_nan_weights_are_refused_with_the_tensor_name_unless_zeroed(tmp_path: Path) -> None:
    w = np.ones((4, 4), np.float32)
    w[1, 2] = np.nan
    save_file({"w": w}, tmp_path / "nan.safetensors")
    with pytest.raises(errors.ValidationError, match="'w'"):
        import_safetensors([tmp_path / "nan.safetensors"], tmp_path / "n.thermo", ternary=TernaryOptions())
    assert not (tmp_path / "n.thermo").exists()
    import_safetensors(
        [tmp_path / "nan.safetensors"], tmp_path / "n.thermo", ternary=TernaryOptions(nan_as_zero=True)
    )
    import_safetensors([tmp_path / "nan.safetensors"], tmp_path / "raw.thermo")  # raw: stored as is
    export_safetensors(tmp_path / "raw.thermo", tmp_path / "raw.safetensors")
    assert np.array_equal(load_file(tmp_path / "raw.safetensors")["w"], w, equal_nan=True)


# --- several files ----------------------------------------------------------------------------


def _shards(d: Path) -> Path:
    a = {"embed.weight": np.arange(12, dtype=np.float32).reshape(3, 4), "embed.ids": np.arange(3)}
    b = {"head.weight": np.full((2, 2), 0.5, np.float16), "head.mask": np.array([True, False])}
    save_file(a, d / "model-00001-of-00002.safetensors", metadata={"format": "pt"})
    save_file(b, d / "model-00002-of-00002.safetensors", metadata={"format": "pt"})
    index = {
        "metadata": {"total_size": 72},
        "weight_map": {
            **dict.fromkeys(a, "model-00001-of-00002.safetensors"),
            **dict.fromkeys(b, "model-00002-of-00002.safetensors"),
        },
    }
    path = d / "model.safetensors.index.json"
    path.write_text(json.dumps(index))
    return path


@pytest.mark.parametrize("how", ["index", "directory", "files"])
def test_sharded_checkpoint_imports_into_one_thermogram(tmp_path: Path, how: str) -> None:
    d = tmp_path / "ckpt"
    d.mkdir()
    index = _shards(d)
    inputs = {"index": [index], "directory": [d], "files": sorted(d.glob("*.safetensors"))}[how]
    report = import_safetensors(inputs, tmp_path / "s.thermo")
    assert report.tensors == 4 and len(report.files) == 2
    tg = store.load(tmp_path / "s.thermo")
    assert sorted(tg.layers[Layer.COOL]) == ["embed.ids", "embed.weight", "head.mask", "head.weight"]
    files = tg.extras[EXTRAS_KEY]["files"]
    assert [f["file"] for f in files] == [f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    if how != "files":
        assert tg.extras[EXTRAS_KEY]["index_metadata"] == [{"total_size": 72}]
    export_safetensors(tmp_path / "s.thermo", tmp_path / "one.safetensors")
    merged = load_file(tmp_path / "one.safetensors")
    assert np.array_equal(merged["embed.weight"], np.arange(12, dtype=np.float32).reshape(3, 4))
    assert merged["head.weight"].dtype == np.float16
    assert open_safetensors(tmp_path / "one.safetensors").metadata == {"format": "pt"}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda m: m["weight_map"].update({"embed.weight": "model-00002-of-00002.safetensors"}), "found in"),
        (lambda m: m["weight_map"].update({"ghost": "model-00001-of-00002.safetensors"}), "no shard holds"),
        (lambda m: m["weight_map"].pop("head.mask"), "does not list"),
        (lambda m: m["weight_map"].update({"ghost": "model-00009.safetensors"}), "no such file"),
    ],
)
def test_index_that_disagrees_with_its_shards_is_refused(tmp_path: Path, change, needle: str) -> None:
    index = _shards(tmp_path)
    doc = json.loads(index.read_text())
    change(doc)
    index.write_text(json.dumps(doc))
    with pytest.raises(errors.ThermoError, match=needle):
        import_safetensors([index], tmp_path / "s.thermo")
    assert not (tmp_path / "s.thermo").exists()


def test_same_tensor_in_two_files_is_refused(tmp_path: Path) -> None:
    save_file({"w": np.zeros(2, np.float32)}, tmp_path / "a.safetensors")
    save_file({"w": np.ones(2, np.float32)}, tmp_path / "b.safetensors")
    with pytest.raises(errors.CorruptError, match="appears in both"):
        import_safetensors([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], tmp_path / "s.thermo")
    with pytest.raises(errors.ValidationError, match="more than once"):
        import_safetensors([tmp_path / "a.safetensors"] * 2, tmp_path / "s.thermo")


# --- selection --------------------------------------------------------------------------------


def test_include_exclude_and_prefix_round_trip(tmp_path: Path) -> None:
    report = import_safetensors(
        [SAMPLE],
        tmp_path / "f.thermo",
        include=["encoder.layer.0.*", "pooler.*"],
        exclude=["*.bias"],
        prefix="m.",
    )
    tg = store.load(tmp_path / "f.thermo")
    keys = sorted(tg.layers[Layer.COOL])
    assert keys and all(k.startswith("m.") and not k.endswith(".bias") for k in keys)
    assert report.skipped == 43 - len(keys)
    export_safetensors(tmp_path / "f.thermo", tmp_path / "f.safetensors", prefix="m.", exclude=["pooler.*"])
    names = set(tensors_of(tmp_path / "f.safetensors"))
    assert names == {k[2:] for k in keys if not k.startswith("m.pooler.")}
    with pytest.raises(errors.ValidationError, match="selected none"):
        import_safetensors([SAMPLE], tmp_path / "none.thermo", include=["nothing*"])


def test_export_refuses_a_key_held_by_two_layers_and_skips_plain_entries(tmp_path: Path) -> None:
    import_safetensors([SAMPLE], tmp_path / "c.thermo", include=["pooler.*"])
    tg = store.load(tmp_path / "c.thermo", layers="full")
    bias = tg.layers[Layer.COOL]["pooler.dense.bias"]
    tg.layers[Layer.HOT]["pooler.dense.bias"] = bias
    tg.layers[Layer.HOT]["note"] = type(bias)(key="note", value=b"hello", strength=1.0, updated_at_ns=1)
    tg.layers_modified = True
    store.create(tmp_path / "two.thermo", tg)
    with pytest.raises(errors.ValidationError, match="both the hot and the cool layer"):
        export_safetensors(tmp_path / "two.thermo", tmp_path / "x.safetensors")
    report = export_safetensors(tmp_path / "two.thermo", tmp_path / "x.safetensors", layers=["hot"])
    assert report.tensors == 1 and report.skipped_non_tensor == 1
    assert set(tensors_of(tmp_path / "x.safetensors")) == {"pooler.dense.bias"}


# --- nothing written on error -------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True])
def test_broken_input_writes_nothing_and_leaves_out_untouched(tmp_path: Path, existing: bool) -> None:
    good = tmp_path / "good.safetensors"
    save_file({"w": np.zeros(4, np.float32)}, good)
    mismatch = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    bad = write(tmp_path / "bad.safetensors", craft(mismatch, b"\0" * 8))
    out = tmp_path / "out.thermo"
    if existing:
        out.write_bytes(b"precious")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(errors.CorruptError, match=r"bad\.safetensors"):
        import_safetensors([good, bad], out, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == before
    if existing:
        assert out.read_bytes() == b"precious"


def test_checkpoint_changed_during_import_is_detected(tmp_path: Path) -> None:
    src = tmp_path / "m.safetensors"
    save_file({"w": np.zeros(4, np.float32)}, src)

    def tamper(phase: str, nbytes: int) -> None:
        if phase == "start":
            save_file({"w": np.ones(4, np.float32)}, src)

    with pytest.raises(errors.CorruptError, match="changed"):
        import_safetensors([src], tmp_path / "o.thermo", progress=tamper)
    assert not (tmp_path / "o.thermo").exists()


@pytest.mark.parametrize(
    ("args", "kwargs", "cls", "needle"),
    [
        (["x.thermo"], {}, errors.RefusedError, "already exists"),
        (["o.safetensors"], {}, errors.ValidationError, "must be a .thermo"),
        (["missing/o.thermo"], {}, errors.ValidationError, "no such directory"),
        (["o.thermo"], {"strength": 1.5}, errors.ValidationError, "strength"),
        (["o.thermo"], {"layer": "lukewarm"}, errors.ValidationError, "layer"),
        (["o.thermo"], {"ternary": TernaryOptions(method="bogus")}, errors.ValidationError, "bogus"),
    ],
)
def test_bad_requests_are_refused_before_reading(tmp_path: Path, args, kwargs, cls, needle) -> None:
    (tmp_path / "x.thermo").write_bytes(b"keep")
    with pytest.raises(cls, match=needle):
        import_safetensors([SAMPLE], tmp_path / args[0], **kwargs)
    assert (tmp_path / "x.thermo").read_bytes() == b"keep"
    assert sorted(os.listdir(tmp_path)) == ["x.thermo"]


def test_dry_run_validates_and_writes_nothing(tmp_path: Path) -> None:
    report = import_safetensors([SAMPLE], tmp_path / "d.thermo", dry_run=True)
    assert report.dry_run and report.tensors == 43 and report.tensor_bytes == 367112
    assert not (tmp_path / "d.thermo").exists()


def test_export_from_a_legacy_thermogram_without_tensors_refuses_cleanly(tmp_path: Path) -> None:
    legacy = Path(__file__).resolve().parents[2] / "fixtures" / "legacy" / "v0.5" / "small.thermo"
    with pytest.raises(errors.ValidationError, match="no tensor entries"):
        export_safetensors(legacy, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


# --- files written by torch -------------------------------------------------------------------


def test_torch_written_checkpoint_round_trips(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file as torch_load
    from safetensors.torch import save_file as torch_save

    tensors = {
        "w": torch.randn(8, 4, dtype=torch.bfloat16),
        "h": torch.randn(3, dtype=torch.float16),
        "i": torch.arange(5),
        "b": torch.tensor([True, False]),
        "s": torch.tensor(2.5),
    }
    torch_save(tensors, str(tmp_path / "t.safetensors"), metadata={"format": "pt"})
    import_safetensors([tmp_path / "t.safetensors"], tmp_path / "t.thermo")
    export_safetensors(tmp_path / "t.thermo", tmp_path / "back.safetensors")
    back = torch_load(str(tmp_path / "back.safetensors"))
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v)


def test_keep_ternary_output_unpacks_with_thermo_ternary_unpack(tmp_path: Path) -> None:
    from thermo_cli.operations.ternary_files import unpack_file

    import_safetensors([SAMPLE], tmp_path / "t.thermo", ternary=TernaryOptions(method="absmean"))
    export_safetensors(tmp_path / "t.thermo", tmp_path / "k.safetensors", keep_ternary=True)
    export_safetensors(tmp_path / "t.thermo", tmp_path / "deq.safetensors")
    unpack_file(tmp_path / "k.safetensors", tmp_path / "u.safetensors")
    assert tensors_of(tmp_path / "u.safetensors") == tensors_of(tmp_path / "deq.safetensors")
    assert open_safetensors(tmp_path / "u.safetensors").metadata == open_safetensors(SAMPLE).metadata
