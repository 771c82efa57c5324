"""Every core command through CliRunner: results, JSON output, and each error path's exit code."""

from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.conftest import clock_after
from thermo_cli import store
from thermo_cli.config.clock import use_clock
from thermo_cli.model import Delta, Event, Layer

from .conftest import SAMPLES, Thermo


def lines(*objs: dict) -> str:
    return "".join(orjson.dumps(o).decode() + "\n" for o in objs)


# --- init ---------------------------------------------------------------------------------------


def test_init_creates_with_presets(tmp_path: Path, thermo: Thermo):
    path = tmp_path / "m.thermo"
    r = thermo(
        "init",
        path,
        "--name",
        "mem",
        "--preset",
        "fast-learner",
        "--plasticity",
        "bayesian",
        "--policy",
        "aggressive",
        "--json",
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["name"] == "mem" and doc["preset"] == "fast-learner"
    assert "created" in r.err
    tg = store.load(path)
    assert tg.name == "mem"
    assert tg.thermal.prune_threshold == pytest.approx(0.03)
    assert tg.plasticity.policy.value == "Bayesian"
    assert tg.policy.triggers[0].count == 100
    assert tg.log_length == 0


def test_init_default_name_is_stem(tmp_path: Path, thermo: Thermo):
    assert thermo("init", tmp_path / "brain.thermo").code == 0
    assert store.load(tmp_path / "brain.thermo").name == "brain"


def test_init_refuses_existing_file(fresh: Path, thermo: Thermo):
    before = fresh.read_bytes()
    r = thermo("init", fresh)
    assert r.code == 4
    assert "already exists" in r.err and "--force" in r.err
    assert fresh.read_bytes() == before
    assert thermo("init", fresh, "--force").code == 0


def test_init_bad_preset_is_usage_error(tmp_path: Path, thermo: Thermo):
    r = thermo("init", tmp_path / "x.thermo", "--preset", "lukewarm")
    assert r.code == 2
    assert not (tmp_path / "x.thermo").exists()


# --- apply --------------------------------------------------------------------------------------


def test_apply_sample_stream(fresh: Path, thermo: Thermo):
    r = thermo("apply", fresh, SAMPLES / "deltas.jsonl", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["applied"] == 25 and doc["skipped"] == 0 and doc["dry_run"] is False
    assert r.err.startswith("applied 25 deltas to ")
    assert r.err.count("\n") == 1  # one-line summary
    tg = store.load(fresh)
    assert tg.log_length == 25
    assert doc["head_hash"] == tg.head_hash
    assert tg.verify_chain().ok


def test_apply_from_stdin_links_to_head(fresh: Path, thermo: Thermo):
    assert thermo("apply", fresh, "-", input=lines({"op": "create", "key": "a", "value": "1"})).code == 0
    head = store.load(fresh).head_hash
    assert thermo("apply", fresh, input=lines({"op": "update", "key": "a", "value": "2"})).code == 0
    tg = store.load(fresh, log="full")
    assert tg.records[1].prev_hash == head
    assert tg.read("a") == b"2"


def test_bad_line_aborts_and_leaves_file_byte_identical(fresh: Path, thermo: Thermo):
    thermo("apply", fresh, input=lines({"op": "create", "key": "keep", "value": "x"}))
    before = fresh.read_bytes()
    stream = lines({"op": "create", "key": "a", "value": "1"}, {"op": "update", "key": "b", "value": "2"})
    stream += '{"op": "update", "key": "c", "value": "3", "strength": 7}\n'
    r = thermo("apply", fresh, input=stream)
    assert r.code == 3
    assert r.err.strip() == (
        "thermo: error: <stdin>: line 3: strength: must be finite and within [0, 1], got 7"
    )
    assert r.out == ""
    assert fresh.read_bytes() == before


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "line 2: invalid JSON"),
        ('{"op": "create"}', 'line 2: missing field "key"'),
        ('{"op": "create", "key": "k", "value": "", "meta": {"a": 1}, "extra": 1}', "line 2: unknown field"),
        (
            '{"op": "create", "key": "k", "value": {"dtype": "f32", "shape": [2], "data": [1]}}',
            "line 2: value.data: 1 numbers do not match shape [2]",
        ),
    ],
)
def test_bad_lines_report_line_and_reason(fresh: Path, thermo: Thermo, line: str, reason: str):
    before = fresh.read_bytes()
    r = thermo("apply", fresh, input=lines({"op": "create", "key": "ok", "value": ""}) + line + "\n")
    assert r.code == 3
    assert reason in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert fresh.read_bytes() == before


