"""``thermo snn init | run | stats``: results, JSON, and files left untouched on every error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands
from thermo_cli import store
from thermo_cli.cli._common import app
from thermo_cli.operations.snn.runner import load_network


def thermo(*args, input=None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def memory(tmp_path) -> Path:
    path = tmp_path / "m.thermo"
    r = thermo(
        "snn", "init", path, "--neurons", "12", "--dim", "16", "--seed", "5", "--spike-threshold", "0.3"
    )
    assert r.exit_code == 0, r.stderr
    return path


@pytest.fixture
def acts(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    centres = np.eye(16)[:3]
    x = centres[rng.integers(0, 3, 300)] + 0.2 * rng.standard_normal((300, 16))
    path = tmp_path / "acts.npy"
    np.save(path, x.astype(np.float32))
    return path


def test_init_creates_a_file_with_a_network(memory):
    tg = store.load(memory)
    net = load_network(tg)
    assert (net.config.num_neurons, net.config.input_dim, net.config.top_k) == (12, 16, 10)
    assert net.seed == 5 and net.config.spike_threshold == 0.3


def test_init_json_and_existing_files(tmp_path, memory):
    r = thermo("snn", "init", memory, "--neurons", "4", "--dim", "8")
    assert r.exit_code == 4 and "already has a spiking network" in r.stderr
    r = thermo("snn", "init", memory, "--neurons", "4", "--dim", "8", "--ternary", "--force", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["config"]["use_ternary"] and doc["config"]["top_k"] == 3 and not doc["created"]
    plain = tmp_path / "plain.thermo"
    assert thermo("init", plain).exit_code == 0
    assert thermo("snn", "init", plain, "--dim", "8", "--frozen-prototypes").exit_code == 0
    assert not load_network(store.load(plain)).config.learn_prototypes


@pytest.mark.parametrize("top_k", ["9", "4"])
def test_init_with_bad_settings_leaves_no_file(tmp_path, top_k):
    path = tmp_path / "x.thermo"
    r = thermo("snn", "init", path, "--neurons", "4", "--top-k", top_k)
    assert r.exit_code == 2 and "--top-k" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "never to itself" in r.stderr
    assert not path.exists()


@pytest.mark.parametrize(("neurons", "top_k"), [(10, 9), (3, 2), (1, 0), (11, 10)])
def test_default_top_k_never_connects_a_neuron_to_itself(tmp_path, neurons, top_k):
    path = tmp_path / "x.thermo"
    r = thermo("snn", "init", path, "--neurons", str(neurons), "--dim", "4")
    assert r.exit_code == 0, r.stderr
    net = load_network(store.load(path))
    assert net.config.top_k == top_k
    assert not (net.targets == np.arange(neurons)[:, None]).any()


def test_run_applies_and_saves(memory, acts):
    r = thermo("snn", "run", memory, "--input", acts, "--reward", "0.2", "--decay", "0.01", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["activations"] == 300 and doc["tick_after"] == 300
    assert doc["counters"]["recruits"] >= 3 and doc["spiking_tick_fraction"] > 0.9
    assert "processed 300 activations" in r.stderr
    tg = store.load(memory, log="full")
    assert load_network(tg).tick == 300
    snn_deltas = [rec for rec in tg.records if getattr(rec, "source", "").startswith("snn_")]
    assert len(snn_deltas) == doc["deltas"]


def test_run_from_stdin_jsonl(memory):
    lines = "\n".join(json.dumps([1.0] + [0.0] * 15) for _ in range(4)) + "\n"
    r = thermo("snn", "run", memory, "--input", "-", input=lines)
    assert r.exit_code == 0, r.stderr
    assert load_network(store.load(memory)).tick == 4


def test_dry_run_writes_nothing(memory, acts):
    before = digest(memory)
    r = thermo("snn", "run", memory, "--input", acts, "--dry-run")
    assert r.exit_code == 0 and "would apply" in r.stderr
    assert digest(memory) == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--reward", "nan"], 2, "reward"),
        (["--decay", "2"], 2, "decay"),
        (["--tensor", "x"], None, None),
    ],
)
def test_bad_options_leave_the_file(memory, acts, args, code, message):
    before = digest(memory)
    r = thermo("snn", "run", memory, "--input", acts, *args)
    if code is None:  # --tensor is ignored for .npy
        assert r.exit_code == 0
        return
    assert r.exit_code == code and message in r.stderr
    assert digest(memory) == before


def test_nan_in_input_is_one_line_and_leaves_the_file(memory, tmp_path):
    x = np.ones((5, 16), np.float32)
    x[3, 9] = np.nan
    np.save(tmp_path / "bad.npy", x)
    before = digest(memory)
    r = thermo("snn", "run", memory, "--input", tmp_path / "bad.npy")
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines() == [
        f"thermo: error: {tmp_path / 'bad.npy'}: activation 3, element 9: NaN (activations must be finite)"
    ]
    assert digest(memory) == before


def test_wrong_dimension_and_missing_files(memory, tmp_path):
    np.save(tmp_path / "wide.npy", np.ones((2, 17), np.float32))
    before = digest(memory)
    r = thermo("snn", "run", memory, "--input", tmp_path / "wide.npy")
    assert r.exit_code == 3 and "17 elements, the network expects 16" in r.stderr
    r = thermo("snn", "run", memory, "--input", tmp_path / "none.npy")
    assert r.exit_code == 6
    assert digest(memory) == before
    r = thermo("snn", "stats", tmp_path / "none.thermo")
    assert r.exit_code != 0 and len(r.stderr.strip().splitlines()) == 1


def test_file_without_network(tmp_path, acts):
    plain = tmp_path / "plain.thermo"
    thermo("init", plain)
    before = digest(plain)
    r = thermo("snn", "run", plain, "--input", acts)
    assert r.exit_code == 6 and "no spiking network" in r.stderr
    assert thermo("snn", "stats", plain).exit_code == 6
    assert digest(plain) == before


def test_legacy_files_are_refused(tmp_path):
    legacy = Path(__file__).resolve().parents[2] / "fixtures" / "legacy" / "v0.5"
    sample = next(p for p in sorted(legacy.iterdir()) if p.is_file())
    copy = tmp_path / sample.name
    copy.write_bytes(sample.read_bytes())
    r = thermo("snn", "init", copy, "--dim", "8")
    assert r.exit_code == 4 and "thermo migrate" in r.stderr
    assert copy.read_bytes() == sample.read_bytes()


def test_stats(memory, acts):
    thermo("snn", "run", memory, "--input", acts)
    r = thermo("snn", "stats", memory, "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["tick"] == 300 and doc["mode"] == "continuous"
    assert sum(doc["firing_rates"]["histogram"]["counts"]) == 12
    assert sum(doc["weights"]["histogram"]["counts"]) == 12 * 11  # any two concepts may associate
    assert set(doc["neuromod"]) == {"dopamine", "serotonin", "norepinephrine", "acetylcholine"}
    text = thermo("snn", "stats", memory).stdout
    assert "firing rates" in text and "weights" in text and "dopamine" in text


def test_ternary_stats(tmp_path):
    path = tmp_path / "t.thermo"
    thermo("snn", "init", path, "--neurons", "6", "--dim", "8", "--ternary")
    doc = json.loads(thermo("snn", "stats", path, "--json").stdout)
    assert doc["weights"] == {"connections": 30, "neg": 0, "zero": 30, "pos": 0}  # 6 x 5: no self-loops


def test_assign_prints_one_line_per_row_and_changes_nothing(memory, acts):
    thermo("snn", "run", memory, "--input", acts)
    before = digest(memory)
    r = thermo("snn", "assign", memory, "--input", acts, "--json")
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["row"] for row in rows] == list(range(300))
    assert all(set(row) == {"row", "concept", "cosine"} for row in rows)
    concepts = {row["concept"] for row in rows}
    tg = store.load(memory)
    assert concepts <= set(tg.keys()) and len(concepts) >= 3
    x = np.load(acts)
    labels = np.argmax(x[:, :3], axis=1)
    majority = set()
    for label in range(3):  # each of the three clusters goes (but for an outlier) to a concept of its own
        names = [rows[i]["concept"] for i in np.flatnonzero(labels == label)]
        top = max(set(names), key=names.count)
        assert names.count(top) >= 0.97 * len(names)
        majority.add(top)
    assert len(majority) == 3
    text = thermo("snn", "assign", memory, "--input", acts).stdout.splitlines()
    assert text[0].split("\t")[1] == rows[0]["concept"]
    assert digest(memory) == before


def test_concepts_are_ordinary_entries(memory, acts, tmp_path):
    thermo("snn", "run", memory, "--input", acts)
    doc = json.loads(thermo("snn", "stats", memory, "--json").stdout)
    key = doc["concepts"][0]["key"]
    assert doc["concepts"][0]["count"] >= doc["concepts"][-1]["count"]
    got = json.loads(thermo("get", memory, key, "--json").stdout)
    assert got["tensor"]["dtype"] == "F32" and got["tensor"]["shape"] == [16]
    assert key in thermo("keys", memory).stdout
    out = tmp_path / "c.safetensors"
    assert thermo("consolidate", memory).exit_code == 0
    assert thermo("export-safetensors", memory, out).exit_code == 0
    assert key.encode() in out.read_bytes()[:4096]
    assert thermo("verify", memory).exit_code == 0
    assert thermo("checkpoint", memory).exit_code == 0
    proof = tmp_path / "proof.json"
    assert thermo("prove", memory, key, "-o", proof).exit_code == 0
    assert thermo("verify-proof", proof).exit_code == 0  # the concept is in the proven state
    near = json.loads(thermo("nearest", memory, "--vector", ",".join(["1"] + ["0"] * 15), "--json").stdout)
    # concepts are directions in the centred input space, so a raw axis is near but not on one
    assert near[0]["key"].startswith("snn/concept/") and near[0]["cosine"] > 0.75


def test_one_concept_for_everything_warns(tmp_path):
    path = tmp_path / "w.thermo"
    thermo("snn", "init", path, "--neurons", "4", "--dim", "8", "--center", "none")
    np.save(tmp_path / "same.npy", np.ones((40, 8), np.float32))
    r = thermo("snn", "run", path, "--input", tmp_path / "same.npy")
    assert r.exit_code == 0 and "thermo: warning: one concept (snn/concept/0) took 100%" in r.stderr


def test_assign_refuses_frozen_prototypes(tmp_path, acts):
    path = tmp_path / "f.thermo"
    thermo("snn", "init", path, "--neurons", "12", "--dim", "16", "--frozen-prototypes")
    r = thermo("snn", "assign", path, "--input", acts)
    assert r.exit_code == 3 and "frozen prototypes hold no concepts" in r.stderr


def test_the_missing_network_error_names_the_file(tmp_path, acts):
    plain = tmp_path / "plain.thermo"
    thermo("init", plain)
    for command in (("snn", "run", plain, "--input", acts), ("snn", "assign", plain, "--input", acts)):
        r = thermo(*command)
        assert r.exit_code == 6
        assert r.stderr.strip().splitlines() == [
            f"thermo: error: {plain}: has no spiking network (attach one with `snn init`)"
        ]
