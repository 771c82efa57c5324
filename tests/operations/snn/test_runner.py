"""A thermogram's own network: deltas through the normal log, state saved in the file."""

from __future__ import annotations

import numpy as np
import pytest

from thermo_cli import store
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import NotFoundError, RefusedError, ValidationError
from thermo_cli.model import Delta
from thermo_cli.operations.snn import EmbeddedSNN, NeuromodState, SNNConfig
from thermo_cli.operations.snn.runner import attach_network, load_network, run

CFG = SNNConfig(num_neurons=12, input_dim=16, top_k=4, spike_threshold=0.3, decay_rate=0.2, center="none")


def co_firing_inputs(n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.zeros(16, np.float32)
    base[0] = 1.0
    return (base + 0.05 * rng.standard_normal((n, 16))).astype(np.float32)


def thermogram_with_network() -> Thermogram:
    tg = Thermogram(name="t")
    net = attach_network(tg, CFG, seed=4)
    net.set_prototypes(np.tile(np.eye(16, dtype=np.float32)[0], (4, 1)), neurons=[0, 1, 2, 3])
    tg.set_extra("snn", net.to_state())
    return tg


def test_run_applies_deltas_through_the_log_and_saves_the_network():
    tg = thermogram_with_network()
    report = run(tg, co_firing_inputs(), reward=0.3, decay=0.05)
    assert report.by_kind["snn_concept create"] == 4  # set_prototypes: written by the run's flush
    concept_writes = report.by_kind["snn_concept create"] + report.by_kind.get("snn_concept update", 0)
    assert report.by_kind["snn_stdp merge"] == report.deltas - concept_writes
    records = [r for r in tg.records if isinstance(r, Delta)]
    assert len(records) == report.deltas
    assert all(r.hash for r in records)
    net = load_network(tg)
    assert net.tick == 60
    # any two co-firing concepts associate, not only ring neighbours: 4 x 3 ordered pairs
    assoc = sorted({r.key for r in records if r.key.startswith("snn/assoc/")})
    assert assoc == sorted(f"snn/assoc/{a}/{b}" for a in range(4) for b in range(4) if a != b)
    last = [r for r in records if r.key == "snn/assoc/0/1"][-1]
    assert tg.read("snn/assoc/0/1") == last.value  # the weight as of its last STDP update
    entry = tg.read_entry("snn/assoc/0/1")
    assert entry.tensor.dtype == "F32" and entry.tensor.shape == ()
    assert entry.strength == pytest.approx(float(np.frombuffer(last.value, "<f4")[0]))
    for neuron in range(4):  # after a run every concept entry equals its prototype
        value = tg.read(f"snn/concept/{net.book.ids[neuron]}")
        assert np.array_equal(np.frombuffer(value, "<f4"), net.prototypes[neuron])
    assert 0.5 < net.neuromod.dopamine < 0.8  # rewarded, then fading


def test_dry_run_changes_nothing():
    tg = thermogram_with_network()
    state, before = tg.extras["snn"], list(tg.records)
    report = run(tg, co_firing_inputs(), dry_run=True)
    assert report.deltas > 0
    assert tg.records == before and tg.extras["snn"] is state


def test_bad_input_changes_nothing():
    tg = thermogram_with_network()
    state, before = tg.extras["snn"], list(tg.records)
    bad = co_firing_inputs()
    bad[40, 3] = np.nan
    with pytest.raises(ValidationError, match="activation 40, element 3: NaN"):
        run(tg, bad)
    with pytest.raises(ValidationError, match="reward"):
        run(tg, co_firing_inputs(), reward=float("inf"))
    with pytest.raises(ValidationError, match="decay"):
        run(tg, co_firing_inputs(), decay=float("nan"))
    assert tg.records == before and tg.extras["snn"] is state


def test_attach_refuses_to_replace_unless_asked():
    tg = thermogram_with_network()
    with pytest.raises(RefusedError, match="already has"):
        attach_network(tg, CFG, seed=1)
    attach_network(tg, CFG, seed=1, replace=True)
    assert load_network(tg).seed == 1


def test_a_thermogram_without_network():
    with pytest.raises(NotFoundError, match="no spiking network"):
        load_network(Thermogram())


def test_network_survives_the_file_exactly(tmp_path):
    path = tmp_path / "m.thermo"
    tg = thermogram_with_network()
    run(tg, co_firing_inputs())
    store.create(path, tg)
    again = store.load(path)
    assert again.extras["snn"] == tg.extras["snn"]
    a, b = load_network(tg), load_network(again)
    more = co_firing_inputs(30)
    assert [d.value for d in a.process_batch(more)] == [d.value for d in b.process_batch(more)]
    assert a.to_state() == b.to_state()


def test_merge_of_a_new_weight_lands_after_consolidation():
    tg = thermogram_with_network()
    run(tg, co_firing_inputs(5))
    before = tg.read("snn/assoc/0/1")
    tg.consolidate()
    assert tg.read("snn/assoc/0/1") == before


def test_weights_deleted_by_decay_read_as_absent():
    tg = Thermogram()
    net = EmbeddedSNN(
        SNNConfig(num_neurons=12, input_dim=16, top_k=4, decay_rate=1.0, learn_prototypes=False), seed=0
    )
    net.set_prototypes(np.tile(np.eye(16, dtype=np.float32)[0], (4, 1)), neurons=[0, 1, 2, 3])
    tg.set_extra("snn", net.to_state())
    tg.extras["snn"]["neuromod"] = NeuromodState(serotonin=0.0).to_dict()
    x = np.zeros((10, 16), np.float32)
    x[0, 0] = 1.0  # tick 1: co-firing writes weights; tick 10: decay deletes all 48 once
    report = run(tg, x)
    assert report.by_kind["snn_decay delete"] == 48
    assert report.by_kind["snn_stdp merge"] >= 6
    assert tg.read("weight_0_1") is None


def test_merged_concepts_are_logged_in_order_and_bound():
    tg = Thermogram(name="t")
    attach_network(tg, SNNConfig(num_neurons=3, input_dim=16, top_k=1, center="none"), seed=0)
    basis = np.eye(16, dtype=np.float32)
    report = run(tg, basis[:5])  # five orthogonal concepts through three neurons: two merges
    assert report.events == 2 and report.concepts == 3
    kinds = [(type(r).__name__, getattr(r, "kind", None) or r.key) for r in tg.records]
    merged = [i for i, (_, k) in enumerate(kinds) if k == "snn_concept_merged"]
    assert len(merged) == 2
    for i in merged:  # each event follows the Delete of the concept it removed
        assert tg.records[i - 1].key == tg.records[i].fields["removed"]
    assert sorted(k for k in tg if k.startswith("snn/concept/")) == [
        "snn/concept/0",  # merged with 1, then with 3 (the closest pair: all are orthogonal,
        "snn/concept/2",  # so the lowest neurons; the more used, then older, concept is kept)
        "snn/concept/4",
    ]
    assert tg.bind_state() is not None  # the events are layer changes the commit binds


def test_one_dominant_concept_warns():
    tg = Thermogram(name="t")
    attach_network(tg, SNNConfig(num_neurons=4, input_dim=16, top_k=1, center="none"), seed=0)
    x = np.ones((30, 16), np.float32) + 0.01 * np.random.default_rng(0).standard_normal((30, 16)).astype(
        np.float32
    )
    (warning,) = run(tg, x).warnings
    assert "snn/concept/0" in warning and "100%" in warning