def test_engine_refusal_names_the_line(fresh: Path, thermo: Thermo, monkeypatch):
    from thermo_cli.engine import chain
    from thermo_cli.errors import ValidationError
    from thermo_cli.formats import jsonl

    real = chain.seal_linked  # still runs for parser-validated deltas

    def picky(d):
        if d.key == "b":
            raise ValidationError("key: the engine refuses 'b'")
        return real(d)

    monkeypatch.setattr(chain, "seal_linked", picky)
    # plain deltas take the batch road, which never calls seal_linked: take the other one
    monkeypatch.setattr(jsonl.DeltaParser, "plain_batch", lambda self, lines: None)
    before = fresh.read_bytes()
    r = thermo(
        "apply",
        fresh,
        input=lines({"op": "create", "key": "a", "value": ""})
        + "\n"
        + lines({"op": "create", "key": "b", "value": ""}),
    )
    assert r.code == 3
    assert r.err.strip() == "thermo: error: <stdin>: line 3: key: the engine refuses 'b'"
    assert fresh.read_bytes() == before


def test_line_cap_option(fresh: Path, thermo: Thermo):
    r = thermo(
        "apply", fresh, "--max-line-bytes", "20", input=lines({"op": "create", "key": "k" * 40, "value": ""})
    )
    assert r.code == 3
    assert "line 1: line longer than the maximum of 20 bytes" in r.err


def test_skip_invalid_applies_the_rest(fresh: Path, thermo: Thermo):
    stream = (
        lines({"op": "create", "key": "a", "value": "1"})
        + "oops\n"
        + lines(
            {"op": "create", "key": "b", "value": "2"},
            {"op": "merge", "key": "c", "value": "", "strength": -1},
        )
    )
    r = thermo("apply", fresh, "--skip-invalid", "--json", input=stream)
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["applied"] == 2 and doc["skipped"] == 2
    assert "skipped line 2: invalid JSON" in r.err
    assert "skipped line 4: strength" in r.err
    assert store.load(fresh).keys() == ["a", "b"]


def test_dry_run_changes_nothing(fresh: Path, thermo: Thermo):
    before = fresh.read_bytes()
    r = thermo("apply", fresh, SAMPLES / "deltas.jsonl", "--dry-run", "--json")
    assert r.code == 0
    assert json.loads(r.out)["applied"] == 25
    assert r.err.startswith("would apply 25 deltas")
    assert fresh.read_bytes() == before


def test_auto_consolidation_follows_policy(tmp_path: Path, thermo: Thermo):
    path = tmp_path / "agg.thermo"
    thermo("init", path, "--policy", "aggressive")  # every 100 deltas
    stream = lines(
        *({"op": "update", "key": f"k{i % 7}", "value": str(i), "strength": 0.5} for i in range(250))
    )
    r = thermo("apply", path, "--json", input=stream)
    doc = json.loads(r.out)
    assert doc["consolidations"] == 2
    assert "2 consolidations" in r.err
    tg = store.load(path)
    assert tg.meta.total_consolidations == 2 and tg.dirty_count == 50
    r = thermo("apply", path, "--no-auto-consolidate", "--json", input=stream)
    assert json.loads(r.out)["consolidations"] == 0


def test_apply_refuses_an_export_dump(filled: Path, thermo: Thermo, tmp_path: Path):
    dump = tmp_path / "d.jsonl"
    assert thermo("export", filled, dump).code == 0
    r = thermo("apply", filled, dump)
    assert r.code == 3
    assert "line 1: this is a thermo JSONL export" in r.err


def test_apply_missing_file(tmp_path: Path, thermo: Thermo):
    r = thermo("apply", tmp_path / "none.thermo", input=lines({"op": "delete", "key": "a"}))
    assert r.code == 6
    assert "no such file" in r.err
    assert thermo("consolidate", tmp_path / "none.thermo").code == 6
    assert list(tmp_path.iterdir()) == []  # not even a lock file left behind


