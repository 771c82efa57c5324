"""``thermo snn run --input`` with .npz archives (``--tensor``) and JSON 2-D arrays."""

from __future__ import annotations

import json

import numpy as np

from thermo_cli import store
from thermo_cli.operations.snn.runner import load_network

from .test_cli import acts, digest, memory, thermo

__all__ = ["acts", "memory"]  # fixtures used below


def test_npz_with_tensor(memory, acts, tmp_path):
    x = np.load(acts)[:40]
    np.savez(tmp_path / "acts.npz", hidden=x, labels=np.arange(40))
    before = digest(memory)
    r = thermo("snn", "run", memory, "--input", tmp_path / "acts.npz")
    assert r.exit_code == 3 and digest(memory) == before
    assert r.stderr.strip().splitlines() == [
        f"thermo: error: {tmp_path / 'acts.npz'}: holds 2 arrays ('hidden', 'labels'); "
        "name the activations with --tensor"
    ]
    r = thermo("snn", "run", memory, "--input", tmp_path / "acts.npz", "--tensor", "hidden", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["activations"] == 40
    assert load_network(store.load(memory)).tick == 40


def test_json_two_dimensional_array_from_a_file_and_stdin(memory, acts, tmp_path):
    x = np.load(acts)[:10].astype(np.float64)
    (tmp_path / "acts.json").write_text(json.dumps(x.tolist(), indent=1))
    r = thermo("snn", "run", memory, "--input", tmp_path / "acts.json")
    assert r.exit_code == 0, r.stderr
    r = thermo("snn", "run", memory, "--input", "-", "--format", "json", input=json.dumps(x.tolist()))
    assert r.exit_code == 0, r.stderr
    assert load_network(store.load(memory)).tick == 20
