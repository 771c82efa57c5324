"""``nearest``: cosine over every same-dimension float tensor entry, in the library and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands
from thermo_cli import store
from thermo_cli.cli._common import app
from thermo_cli.codec.tensors import array_to_value
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import ValidationError
from thermo_cli.operations.nearest import TensorIndex, nearest, parse_vector


def put(tg: Thermogram, key: str, array: np.ndarray, dtype: str | None = None) -> None:
    value, spec = array_to_value(np.asarray(array), dtype)
    tg.create(key, value, tensor=spec)


@pytest.fixture
def tg() -> Thermogram:
    t = Thermogram(name="n")
    put(t, "a/x", np.array([1.0, 0.0, 0.0], np.float32))
    put(t, "a/y", np.array([0.0, 2.0, 0.0], np.float32))
    put(t, "b/xy", np.array([1.0, 1.0, 0.0], np.float64))  # other float dtypes count too
    put(t, "b/half", np.array([[0.0, 0.0, 1.0]], np.float16))  # shape [1, 3]: 3 elements
    put(t, "wide", np.ones(4, np.float32))  # another dimension: never compared
    put(t, "ints", np.array([1, 0, 0], np.int32))  # not a float tensor
    t.create("text", b"abc")
    return t


def test_best_first_by_cosine(tg):
    found = nearest(tg, [1.0, 0.1, 0.0], top=3)
    assert [m.key for m in found] == ["a/x", "b/xy", "a/y"]
    assert found[0].cosine == pytest.approx(1 / np.sqrt(1.01))
    assert found[1].cosine == pytest.approx(1.1 / np.sqrt(2 * 1.01))


def test_prefix_top_and_uncommitted_values(tg):
    assert [m.key for m in nearest(tg, [0, 0, 1], prefix="b/")] == ["b/half", "b/xy"]
    assert len(nearest(tg, [0, 0, 1], top=100)) == 4
    tg.delete("a/x")  # uncommitted changes count, as read() sees them
    put(tg, "a/z", np.array([0, 0, 5], np.float32))
    tg.consolidate()
    assert nearest(tg, [0, 0, 1], top=1)[0].key in ("a/z", "b/half")
    assert "a/x" not in [m.key for m in nearest(tg, [1, 0, 0], top=10)]


def test_matches_a_brute_force_loop():
    rng = np.random.default_rng(0)
    t = Thermogram(name="r")
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    for i, v in enumerate(vectors):
        put(t, f"k{i:03d}", v)
    q = rng.standard_normal(16).astype(np.float32)
    want = sorted(
        ((float(v @ q / np.linalg.norm(v) / np.linalg.norm(q)), f"k{i:03d}") for i, v in enumerate(vectors)),
        reverse=True,
    )[:7]
    index = TensorIndex.from_thermogram(t, 16)
    got = index.query(q, 7)
    assert [m.key for m in got] == [k for _, k in want]
    assert np.allclose([m.cosine for m in got], [c for c, _ in want], atol=1e-5)


@pytest.mark.parametrize(
    ("vector", "message"),
    [([0, 0, 0], "all zeros"), ([1, float("nan"), 0], "not finite"), ([[1, 2, 3]], "shape"), ([], "shape")],
)
def test_bad_vectors_are_refused(tg, vector, message):
    with pytest.raises(ValidationError, match=message):
        nearest(tg, vector)


def test_parse_vector_from_text_and_files(tmp_path):
    assert parse_vector("1, 2,3").tolist() == [1, 2, 3]
    np.save(tmp_path / "v.npy", np.array([[4, 5]], np.float32))
    assert parse_vector(str(tmp_path / "v.npy")).tolist() == [4, 5]
    (tmp_path / "v.json").write_text("[6, 7]")
    assert parse_vector(str(tmp_path / "v.json")).tolist() == [6, 7]
    with pytest.raises(ValidationError, match="neither a file nor numbers"):
        parse_vector("one,two")


def test_cli(tmp_path, tg):
    path = tmp_path / "n.thermo"
    store.create(path, tg)
    before = path.read_bytes()
    r = CliRunner().invoke(app, ["nearest", str(path), "--vector", "1,0.1,0", "--top", "2", "--json"])
    assert r.exit_code == 0, r.stderr
    assert [m["key"] for m in json.loads(r.stdout)] == ["a/x", "b/xy"]
    r = CliRunner().invoke(app, ["nearest", str(path), "--vector", "0,0,1", "--prefix", "b/"])
    assert r.stdout.splitlines()[0].endswith("\tb/half")
    r = CliRunner().invoke(app, ["nearest", str(path), "--vector", "0,0"])
    assert r.exit_code == 3 and r.stderr.startswith("thermo: error: vector")
    r = CliRunner().invoke(app, ["nearest", str(path), "--vector", "x,y"])
    assert r.exit_code == 3 and len(r.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before
