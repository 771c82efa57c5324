"""EmbeddedSNN: the crate's dynamics (against a loop-by-loop oracle), the FIXes, errors, state."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from thermo_cli.codec import cbor
from thermo_cli.errors import CorruptError, ValidationError
from thermo_cli.model import DeltaType, Ternary
from thermo_cli.operations.snn import EmbeddedSNN, NeuromodState, SNNConfig
from thermo_cli.operations.snn.network import weight_key

from .oracle import OracleSNN


def small(**changes) -> SNNConfig:
    base = {"num_neurons": 12, "input_dim": 16, "top_k": 4}
    base.update(changes)
    return SNNConfig(**base)


def co_firing_net(ternary: bool = False, **changes) -> tuple[EmbeddedSNN, np.ndarray]:
    """Neurons 0..3 share one prototype, so an input along it makes all four spike."""
    net = EmbeddedSNN(small(use_ternary=ternary, learn_prototypes=False, **changes), seed=1)
    direction = np.zeros(16, dtype=np.float32)
    direction[0] = 1.0
    net.set_prototypes(np.tile(direction, (4, 1)), neurons=[0, 1, 2, 3])
    return net, direction


# --- construction ----------------------------------------------------------------------------


def test_defaults_match_the_crate():
    net = EmbeddedSNN(SNNConfig(learn_prototypes=False), seed=0)
    assert net.prototypes.shape == (100, 2048)
    assert np.allclose(np.linalg.norm(net.prototypes, axis=1), 1.0, atol=1e-5)
    assert net.weights.shape == (100, 10)
    assert (net.weights == np.float32(0.1)).all()
    assert (net.targets[7] == [(7 + k) % 100 for k in range(1, 11)]).all()
    assert net.weight(99, 3) == pytest.approx(0.1)
    assert net.weight(3, 99) is None
    assert net.tick == 0
    assert net.neuromod == NeuromodState()


def test_learned_concepts_start_empty_and_fully_connectable():
    net = EmbeddedSNN(seed=0)
    assert not net.prototypes.any()  # no neuron holds a concept, so none can spike
    assert net.weights.shape == (100, 99) and not net.weights.any()
    assert net.process(np.ones(2048, np.float32)) == []  # the first input: centred to zero
    assert net.counters["spikes"] == 0


def test_ternary_weights_start_at_zero():
    net = EmbeddedSNN(small(use_ternary=True), seed=0)
    assert (net.weights == 0).all()


def test_same_seed_same_network_other_seed_differs():
    a, b, c = (EmbeddedSNN(small(learn_prototypes=False), seed=s) for s in (5, 5, 6))
    assert np.array_equal(a.prototypes, b.prototypes)
    assert not np.array_equal(a.prototypes, c.prototypes)
    x = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    assert [d.key for d in a.process_batch(x)] == [d.key for d in b.process_batch(x)]
    assert np.array_equal(a.prototypes, b.prototypes)


def test_seed_none_draws_and_records_a_seed():
    net = EmbeddedSNN(small())
    again = EmbeddedSNN(small(), seed=net.seed)
    assert np.array_equal(net.prototypes, again.prototypes)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValidationError, match="seed"):
        EmbeddedSNN(small(), seed=seed)


# --- the crate's dynamics, tick by tick ------------------------------------------------------


@pytest.mark.parametrize("ternary", [False, True])
def test_matches_a_loop_by_loop_transcription_of_the_crate(ternary):
    cfg = small(learn_prototypes=False, spike_threshold=0.3, use_ternary=ternary)
    net = EmbeddedSNN(cfg, seed=3)
    # Three shared directions give co-firing groups, so STDP, homeostasis and decay all act.
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((3, 16))
    net.set_prototypes(
        centres[[0, 0, 0, 1, 1, 2]] + 0.05 * rng.standard_normal((6, 16)), neurons=[0, 1, 2, 4, 5, 8]
    )
    oracle = OracleSNN(net.prototypes, 4, threshold=0.3, ternary=ternary)
    nm = NeuromodState(dopamine=0.8, serotonin=0.3, norepinephrine=0.6, acetylcholine=0.7)
    inputs = centres[rng.integers(0, 3, 400)] + 0.3 * rng.standard_normal((400, 16))
    for x in inputs.astype(np.float32):
        got = net.process(x, nm, timestamp_ns=1)
        want = oracle.process(x.tolist(), nm.dopamine, nm.serotonin, nm.norepinephrine, nm.acetylcholine)
        assert [(d.delta_type.label, d.key) for d in got] == [(k, key) for k, key, _ in want]
    assert np.allclose(net.weights, oracle.weights(), atol=1e-5)
    assert np.allclose(net.traces, np.array(oracle.traces, np.float32), atol=1e-4)
    assert np.allclose(net.firing_rates, np.array(oracle.rates, np.float32), atol=1e-6)
    assert net.counters["stdp_updates"] > 20


def test_stdp_merge_deltas_carry_the_weight_as_float32():
    net, direction = co_firing_net()
    nm = NeuromodState(dopamine=1.0)
    deltas = net.process(direction, nm, timestamp_ns=123)
    # 0..3 spike; connections i -> i+1..i+4 among them, in the crate's order (pre, then post).
    assert [d.key for d in deltas] == [
        weight_key(i, j) for i, j in [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    ]
    for d in deltas:
        assert d.delta_type is DeltaType.MERGE
        assert d.source == "snn_stdp"
        assert d.timestamp_ns == 123
        (w,) = struct.unpack("<f", d.value)
        assert w == pytest.approx(0.11) and d.strength == w
    assert net.weight(0, 1) == pytest.approx(0.11)
    assert net.weight(4, 5) == pytest.approx(0.1)  # not co-firing: unchanged


def test_stdp_with_no_dopamine_still_logs_the_pair_unchanged():
    net, direction = co_firing_net()
    deltas = net.process(direction, NeuromodState(dopamine=0.0))
    assert len(deltas) == 6
    assert all(d.strength == pytest.approx(0.1) for d in deltas)


def test_homeostasis_scales_outgoing_weights_every_100_ticks():
    net = EmbeddedSNN(small(learn_prototypes=False, decay_rate=0.0), seed=0)
    zeros = np.zeros((100, 16), dtype=np.float32)
    net.process_batch(zeros)  # nothing fires: rate 0, error = target 0.1
    expected = np.float32(0.1) * (np.float32(1) + np.float32(0.1) * np.float32(0.01) * np.float32(0.5))
    assert np.allclose(net.weights, expected)


# --- FIX: one Delete per weight that falls away -------------------------------------------


def test_decayed_weight_is_deleted_once():
    net = EmbeddedSNN(small(learn_prototypes=False, decay_rate=1.0), seed=0)
    stress = NeuromodState(serotonin=0.0)  # decay = decay_rate * (1 - serotonin) = 1
    zeros = np.zeros((40, 16), dtype=np.float32)
    deltas = net.process_batch(zeros, stress)
    assert len(deltas) == 12 * 4  # every connection once, at tick 10; none at 20, 30, 40
    assert {d.source for d in deltas} == {"snn_decay"}
    assert all(d.delta_type is DeltaType.DELETE and d.value == b"" for d in deltas)
    assert len({d.key for d in deltas}) == 48
    assert net.counters["deletes"] == 48


def test_a_revived_weight_is_deleted_again_once():
    net, direction = co_firing_net(decay_rate=1.0)
    nm = NeuromodState(serotonin=0.0)
    quiet = np.zeros(16, dtype=np.float32)
    first = [d for _ in range(10) for d in net.process(quiet, nm)]
    assert len(first) == 48
    merges = net.process(direction, nm)  # co-firing revives the six connections among 0..3
    assert len(merges) == 6
    later = [d for _ in range(29) for d in net.process(quiet, nm)]
    assert sorted(d.key for d in later) == sorted(d.key for d in merges)


def test_small_weights_are_pruned_to_zero():
    net = EmbeddedSNN(small(learn_prototypes=False, decay_rate=0.95), seed=0)
    net.process_batch(np.zeros((10, 16), np.float32), NeuromodState(serotonin=0.0))
    assert (net.weights == 0).all()  # 0.1 * 0.05 = 0.005 < 0.01


# --- FIX: ternary STDP leaves zero ----------------------------------------------------------


def test_ternary_co_firing_lifts_zero_to_pos_and_logs_one_byte():
    net, direction = co_firing_net(ternary=True)
    deltas = net.process(direction, timestamp_ns=5)
    assert len(deltas) == 6
    for d in deltas:
        assert d.delta_type is DeltaType.MERGE
        assert d.source == "snn_ternary_stdp"
        assert d.value == b"\x01"
        assert d.ternary is Ternary.POS and d.strength == 1.0
    assert net.weight(0, 1) == 1.0
    assert net.process(direction) == []  # Pos stays Pos: no change, no delta


def test_ternary_decay_deletes_only_weights_that_existed():
    net, direction = co_firing_net(ternary=True, decay_rate=1.0)
    quiet = np.zeros(16, dtype=np.float32)
    calm = NeuromodState(serotonin=1.0)  # decay 0: weights keep their values
    assert [d for _ in range(20) for d in net.process(quiet, calm)] == []  # the crate: 48 per tick
    net.process(direction, calm)
    stressed = NeuromodState(serotonin=0.0)  # decay 1.0 > 0.5: every ±1 steps to 0
    deletes = [d for _ in range(20) for d in net.process(quiet, stressed)]
    assert len(deletes) == 6
    assert {d.source for d in deletes} == {"snn_ternary_decay"}
    assert (net.weights == 0).all()


def test_ternary_homeostasis_leaves_weights_alone():
    net, direction = co_firing_net(ternary=True)
    net.process(direction)
    before = net.weights
    net.process_batch(np.zeros((99, 16), np.float32))
    assert np.array_equal(net.weights, before)


# --- FIX: prototypes learn -----------------------------------------------------------------


def test_novel_input_recruits_an_unused_neuron_as_a_new_concept_entry():
    net = EmbeddedSNN(small(input_dim=512, center="none"), seed=0)
    x = np.sin(np.arange(512, dtype=np.float32))
    (create,) = net.process(x)
    assert net.counters["recruits"] == 1
    assert np.allclose(net.prototypes[0], x / np.linalg.norm(x), atol=1e-6)
    assert (create.delta_type, create.key, create.source) == (
        DeltaType.CREATE,
        "snn/concept/0",
        "snn_concept",
    )
    assert create.tensor.dtype == "F32" and create.tensor.shape == (512,)
    assert np.array_equal(np.frombuffer(create.value, "<f4"), net.prototypes[0])
    assert create.custom == {"concept": 0, "neuron": 0, "count": 1, "first_seen": 1, "last_seen": 1}
    assert create.strength == pytest.approx(1 / 11)
    assert net.process(x) == []  # recognised: spikes and learns; no drift, so no delta
    assert net.counters["recruits"] == 1
    assert net.counters["ticks_with_spikes"] == 1  # the first tick found nothing
    (update,) = net.flush_concepts()  # the count changed: the entry catches up
    assert update.delta_type == DeltaType.UPDATE and update.custom["count"] == 2
    assert net.flush_concepts() == []


def test_winner_moves_toward_the_input_at_the_dopamine_scaled_rate():
    net = EmbeddedSNN(small(center="none"), seed=0)
    a = np.zeros(16, np.float32)
    a[0] = 1.0
    net.set_prototypes(a[None, :], neurons=[3])
    b = a.copy()
    b[1] = 1.0  # 45 degrees from a: neuron 3 spikes (cos 0.707)
    nm = NeuromodState(dopamine=0.8)
    net.process(b, nm)
    eta = 10 * 0.01 * 0.8
    want = (1 - eta) * a + eta * b / np.linalg.norm(b)
    assert np.allclose(net.prototypes[3], want / np.linalg.norm(want), atol=1e-6)
    assert np.linalg.norm(net.prototypes[3]) == pytest.approx(1.0, abs=1e-6)


def test_no_dopamine_no_prototype_learning():
    net = EmbeddedSNN(small(), seed=0)
    before = net.prototypes
    net.process_batch(np.random.default_rng(0).standard_normal((20, 16)), NeuromodState(dopamine=0.0))
    assert np.array_equal(net.prototypes, before)
    assert net.counters["prototype_updates"] == 0


def test_frozen_prototypes_never_change():
    net = EmbeddedSNN(small(learn_prototypes=False), seed=0)
    before = net.prototypes
    net.process_batch(np.random.default_rng(0).standard_normal((50, 16)))
    assert np.array_equal(net.prototypes, before)


def test_one_over_n_rate_makes_a_prototype_the_exact_mean():
    net = EmbeddedSNN(small(center="none", prototype_rate="1/n", spike_threshold=0.1), seed=0)
    rng = np.random.default_rng(3)
    x = np.eye(16, dtype=np.float32)[0] + 0.3 * rng.standard_normal((40, 16)).astype(np.float32)
    net.process_batch(x)
    assert net.book.counts[0] == 40 and net.counters["recruits"] == 1
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    mean = unit.mean(axis=0)
    assert np.allclose(net.prototypes[0], mean / np.linalg.norm(mean), atol=1e-5)
    assert net.book.radius[0] == pytest.approx(np.linalg.norm(mean), rel=1e-5)


def test_running_mean_centres_the_inputs():
    net = EmbeddedSNN(small(spike_threshold=0.5), seed=0)
    offset = np.full(16, 50.0, np.float32)  # a large common component, as in raw hidden states
    basis = np.eye(16, dtype=np.float32)
    net.process_batch(np.stack([offset + basis[i % 4] for i in range(40)]))
    assert net.counters["recruits"] >= 4  # uncentred, all 40 inputs are one direction
    assert np.allclose(net.book.mean, offset + 0.25 * basis[:4].sum(axis=0), atol=1e-4)
    ids, cos = net.assign(offset + basis[:4])
    assert len(set(ids.tolist())) == 4 and (cos > 0.9).all()


def test_when_neurons_run_out_the_two_closest_concepts_merge():
    net = EmbeddedSNN(
        small(num_neurons=3, top_k=1, center="none", prototype_rate="1/n", spike_threshold=0.7), seed=0
    )
    basis = np.eye(16, dtype=np.float32)
    near = basis[0] + 1.2 * basis[1]  # cosine 0.64 to basis[0]: the closest pair, yet novel at 0.7
    net.process_batch(np.stack([basis[0], basis[0], basis[5], near]))
    assert net.counters["recruits"] == 3 and (net.book.ids == [0, 1, 2]).all()
    assert net.pop_events() == []  # positions count the deltas returned since the last pop
    deltas = net.process(basis[9])  # novel, and every neuron is in use: 0 and 2 merge
    events = net.pop_events()
    kinds = [(d.delta_type, d.key) for d in deltas]
    assert kinds == [
        (DeltaType.UPDATE, "snn/concept/0"),  # the kept one (more inputs) becomes the mean of both
        (DeltaType.DELETE, "snn/concept/2"),
        (DeltaType.CREATE, "snn/concept/3"),  # the freed neuron holds the new concept
    ]
    assert events == [
        (
            2,
            "snn_concept_merged",
            {
                "kept": "snn/concept/0",
                "removed": "snn/concept/2",
                "neuron": 2,
                "count": 3,
                "cosine": pytest.approx(float(near[0] / np.linalg.norm(near)), abs=1e-6),
            },
        )
    ]
    assert deltas[0].custom["count"] == 3
    mean = 2 * basis[0] + near / np.linalg.norm(near)
    assert np.allclose(net.prototypes[0], mean / np.linalg.norm(mean), atol=1e-6)
    assert np.allclose(net.prototypes[2], basis[9]) and net.book.ids[2] == 3
    assert net.counters["recruits"] == 4


# --- inputs and numerical safety --------------------------------------------------------------


def test_nan_names_the_element_and_changes_nothing():
    net = EmbeddedSNN(small(), seed=0)
    state = net.to_state()
    x = np.ones(16, np.float32)
    x[5] = np.nan
    with pytest.raises(ValidationError, match=r"activation 0, element 5: NaN"):
        net.process(x)
    batch = np.ones((4, 16))
    batch[2, 7] = -np.inf
    with pytest.raises(ValidationError, match=r"activation 2, element 7: -inf"):
        net.process_batch(batch)
    batch[2, 7] = 1e39  # finite in float64, infinite as float32
    with pytest.raises(ValidationError, match=r"activation 2, element 7: 1e\+39 overflows float32"):
        net.process_batch(batch)
    assert net.to_state() == state


@pytest.mark.parametrize("bad", [np.ones(15), np.ones((2, 16)), np.ones((3, 17)), [["a"] * 16], "text"])
def test_wrong_shape_or_type_is_refused(bad):
    net = EmbeddedSNN(small(), seed=0)
    with pytest.raises(ValidationError):
        net.process(bad)
    with pytest.raises(ValidationError):
        net.process_batch(np.ones((2, 15)))


def test_extreme_but_finite_inputs_stay_finite():
    net = EmbeddedSNN(small(), seed=0)
    rows = np.zeros((6, 16), np.float32)
    rows[1] = 3e38
    rows[2, 3] = -3e38
    rows[3] = 1e-40  # subnormal
    rows[4, 0] = 1e-30
    rows[5] = np.arange(16)
    deltas = net.process_batch(np.tile(rows, (5, 1)))
    for x in rows:
        deltas += net.process(x)
    state = net.to_state()
    assert np.isfinite(net.prototypes).all() and np.isfinite(net.weights).all()
    assert np.isfinite(net.traces).all() and np.isfinite(net.firing_rates).all()
    assert all(np.isfinite(d.strength) for d in deltas)
    assert EmbeddedSNN.from_state(state).tick == 36


def test_zero_input_is_harmless():
    net = EmbeddedSNN(small(), seed=0)
    assert net.process(np.zeros(16, np.float32)) == []
    assert net.counters["prototype_updates"] == 0
    assert (net.last_activations == 0).all()


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((5, 16))
    x = (centres[rng.integers(0, 5, 300)] + 0.4 * rng.standard_normal((300, 16))).astype(np.float32)
    cfg = small(spike_threshold=0.35)
    a, b = EmbeddedSNN(cfg, seed=9), EmbeddedSNN(cfg, seed=9)
    got = a.process_batch(x, timestamp_ns=1)
    want = [d for row in x for d in b.process(row, timestamp_ns=1)]
    assert [(d.key, d.delta_type) for d in got] == [(d.key, d.delta_type) for d in want]
    assert np.allclose(a.prototypes, b.prototypes, atol=1e-5)
    assert a.counters == b.counters


def test_batch_progress_and_fading_reward():
    net = EmbeddedSNN(small(), seed=0)
    seen = []
    net.process_batch(
        np.ones((150, 16)), NeuromodState().reward(0.5), neuromod_decay=0.1, progress=seen.append
    )
    assert sum(seen) == 150 and len(seen) == 3
    assert 0.5 < net.neuromod.dopamine < 0.51
    with pytest.raises(ValidationError, match="decay"):
        net.process_batch(np.ones((2, 16)), neuromod_decay=float("nan"))
    assert net.tick == 150


# --- state --------------------------------------------------------------------------------


@pytest.mark.parametrize("ternary", [False, True])
def test_state_round_trips_through_cbor_exactly(ternary):
    rng = np.random.default_rng(4)
    net, direction = co_firing_net(ternary=ternary)
    net.process_batch(rng.standard_normal((57, 16)))
    net.process(direction, NeuromodState(dopamine=0.9, acetylcholine=0.2))
    state = net.to_state()
    restored = EmbeddedSNN.from_state(cbor.decode(cbor.encode(state)))
    assert restored.to_state() == state
    more = rng.standard_normal((80, 16)).astype(np.float32)
    more[::7] = direction
    a = [(d.key, d.value) for d in net.process_batch(more)]
    b = [(d.key, d.value) for d in restored.process_batch(more)]
    assert a == b and restored.to_state() == net.to_state()


def _broken(mutate):
    state = EmbeddedSNN(small(learn_prototypes=False), seed=0).to_state()
    mutate(state)
    return state


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("traces"), "missing field 'traces'"),
        (lambda s: s.update(extra=1), "unknown field 'extra'"),
        (lambda s: s.update(engine="Other"), "engine"),
        (lambda s: s.update(version=1), "version 1"),
        (lambda s: s.update(tick=-1), "tick"),
        (lambda s: s["config"].update(top_k=99), "top_k"),
        (lambda s: s["neuromod"].update(dopamine=2.0), "dopamine"),
        (lambda s: s["counters"].pop("spikes"), "counters"),
        (lambda s: s["prototypes"].update(dtype="float64"), "dtype must be float32"),
        (lambda s: s["prototypes"].update(shape=[12, 15]), "shape"),
        (lambda s: s["weights"].update(data=s["weights"]["data"][:-1]), "data bytes"),
        (lambda s: s["weights"].update(data=b"\x00\x00\xc0\x7f" * 48), "NaN"),
        (lambda s: s["weights"].update(data=np.full(48, 2.0, "<f4").tobytes()), "within"),
        (lambda s: s["live"].update(data=b"\x02" * 48), "boolean"),
        (lambda s: s["last_learned"].update(data=np.full(12, 5, "<i8").tobytes()), "last_learned"),
        (lambda s: s.update(prototypes=[1, 2]), "prototypes"),
        (lambda s: s.update(concepts={}), "concepts"),
    ],
)
def test_damaged_state_is_refused(mutate, message):
    with pytest.raises(CorruptError, match=message):
        EmbeddedSNN.from_state(_broken(mutate))


def _broken_concepts(mutate):
    net = EmbeddedSNN(small(center="none"), seed=0)
    net.process_batch(np.eye(16, dtype=np.float32)[:3])
    state = net.to_state()
    mutate(state["concepts"])
    return state


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.pop("radius"), "expected a map"),
        (lambda c: c.update(next_id=2), "ids must be distinct"),
        (lambda c: c.update(mean_count=-1), "mean_count"),
        (lambda c: c["ids"].update(data=np.full(12, 1, "<i8").tobytes()), "ids must be distinct"),
        (lambda c: c["last_seen"].update(data=np.full(12, 99, "<i8").tobytes()), "inconsistent"),
        (lambda c: c["written"].update(shape=[12, 15]), "shape"),
    ],
)
def test_damaged_concepts_are_refused(mutate, message):
    with pytest.raises(CorruptError, match=message):
        EmbeddedSNN.from_state(_broken_concepts(mutate))


def test_concepts_survive_a_state_round_trip():
    net = EmbeddedSNN(small(), seed=0)
    rng = np.random.default_rng(1)
    net.process_batch(rng.standard_normal((30, 16)).astype(np.float32))
    restored = EmbeddedSNN.from_state(cbor.decode(cbor.encode(net.to_state())))
    more = rng.standard_normal((30, 16)).astype(np.float32)
    assert [(d.key, d.value) for d in net.process_batch(more)] == [
        (d.key, d.value) for d in restored.process_batch(more)
    ]
    assert restored.to_state() == net.to_state()


def test_ternary_state_refuses_other_values():
    state = EmbeddedSNN(small(use_ternary=True, learn_prototypes=False), seed=0).to_state()
    state["weights"]["data"] = b"\x02" * 48
    with pytest.raises(CorruptError, match="ternary"):
        EmbeddedSNN.from_state(state)


def test_set_prototypes_validates():
    net = EmbeddedSNN(small(), seed=0)
    with pytest.raises(ValidationError, match="all zeros"):
        net.set_prototypes(np.zeros((1, 16)))
    with pytest.raises(ValidationError, match="distinct"):
        net.set_prototypes(np.ones((2, 16)), neurons=[1, 1])
    with pytest.raises(ValidationError, match="within"):
        net.set_prototypes(np.ones((1, 16)), neurons=[12])


# --- property: never a NaN -----------------------------------------------------------------

_FINITE32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=40, deadline=None)
@given(
    batch=arrays(np.float32, st.tuples(st.integers(1, 25), st.just(8)), elements=_FINITE32),
    ternary=st.booleans(),
    dopamine=st.floats(0, 1),
    serotonin=st.floats(0, 1),
)
def test_state_and_deltas_stay_finite_for_any_finite_input(batch, ternary, dopamine, serotonin):
    cfg = SNNConfig(
        num_neurons=6, input_dim=8, top_k=3, spike_threshold=0.2, use_ternary=ternary, decay_rate=1.0
    )
    net = EmbeddedSNN(cfg, seed=0)
    nm = NeuromodState(dopamine=dopamine, serotonin=serotonin)
    deltas = net.process_batch(batch, nm) + [d for x in batch for d in net.process(x)]
    for array in (net.prototypes, net.weights, net.traces, net.firing_rates, net.last_activations):
        assert np.isfinite(array).all()
    assert all(np.isfinite(d.strength) for d in deltas)
    assert all(
        np.isfinite(np.frombuffer(d.value, np.float32)).all() for d in deltas if d.source == "snn_stdp"
    )
    norms = np.linalg.norm(net.prototypes, axis=1)
    held = net.book.ids >= 0  # a neuron without a concept has a zero prototype
    assert np.allclose(norms[held], 1.0, atol=1e-4) and not norms[~held].any()