def test_apply_missing_delta_file(fresh: Path, thermo: Thermo, tmp_path: Path):
    r = thermo("apply", fresh, tmp_path / "absent.jsonl")
    assert r.code == 6
    assert "absent.jsonl" in r.err


def test_apply_to_garbage_file(tmp_path: Path, thermo: Thermo):
    bad = tmp_path / "bad.thermo"
    bad.write_bytes(b"\x00\x01 not a thermogram at all")
    r = thermo("apply", bad, input=lines({"op": "delete", "key": "a"}))
    assert r.code == 3
    assert r.err.startswith("thermo: error: ")
    assert bad.read_bytes() == b"\x00\x01 not a thermogram at all"


@pytest.mark.clock
def test_writing_a_legacy_file_needs_upgrade(legacy_copy: Path, thermo: Thermo):
    before = legacy_copy.read_bytes()
    for args in (
        ("apply", legacy_copy),
        ("consolidate", legacy_copy),
        ("tick", legacy_copy),
        ("reinforce", legacy_copy, "greeting", "0.1"),
        ("warm", legacy_copy, "x"),
    ):
        r = thermo(*args, input=lines({"op": "create", "key": "new", "value": "v"}))
        assert r.code == 4, args
        assert "--upgrade" in r.err
        assert legacy_copy.read_bytes() == before
    # an hour after the file's last consolidation: the default policy's 24 h trigger stays quiet
    with use_clock(clock_after(legacy_copy, 1)):
        r = thermo(
            "apply", legacy_copy, "--upgrade", input=lines({"op": "create", "key": "new", "value": "v"})
        )
    assert r.code == 0, r.err
    assert store.sniff(legacy_copy) == "thermo"
    tg = store.load(legacy_copy, log="full")
    assert tg.read("new") == b"v"
    # the crate's 10 deltas are kept, the upgrade logs a "migrate" event, the new delta follows
    assert tg.log_length == 12
    migrate = tg.records[10]
    assert isinstance(migrate, Event) and migrate.kind == "migrate"
    assert migrate.prev_hash == tg.records[9].hash
    assert isinstance(tg.records[11], Delta) and tg.records[11].key == "new"
    assert tg.records[11].prev_hash == migrate.hash


@pytest.mark.clock
def test_an_upgrade_years_after_the_last_consolidation_consolidates(legacy_copy: Path, thermo: Thermo):
    """The crate's policy (every 24 h) is kept: the first delta after years consolidates."""
    later = clock_after(legacy_copy, 24 * 365 * 7)
    with use_clock(later):
        r = thermo(
            "apply", legacy_copy, "--upgrade", input=lines({"op": "create", "key": "new", "value": "v"})
        )
    assert r.code == 0, r.err
    tg = store.load(legacy_copy, log="full")
    # 10 crate deltas, "migrate", the new delta, then the consolidation it triggered
    assert tg.log_length == 13
    assert [getattr(r, "kind", "delta") for r in tg.records[10:]] == ["migrate", "delta", "consolidate"]
    assert tg.meta.last_consolidation_ns == tg.records[12].timestamp_ns == later()
    assert tg.read("new") == b"v" and tg.dirty_count == 0


# --- consolidate / tick / reinforce / weaken / warm --------------------------------------------


def test_consolidate_reports_counts(fresh: Path, thermo: Thermo):
    thermo("apply", fresh, SAMPLES / "deltas.jsonl")
    r = thermo("consolidate", fresh, "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["processed"] == 25
    assert doc["pruned"] == 1  # "weak" (strength 0.06) falls under the rule's prune threshold
    assert doc["promoted"] == doc["crystallized"] + doc["crystal_merged"] >= 1
    assert len(doc["state_digest"]) == 64
    assert "processed 25, pruned 1" in r.err
    tg = store.load(fresh)
    assert tg.dirty_count == 0 and tg.meta.total_consolidations == 1
    assert store.read(fresh, "weak") is None


def test_history_survives_consolidation(filled: Path, thermo: Thermo):
    r = thermo("log", filled, "emb/cat", "--json")
    assert r.code == 0
    recs = json.loads(r.out)
    deltas = [x for x in recs if x["kind"] == "delta"]
    assert len(deltas) == 5 and all(d["consolidated"] for d in deltas)
    assert [d["op"] for d in deltas] == ["create"] + ["update"] * 4


def test_tick_decay_and_transitions(filled: Path, thermo: Thermo):
    before = store.load(filled)
    hot_before = {k: before.layers[Layer.HOT][k].strength for k in before.layers[Layer.HOT]}
    r = thermo("tick", filled, "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["ticks"] == 1 and doc["decayed"] == sum(len(before.layers[L]) for L in Layer)
    tg = store.load(filled)
    for k, s in hot_before.items():
        if k in tg.layers[Layer.HOT]:
            assert tg.layers[Layer.HOT][k].strength == pytest.approx(s * 0.9, rel=1e-6)
    r = thermo("tick", filled, "--no-decay", "--repeat", "3", "--json")
    assert json.loads(r.out)["decayed"] == 0 and json.loads(r.out)["ticks"] == 3
    assert "ticked" in r.err and "x3" in r.err


def test_reinforce_and_weaken(filled: Path, thermo: Thermo):
    tg = store.load(filled)
    key = sorted(tg.layers[Layer.HOT])[0]
    s0 = tg.layers[Layer.HOT][key].strength
    r = thermo("weaken", filled, key, "0.25", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert f"weakened {key!r} in hot" in r.err
    assert doc["layer"] == "hot" and doc["strength"] == pytest.approx(max(0.0, s0 - 0.25), abs=1e-6)
    assert doc["strength_before"] == pytest.approx(s0)
    r = thermo("reinforce", filled, key, "2")
    assert r.code == 0
    assert "reinforced" in r.err and "→ 1" in r.err
    assert store.read(filled, key).strength == 1.0
    log = json.loads(thermo("log", filled, key, "--json").out)
    assert [x["event"] for x in log if x["kind"] == "event"][-2:] == ["weaken", "reinforce"]


def test_reinforce_errors(fresh: Path, thermo: Thermo):
    thermo("apply", fresh, input=lines({"op": "create", "key": "dirty", "value": ""}))
    r = thermo("reinforce", fresh, "dirty", "0.1")
    assert r.code == 6
    assert "consolidate first" in r.err
    assert thermo("reinforce", fresh, "absent", "0.1").code == 6
    assert thermo("weaken", fresh, "dirty", "-0.5").code == 2
    assert thermo("weaken", fresh, "dirty", "lots").code == 2


def test_warm_key_and_pattern(filled: Path, thermo: Thermo):
    cold = sorted(store.load(filled).layers[Layer.COLD])
    assert cold, "the sample should crystallize something into cold"
    r = thermo("warm", filled, cold[0], "--json")
    assert r.code == 0
    assert json.loads(r.out)["warmed"] == [cold[0]]
    tg = store.load(filled)
    assert cold[0] in tg.layers[Layer.HOT] and cold[0] not in tg.layers[Layer.COLD]
    r = thermo("warm", filled, "--match", "*", "--json")
    assert sorted(json.loads(r.out)["warmed"]) == cold[1:]
    assert "warmed" in r.err
    r = thermo("warm", filled, cold[0])
    assert r.code == 0 and "not cold: nothing to warm" in r.err
    assert thermo("warm", filled, "nowhere").code == 6
    assert thermo("warm", filled).code == 2
    assert thermo("warm", filled, "k", "--match", "*").code == 2
    assert thermo("warm", filled, "k", "--regex").code == 2
    assert thermo("warm", filled, "--match", "(", "--regex").code == 3


# --- get / keys / stats / log ---------------------------------------------------------------


def test_get_text_raw_json(filled: Path, thermo: Thermo):
    r = thermo("get", filled, "greeting")
    assert r.code == 0 and r.out == "hello, thermogram"  # not a terminal: exact bytes
    r = thermo("get", filled, "greeting", "--raw")
    assert r.stdout_bytes == b"hello, thermogram"
    doc = json.loads(thermo("get", filled, "greeting", "--json").out)
    assert doc["value"] == "hello, thermogram"
    assert doc["layer"] in ("hot", "cold") and 0 < doc["strength"] <= 1
    assert doc["size"] == 17


def test_get_binary_and_dirty(fresh: Path, thermo: Thermo):
    raw = bytes([0, 255, 1, 128])
    thermo("apply", fresh, input=lines({"op": "create", "key": "bin", "value": {"hex": raw.hex()}}))
    r = thermo("get", fresh, "bin", "--json")
    doc = json.loads(r.out)
    assert doc["layer"] == "dirty" and doc["value"] == {"b64": "AP8BgA=="}
    assert thermo("get", fresh, "bin", "--raw").stdout_bytes == raw
    assert thermo("get", fresh, "bin").stdout_bytes == raw  # not a terminal: exact bytes


def test_get_tensor_as_numbers_and_npy(filled: Path, thermo: Thermo, tmp_path: Path):
    r = thermo("get", filled, "emb/cat")
    values = json.loads(r.out)
    assert len(values) == 8 and all(isinstance(v, float) for v in values)
    out = tmp_path / "cat.npy"
    r = thermo("get", filled, "emb/cat", "--as-npy", out)
    assert r.code == 0
    arr = np.load(out)
    assert arr.dtype == np.float32 and arr.shape == (8,)
    assert arr.tolist() == pytest.approx(values)
    r = thermo("get", filled, "emb/cat", "--as-npy", "-")
    assert np.load(io.BytesIO(r.stdout_bytes)).tolist() == arr.tolist()
    doc = json.loads(thermo("get", filled, "emb/cat", "--json").out)
    assert doc["tensor"] == {"dtype": "F32", "shape": [8], "encoding": "raw"}
    r = thermo("get", filled, "greeting", "--as-npy", out)
    assert r.code == 3 and "not a tensor" in r.err


def test_get_errors(filled: Path, thermo: Thermo, tmp_path: Path):
    r = thermo("get", filled, "nope")
    assert r.code == 6 and "'nope' not found" in r.err
    assert thermo("get", filled, "greeting", "--raw", "--json").code == 2
    assert thermo("get", tmp_path / "missing.thermo", "k").code == 6
    assert thermo("get", filled, "scratch").code == 6  # deleted


def test_get_legacy_file_matches_manifest(legacy_copy: Path, thermo: Thermo):
    manifest = json.loads(
        (Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "v0.5" / "manifest.json").read_text()
    )
    reads = next(f for f in manifest["files"] if f["file"] == "small.thermo")["reads"]
    for key, want in reads.items():
        r = thermo("get", legacy_copy, key, "--raw")
        if want is None:
            assert r.code == 6
        else:
            assert r.code == 0 and r.stdout_bytes.hex() == want["hex"]


def test_keys_variants(filled: Path, thermo: Thermo):
    tg = store.load(filled)
    r = thermo("keys", filled)
    assert r.out.splitlines() == tg.keys()
    assert "scratch" not in r.out
    assert json.loads(thermo("keys", filled, "--json").out) == tg.keys()
    cold = thermo("keys", filled, "--layer", "cold", "--json")
    assert json.loads(cold.out) == sorted(tg.layers[Layer.COLD])
    all_keys = tg.keys()
    assert thermo("keys", filled, "--prefix", "emb/").out.splitlines() == [
        k for k in all_keys if k.startswith("emb/")
    ]
    assert thermo("keys", filled, "-0").out.split("\0")[:-1] == tg.keys()
    assert thermo("keys", filled, "--layer", "tepid").code == 2


def test_stats_table_and_json(filled: Path, thermo: Thermo, legacy_copy: Path):
    r = thermo("stats", filled)
    assert r.code == 0
    for word in ("hot", "warm", "cool", "cold", "log records", "consolidations", "head hash"):
        assert word in r.out
    assert "\x1b[" not in r.out  # no colour when not a terminal
    doc = json.loads(thermo("stats", filled, "--json").out)
    assert doc["format"] == "thermo" and doc["consolidations"] == 1
    assert doc["total_deltas"] == 25 and doc["log_records"] == 26
    assert doc["total_entries"] == sum(doc["entries"].values())
    assert doc["stored_layer_bytes"] > 0 and doc["compression_ratio"] > 0
    legacy = json.loads(thermo("stats", legacy_copy, "--json").out)
    assert legacy["format"] == "legacy" and legacy["log_records"] == 10
    assert legacy["stored_layer_bytes"] is None


def test_log_human_json_and_filters(filled: Path, thermo: Thermo):
    r = thermo("log", filled)
    text = r.out.splitlines()
    assert len(text) == 26
    assert "[consolidate]" in text[-1] and "consolidated" in text[0]
    recs = json.loads(thermo("log", filled, "--json").out)
    assert [x["index"] for x in recs] == list(range(26))
    assert recs[-1]["event"] == "consolidate"
    assert len(recs[-1]["fields"]["state_digest"]) == 64  # hex, as everywhere
    assert all(recs[i]["prev_hash"] == recs[i - 1]["hash"] for i in range(1, 26))
    deltas_only = json.loads(thermo("log", filled, "--no-events", "--json").out)
    assert len(deltas_only) == 25
    last = json.loads(thermo("log", filled, "--last", "2", "--json").out)
    assert [x["index"] for x in last] == [24, 25]
    with_values = json.loads(thermo("log", filled, "greeting", "--values", "--json").out)
    assert {x["value"] for x in with_values} == {"hello, thermogram"}
    assert json.loads(thermo("log", filled, "absent", "--json").out) == []


def test_log_legacy(legacy_copy: Path, thermo: Thermo):
    recs = json.loads(thermo("log", legacy_copy, "--json").out)
    assert len(recs) == 10
    assert all(r["scheme"] == "legacy" and not r["consolidated"] for r in recs)


# --- export / import ----------------------------------------------------------------------------


def test_export_engram_has_all_layers_and_history(filled: Path, thermo: Thermo, tmp_path: Path):
    thermo("tick", filled)
    out = tmp_path / "e.json"
    r = thermo("export", filled, out, "--json")
    assert r.code == 0, r.err
    counts = json.loads(r.out)
    doc = json.loads(out.read_text())
    tg = store.load(filled)
    assert counts["entries"] == len(doc["state"]) == sum(len(tg.layers[L]) for L in Layer)
    assert {s["layer"] for s in doc["state"]} == {L.label for L in Layer if tg.layers[L]}
    assert len(doc["history"]) == 25 == counts["deltas"]
    assert doc["metadata"]["total_entries"] == len(doc["state"])
    assert doc["metadata"]["total_deltas"] == 25
    assert doc["metadata"]["exported_at"].endswith("+00:00")
    for item in doc["state"]:
        assert bytes(item["value"]) == store.read(filled, item["key"]).value


def test_export_to_stdout_and_refusals(filled: Path, thermo: Thermo, tmp_path: Path):
    r = thermo("export", filled, "-", "--format", "jsonl")
    assert r.code == 0
    assert json.loads(r.out.splitlines()[0])["kind"] == "thermogram"
    out = tmp_path / "x.json"
    out.write_text("keep")
    r = thermo("export", filled, out)
    assert r.code == 4 and out.read_text() == "keep"
    assert thermo("export", filled, out, "--force").code == 0
    assert json.loads(out.read_text())["name"] == "t"
    assert thermo("export", filled, "-", "--json").code == 2
    assert not list(tmp_path.glob(".*tmp*"))


def test_export_import_round_trip_is_exact(filled: Path, thermo: Thermo, tmp_path: Path):
    thermo("tick", filled)
    dump = tmp_path / "d.jsonl"
    assert thermo("export", filled, dump).code == 0
    r = thermo("import-jsonl", dump, tmp_path / "copy.thermo", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["kind"] == "dump"
    a, b = store.load(filled, log="full"), store.load(tmp_path / "copy.thermo", log="full")
    assert b.head_hash == a.head_hash == doc["head_hash"]
    assert [x.hash for x in b.records] == [x.hash for x in a.records]
    for layer in Layer:
        assert sorted(a.layers[layer]) == sorted(b.layers[layer])
        for k in a.layers[layer]:
            assert a.layers[layer][k] == b.layers[layer][k]
    dump2 = tmp_path / "d2.jsonl"
    thermo("export", tmp_path / "copy.thermo", dump2)
    assert dump2.read_bytes() == dump.read_bytes()


def test_import_tampered_dump_is_refused(filled: Path, thermo: Thermo, tmp_path: Path):
    dump = tmp_path / "d.jsonl"
    thermo("export", filled, dump)
    rows = dump.read_text().splitlines()
    original = list(rows)
    i = next(i for i, row in enumerate(rows) if '"kind":"delta"' in row and '"greeting"' in row)
    rows[i] = rows[i].replace("hello, thermogram", "hello, tampered!!")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(rows) + "\n")
    r = thermo("import-jsonl", bad, tmp_path / "x.thermo")
    assert r.code == 3
    assert f"line {i + 1}: hash does not match" in r.err
    assert not (tmp_path / "x.thermo").exists()
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(original[:-3]) + "\n")
    r = thermo("import-jsonl", short, tmp_path / "x.thermo")
    assert r.code == 3 and "truncated" in r.err


def test_import_delta_stream_makes_new_thermogram(tmp_path: Path, thermo: Thermo):
    out = tmp_path / "n.thermo"
    r = thermo(
        "import-jsonl", SAMPLES / "deltas.jsonl", out, "--preset", "organic", "--policy", "manual", "--json"
    )
    assert r.code == 0
    assert json.loads(r.out)["kind"] == "delta stream"
    tg = store.load(out)
    assert tg.name == "n" and tg.log_length == 25 and tg.thermal.promotion_thresholds[0] == 0.7
    assert thermo("import-jsonl", SAMPLES / "deltas.jsonl", out).code == 4
    r = thermo("import-jsonl", "-", tmp_path / "bad.thermo", input="{]\n")
    assert r.code == 3 and "line 1: invalid JSON" in r.err
    assert not (tmp_path / "bad.thermo").exists()


# --- conventions ---------------------------------------------------------------------------------


def test_help_lists_every_core_command(thermo: Thermo):
    r = thermo("--help")
    assert r.code == 0
    for cmd in (
        "init",
        "apply",
        "consolidate",
        "tick",
        "reinforce",
        "weaken",
        "warm",
        "get",
        "keys",
        "stats",
        "log",
        "export",
        "import-jsonl",
    ):
        assert cmd in r.out
    assert "Exit codes" in r.out


def test_version(thermo: Thermo):
    from thermo_cli import __version__

    assert thermo("--version").out.strip() == f"thermo {__version__}"


def test_internal_error_is_short_with_debug_hint(filled: Path, thermo: Thermo, monkeypatch):
    from thermo_cli.engine.thermogram import Thermogram

    def boom(self):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(Thermogram, "stats", boom)
    r = thermo("stats", filled)
    assert r.code == 70
    assert r.err.strip() == "thermo: internal error: RuntimeError: kaboom (rerun with --debug for details)"
    r = thermo("--debug", "stats", filled)
    assert r.code == 70 and "Traceback" in r.err


def test_lock_timeout_exit_code(filled: Path, thermo: Thermo, monkeypatch):
    from thermo_cli.errors import LockError

    def busy(path, **kw):
        raise LockError(f"{path}: locked by another writer")

    monkeypatch.setattr(store, "_locked", busy)
    r = thermo("consolidate", filled)
    assert r.code == 5 and "locked" in r.err


def test_records_have_consolidated_flag_for_dirty_tail(fresh: Path, thermo: Thermo):
    thermo("apply", fresh, input=lines({"op": "create", "key": "a", "value": "1"}))
    thermo("consolidate", fresh)
    thermo("apply", fresh, input=lines({"op": "update", "key": "a", "value": "2"}))
    recs = [x for x in json.loads(thermo("log", fresh, "a", "--json").out) if x["kind"] == "delta"]
    assert [x["consolidated"] for x in recs] == [True, False]
    tg = store.load(fresh, log="full")
    assert isinstance(tg.records[0], Delta) and tg.read("a") == b"2"


def test_ternary_and_tensor_deltas_keep_fields(fresh: Path, thermo: Thermo):
    stream = lines(
        {
            "op": "create",
            "key": "w",
            "value": {"hex": "00000000"},
            "ternary": -1,
            "observation_count": 4,
            "meta": {"why": "test"},
            "source": "snn",
        },
        {"op": "create", "key": "t", "value": {"dtype": "f16", "shape": [2], "data": [1.5, -2]}},
    )
    assert thermo("apply", fresh, input=stream).code == 0
    tg = store.load(fresh, log="full")
    w, t = tg.records
    assert int(w.ternary) == -1 and w.strength == -1.0 and w.observation_count == 4
    assert w.custom == {"why": "test"} and w.source == "snn"
    assert t.tensor.dtype == "F16" and struct.unpack("<2e", t.value) == (1.5, -2.0)


# --- packed sub-byte floats through JSONL and .npy ------------------------------------------------


def test_f4_and_f6_tensors_round_trip_through_a_jsonl_export(fresh: Path, thermo: Thermo, tmp_path: Path):
    f4 = bytes(range(8))  # F4 [2, 8]: 16 four-bit elements, 8 bytes
    f6 = bytes(range(100, 109))  # F6_E3M2 [2, 6]: 12 six-bit elements, 9 bytes
    r = thermo(
        "apply",
        fresh,
        input=lines(
            {"op": "create", "key": "w4", "value": {"dtype": "f4", "shape": [2, 8], "b64": _b64(f4)}},
            {"op": "create", "key": "w6", "value": {"dtype": "F6_E3M2", "shape": [2, 6], "hex": f6.hex()}},
        ),
    )
    assert r.code == 0, r.err
    dump = tmp_path / "dump.jsonl"
    assert thermo("export", fresh, dump).code == 0
    assert '"dtype":"f4"' in dump.read_text()
    copy = tmp_path / "copy.thermo"
    r = thermo("import-jsonl", dump, copy)
    assert r.code == 0, r.err
    for key, raw, dtype, shape in (("w4", f4, "F4", [2, 8]), ("w6", f6, "F6_E3M2", [2, 6])):
        doc = json.loads(thermo("get", copy, key, "--json").out)
        assert doc["tensor"] == {"dtype": dtype, "encoding": "raw", "shape": shape}
        assert base64.b64decode(doc["value"]["b64"]) == raw
    assert store.load(copy).head_hash == store.load(fresh).head_hash


def test_get_as_npy_of_a_packed_tensor_says_what_it_wrote(fresh: Path, thermo: Thermo, tmp_path: Path):
    raw = bytes(range(8))
    thermo(
        "apply",
        fresh,
        input=lines(
            {"op": "create", "key": "w4", "value": {"dtype": "f4", "shape": [2, 8], "b64": _b64(raw)}}
        ),
    )
    out = tmp_path / "w4.npy"
    r = thermo("get", fresh, "w4", "--as-npy", out)
    assert r.code == 0, r.err
    assert r.err.strip() == f"wrote 'w4' F4 [2, 8] as uint8 [2, 4] (packed) to {out}"
    arr = np.load(out)
    assert arr.dtype == np.uint8 and arr.shape == (2, 4) and arr.tobytes() == raw


def test_a_packed_tensor_given_as_numbers_is_refused_with_its_line(fresh: Path, thermo: Thermo):
    before = fresh.read_bytes()
    r = thermo(
        "apply",
        fresh,
        input=lines(
            {"op": "create", "key": "ok", "value": "v"},
            {"op": "create", "key": "w4", "value": {"dtype": "f4", "shape": [2], "data": [0.5, 1]}},
        ),
    )
    assert r.code == 3
    assert r.err.startswith("thermo: error: <stdin>: line 2: value.data: F4 packs 4-bit elements")
    assert fresh.read_bytes() == before


def test_apply_of_the_fuzz_finding_line_exits_3(fresh: Path, thermo: Thermo):
    line = b'{"op":"create","key":"0","value":{"dtype":"i8","shape":[],"data":[{}]}}\n'
    r = thermo("apply", fresh, input=line)
    assert r.code == 3 and "line 1: value.data: must hold only numbers" in r.err


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_an_export_or_import_never_writes_over_its_own_source(filled: Path, thermo: Thermo, tmp_path: Path):
    before = filled.read_bytes()
    for args in (["export", filled, filled, "--force"], ["export", filled, filled, "--format", "jsonl"]):
        r = thermo(*args)
        assert r.code == 4 and "is the source file itself" in r.err and r.err.count("\n") == 1
        assert filled.read_bytes() == before
    dump = tmp_path / "d.jsonl"
    assert thermo("export", filled, dump, "--format", "jsonl").code == 0
    dumped = dump.read_bytes()
    r = thermo("import-jsonl", dump, dump, "--force")
    assert r.code == 4 and "is the source file itself" in r.err
    assert dump.read_bytes() == dumped
