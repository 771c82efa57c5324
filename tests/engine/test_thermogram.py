"""Applying deltas, validation with field-naming errors, the chain link rule, reads, stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from thermo_cli.codec import records
from thermo_cli.config.engine import ConsolidationPolicy
from thermo_cli.engine import Thermogram
from thermo_cli.errors import ChainError, ValidationError
from thermo_cli.model import (
    MAX_KEY_BYTES,
    Delta,
    DeltaType,
    Entry,
    HashScheme,
    Layer,
    ReadResult,
    TensorSpec,
    Ternary,
)

from .conftest import T0, manual, put

HOT, COLD = Layer.HOT, Layer.COLD


def delta(op=DeltaType.CREATE, key="k", value=b"v", strength=1.0, **kw) -> Delta:
    return Delta(op, key, value, strength, kw.pop("timestamp_ns", T0), **kw)


class TestApply:
    def test_first_delta_has_no_predecessor_and_later_ones_link(self, tg):
        a = tg.create("a", b"1")
        b = tg.update("a", b"2", strength=0.5)
        assert a.prev_hash is None
        assert b.prev_hash == a.hash
        assert tg.head_hash == b.hash
        assert tg.meta.total_deltas == 2
        assert b.encoded == records.encode_record(b)
        assert records.decode_record(b.encoded).hash == b.hash

    def test_explicit_prev_hash_matching_the_head_is_accepted(self, tg):
        a = tg.create("a", b"1")
        tg.apply(delta(key="b", prev_hash=a.hash))
        assert tg.read("b") == b"v"

    def test_explicit_prev_hash_not_matching_is_refused_and_nothing_changes(self, tg):
        tg.create("a", b"1")
        with pytest.raises(ChainError, match="does not match the chain head"):
            tg.apply(delta(key="b", prev_hash="0" * 64))
        with pytest.raises(ChainError):
            manual().apply(delta(prev_hash="0" * 64))
        assert len(tg.records) == 1 and tg.read("b") is None

    def test_a_given_hash_must_recompute(self, tg):
        d = delta()
        other = manual()
        other.apply(d)
        good = Delta(DeltaType.CREATE, "k", b"v", 1.0, T0, id=d.id, hash=d.hash)
        tg.apply(good)
        assert tg.head_hash == d.hash
        bad = Delta(DeltaType.CREATE, "k2", b"v", 1.0, T0, prev_hash=tg.head_hash, hash="1" * 64)
        with pytest.raises(ChainError, match="hash does not match"):
            tg.apply(bad)

    def test_strength_is_rounded_to_float32(self, tg):
        d = tg.update("k", b"v", strength=0.3)
        assert d.strength == 0.30000001192092896

    def test_ternary_constructors_set_the_strength(self, tg):
        assert tg.update("k", b"v", ternary=-1).strength == -1.0
        assert tg.create("j", b"v", ternary="Pos").ternary is Ternary.POS

    def test_timestamps_accept_aware_datetimes(self, tg):
        when = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
        d = tg.create("k", b"v", timestamp_ns=when)
        assert d.timestamp_ns == int(when.astimezone(UTC).timestamp()) * 10**9 + 123456000

    def test_apply_many(self, tg):
        done = tg.apply_many([delta(key=f"k{i}") for i in range(5)])
        assert [d.prev_hash for d in done[1:]] == [d.hash for d in done[:-1]]
        assert tg.keys() == [f"k{i}" for i in range(5)]

    def test_apply_many_stops_at_the_first_bad_delta(self, tg):
        with pytest.raises(ValidationError, match="strength"):
            tg.apply_many([delta(key="a"), delta(key="b", strength=2.0), delta(key="c")])
        assert tg.keys() == ["a"]

    def test_apply_many_of_parser_validated_deltas_gives_the_same_chain(self, tg):
        from thermo_cli.formats import jsonl

        lines = [
            b'{"op": "create", "key": "a", "value": "x", "strength": 0.3, "id": "1", '
            b'"timestamp": 1700000000000000000}',
            rb'{"op": "update", "key": "b\u00e9", "value": {"dtype": "f32", "shape": [2], '
            b'"data": [1.5, 2.0]}, "ternary": 1, "observation_count": 4, "meta": {"m": [1]}, '
            b'"id": "2", "timestamp": 1700000000000000001}',
            b'{"op": "delete", "key": "a", "id": "3", "timestamp": 1700000000000000002}',
        ]
        trusted, checked = manual(), manual()
        trusted.apply_many(jsonl.parse_deltas([b"\n".join(lines)]), validated=True)
        checked.apply_many(jsonl.parse_deltas([b"\n".join(lines)]))
        assert [r.encoded for r in trusted.records] == [r.encoded for r in checked.records]
        assert trusted.head_hash == checked.head_hash and trusted.verify_chain().ok

    def test_apply_many_validated_skips_field_checks_but_not_the_key_cap(self, tg, monkeypatch):
        from thermo_cli.engine import chain

        def refuse(d):
            raise AssertionError("validate_delta must not run for parser-validated deltas")

        monkeypatch.setattr(chain, "validate_delta", refuse)
        tg.apply_many([delta(key="a", strength=0.5)], validated=True)
        with pytest.raises(ValidationError, match="key: 4097 bytes exceeds"):
            tg.apply_many([delta(key="k" * (MAX_KEY_BYTES + 1))], validated=True)
        with pytest.raises(AssertionError, match="must not run"):
            tg.apply_many([delta(key="b")])  # untrusted callers keep the full check by default
        assert tg.keys() == ["a"]

    def test_legacy_scheme_delta_keeps_the_crate_hash(self, tg):
        d = delta(scheme=HashScheme.LEGACY, strength=-1.0, ternary=Ternary.NEG)
        tg.apply(d)
        assert d.hash == records.legacy_delta_hash(d)
        assert tg.verify_chain().ok
        nxt = tg.create("after", b"x")
        assert nxt.prev_hash == d.hash and tg.verify_chain().ok


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"key": ""}, "key"),
            ({"key": "x" * (MAX_KEY_BYTES + 1)}, "key"),
            ({"key": "é" * (MAX_KEY_BYTES // 2 + 1)}, "key"),
            ({"key": "bad\udc80"}, "key"),
            ({"key": 5}, "key"),
            ({"value": "text"}, "value"),
            ({"strength": 1.5}, "strength"),
            ({"strength": -0.1}, "strength"),
            ({"strength": float("nan")}, "strength"),
            ({"strength": float("inf")}, "strength"),
            ({"strength": "1"}, "strength"),
            ({"strength": True}, "strength"),
            ({"ternary": 2}, "ternary"),
            ({"ternary": Ternary.POS, "strength": 0.5}, "strength"),
            ({"observation_count": -1}, "observation_count"),
            ({"observation_count": 1.5}, "observation_count"),
            ({"timestamp_ns": -(2**63) - 1}, "timestamp_ns"),  # the format is signed 64-bit
            ({"timestamp_ns": 1.0}, "timestamp_ns"),
            ({"source": None}, "source"),
            ({"source": "\ud800"}, "source"),
            ({"id": ""}, "id"),
            ({"custom": {1: "int key"}}, "custom"),
            ({"custom": object()}, "custom"),
            ({"tensor": {"dtype": "F32"}}, "tensor"),
        ],
    )
    def test_bad_field_is_named(self, tg, kwargs, field):
        with pytest.raises(ValidationError, match=f"^{field}: "):
            tg.apply(delta(**kwargs))
        assert tg.records == [] and tg.head_hash is None

    def test_delete_carries_no_value(self, tg):
        with pytest.raises(ValidationError, match=r"^value: a delete carries no value"):
            tg.apply(delta(op=DeltaType.DELETE, value=b"x"))

    def test_naive_datetime_is_refused(self, tg):
        with pytest.raises(ValidationError, match=r"^timestamp: must be timezone-aware"):
            tg.create("k", b"v", timestamp_ns=datetime(2024, 1, 1))

    def test_not_a_delta(self, tg):
        with pytest.raises(ValidationError, match=r"^delta: "):
            tg.apply({"key": "k"})

    def test_bytearray_value_and_int_strength_are_normalised(self, tg):
        d = tg.apply(delta(value=bytearray(b"ab"), strength=1))
        assert type(d.value) is bytes and d.strength == 1.0

    def test_numpy_scalars_are_accepted(self, tg):
        import numpy as np

        d = tg.update(
            "k", b"v", strength=np.float32(0.5), observation_count=np.int64(3), timestamp_ns=np.int64(T0)
        )
        assert (d.strength, d.observation_count, d.timestamp_ns) == (0.5, 3, T0)
        assert type(d.observation_count) is int and type(d.timestamp_ns) is int

    def test_custom_and_tensor_are_hashed(self, tg):
        spec = TensorSpec("F32", (2, 3))
        d = tg.create("t", b"\x00" * 24, custom={"why": ["a", 1, None]}, tensor=spec)
        assert d.encoded == records.encode_record(d)
        assert tg.read_entry("t").tensor == spec


class TestReads:
    def test_dirty_wins_then_hot_to_cold(self, tg):
        put(tg, COLD, "k", 0.9, count=4, value=b"cold")
        assert tg.read_entry("k") == ReadResult("k", b"cold", pytest.approx(0.9), "cold", None, None, 4)
        put(tg, Layer.WARM, "k", 0.5, value=b"warm")
        assert tg.read("k") == b"warm"
        tg.update("k", b"dirty", strength=0.25)
        r = tg.read_entry("k")
        assert (r.value, r.strength, r.source, r.update_count) == (b"dirty", 0.25, "dirty", None)
        tg.delete("k")
        assert tg.read("k") is None and tg.read_entry("k") is None
        assert tg.read("absent") is None
        assert "k" not in tg and "absent" not in tg
        tg.create("k", b"again")
        assert "k" in tg and list(tg) == ["k"]

    def test_mapping_protocol(self, tg):
        assert len(tg) == 0 and bool(tg)  # an empty thermogram is still a thermogram
        put(tg, COLD, "c", 0.9, value=b"cold")
        tg.create("d", b"dirty")
        assert len(tg) == 2 and tg["c"] == b"cold" and tg["d"] == b"dirty"
        tg.delete("c")
        assert len(tg) == 1
        with pytest.raises(KeyError, match="'c': no such key"):
            tg["c"]
        with pytest.raises(KeyError):
            tg[3]

    def test_array_values_become_tensor_entries(self, tg):
        import numpy as np

        a = np.arange(6, dtype=np.float16).reshape(3, 2)
        d = tg.create("w", a, strength=0.5)
        assert d.tensor == TensorSpec("F16", (3, 2)) and d.value == a.tobytes()
        tg.consolidate()
        back = tg["w"]
        assert back.dtype == np.float16 and back.shape == (3, 2) and np.array_equal(back, a)
        tg.update("w", np.ones(2, np.int8))
        assert tg.read_entry("w").tensor == TensorSpec("I8", (2,))
        with pytest.raises(ValidationError, match="w: tensor: give a TensorSpec only with a bytes value"):
            tg.update("w", a, tensor=TensorSpec("F16", (3, 2)))
        with pytest.raises(ValidationError, match="w: value: expected bytes or a numpy array, got list"):
            tg.update("w", [1, 2])
        with pytest.raises(ValidationError, match="w: dtype: numpy dtype <U1"):
            tg.update("w", np.array(["x"]))

    def test_with_block_closes_the_layers(self, tg):
        closed: list[str] = []

        class Closing(dict):
            def close(self):
                closed.append("x")

        tg.layers[Layer.WARM] = Closing()
        with tg as same:
            assert same is tg
        assert closed == ["x"]

    def test_keys_per_layer(self, tg):
        put(tg, COLD, "b", 0.9)
        put(tg, COLD, "a", 0.9)
        put(tg, HOT, "c", 0.9)
        assert tg.keys(COLD) == ["a", "b"]
        assert tg.keys("hot") == ["c"]
        assert tg.keys(3) == ["a", "b"]
        with pytest.raises(ValidationError, match="layer"):
            tg.keys("lukewarm")

    def test_history_and_dirty_deltas(self, tg):
        tg.create("a", b"1")
        tg.create("b", b"x")
        tg.consolidate()
        tg.update("a", b"2")
        assert [d.value for d in tg.history("a")] == [b"1", b"2"]
        assert [d.key for d in tg.dirty_deltas()] == ["a"]

    def test_loader_filled_records_are_indexed(self, tg):
        for i in range(4):
            tg.create(f"k{i}", bytes([i]))
        tg.delete("k1")
        copy = Thermogram(records=list(tg.records), head_hash=tg.head_hash)
        assert copy.read("k2") == b"\x02"
        assert copy.keys() == ["k0", "k2", "k3"]
        assert copy.dirty_count == 5
        copy.records.append(tg.records[0])  # the index notices growth
        assert copy.dirty_count == 6

    def test_reindex_after_editing_in_place(self, tg):
        tg.create("a", b"1")
        tg.records[0] = Delta(DeltaType.CREATE, "b", b"2", 1.0, T0)
        tg.reindex()
        assert tg.read("b") == b"2" and tg.read("a") is None

    def test_stats(self, tg):
        put(tg, COLD, "c", 0.9)
        tg.create("a", b"12345")
        s = tg.stats()
        assert s.entries == {"hot": 0, "warm": 0, "cool": 0, "cold": 1}
        assert (s.total_keys, s.dirty_deltas, s.dirty_bytes, s.log_records, s.total_deltas) == (
            2,
            1,
            5 + 1 + 200,
            1,
            1,
        )
        assert s.total_entries == 1 and s.head_hash == tg.head_hash


# --- changes made from outside the engine ---------------------------------------------------


def _entry(key: str = "k") -> Entry:
    return Entry(key=key, value=b"v", strength=0.5, updated_at_ns=T0)


def test_putting_an_entry_or_replacing_a_layer_makes_the_next_commit_rewrite():
    tg = Thermogram()
    tg.put_entry("warm", _entry("a"))
    assert tg.layers[Layer.WARM]["a"].value == b"v" and tg.layers_modified
    tg.mark_persisted()
    assert not tg.layers_modified and tg.persisted == tg.log_length
    tg.replace_layer(COLD, {"b": _entry("b")})
    assert list(tg.layers[COLD]) == ["b"] and tg.layers_modified


def test_set_policy_refuses_what_is_not_a_policy():
    tg = Thermogram()
    policy = ConsolidationPolicy.preset("manual")
    tg.set_policy(policy)
    assert tg.policy is policy
    with pytest.raises(ValidationError, match="policy: expected a ConsolidationPolicy"):
        tg.set_policy("manual")


def _sealed_log(n: int) -> list:
    source = Thermogram()
    for i in range(n):
        source.create(f"k{i}", b"v", timestamp_ns=T0 + i)
    return list(source.records)


def test_restore_log_adopts_a_linked_log_as_unpersisted():
    tg = Thermogram()
    recs = _sealed_log(3)
    tg.restore_log(recs, dirty_start=1)
    assert tg.log_length == 3 and tg.head_hash == recs[-1].hash and tg.dirty_start == 1
    assert tg.persisted == 0 and tg.layers_modified
    assert [d.key for d in tg.dirty_deltas()] == ["k1", "k2"]
    with pytest.raises(ChainError, match="already holds 3 records"):
        tg.restore_log(recs, dirty_start=0)


def test_restore_log_refuses_a_broken_link_or_a_dirty_start_past_the_end():
    recs = _sealed_log(3)
    with pytest.raises(ValidationError, match="dirty_start: expected 0 … 3"):
        Thermogram().restore_log(recs, dirty_start=4)
    with pytest.raises(ChainError, match="record 1 does not link"):
        Thermogram().restore_log([recs[0], recs[2]], dirty_start=0)


@pytest.mark.clock
class TestClock:
    """Every stamp a thermogram writes comes from its clock, not the wall clock."""

    def test_a_given_clock_stamps_exactly_its_time(self):
        from thermo_cli.config.clock import SteppingClock

        own = SteppingClock(T0)
        tg = manual(clock=own)
        assert tg.meta.created_at_ns == tg.meta.last_consolidation_ns == T0
        d = tg.create("k", b"v")
        own.advance(5)
        report = tg.consolidate()
        own.advance(7)
        tg.reinforce("k", 0.1)
        ev = tg.append_event("note")
        assert d.timestamp_ns == T0
        assert report.timestamp_ns == tg.meta.last_consolidation_ns == T0 + 5
        assert tg.layers[HOT]["k"].updated_at_ns == ev.timestamp_ns == T0 + 12
        assert [r.timestamp_ns for r in tg.records] == [T0, T0 + 5, T0 + 12, T0 + 12]

    def test_a_given_clock_wins_over_the_context_clock(self, clock):
        from thermo_cli.config.clock import fixed_clock

        tg = manual(clock=fixed_clock(T0))
        assert clock() != T0
        assert tg.create("k", b"v").timestamp_ns == tg.meta.created_at_ns == T0

    def test_without_a_clock_the_context_clock_is_read_at_each_stamp(self, clock):
        tg = manual()
        assert tg.meta.created_at_ns == clock()
        clock.advance(42)
        assert tg.create("k", b"v").timestamp_ns == tg.meta.created_at_ns + 42

    def test_the_time_trigger_reads_the_thermogram_clock(self):
        from thermo_cli.config.clock import SteppingClock
        from thermo_cli.engine import ConsolidationPolicy, TimePeriod

        own = SteppingClock(T0)
        tg = manual(clock=own, policy=ConsolidationPolicy((TimePeriod(24),), True, True))
        tg.create("a", b"1")
        own.advance(24 * 3600 * 10**9)
        tg.create("b", b"2")
        assert tg.meta.total_consolidations == 1
        assert tg.meta.last_consolidation_ns == T0 + 24 * 3600 * 10**9


# --- behaviour-changing meta: logged, read-only from outside, bound at the next binding -------


@pytest.mark.parametrize("attr", ["name", "id", "thermal", "plasticity", "policy", "extras"])
def test_meta_fields_cannot_be_assigned(attr):
    tg = Thermogram()
    with pytest.raises(AttributeError, match=f"{attr}: read-only"):
        setattr(tg, attr, getattr(tg, attr))


def test_extras_are_a_read_only_view():
    tg = Thermogram(extras={"a": 1})
    with pytest.raises(TypeError):
        tg.extras["b"] = 2  # type: ignore[index]
    assert dict(tg.extras) == {"a": 1}


def test_meta_changes_are_logged_events():
    import dataclasses

    from thermo_cli.config.maps import thermal_to_map
    from thermo_cli.integrity.metadigest import value_digest

    tg = Thermogram()
    thermal = dataclasses.replace(tg.thermal, prune_threshold=0.5)
    ev = tg.set_thermal(thermal)
    assert (
        ev.kind == "configure" and ev.fields == {"thermal": thermal_to_map(thermal)} and tg.thermal == thermal
    )
    assert tg.set_thermal(thermal) is None  # unchanged: nothing logged
    assert tg.rename("n2").fields == {"name": "n2", "previous": "thermogram"} and tg.name == "n2"
    ev = tg.set_extra("snn", {"w": b"\x00"})
    assert ev.fields == {"key": "snn", "sha256": value_digest({"w": b"\x00"})}
    assert tg.remove_extra("snn") == {"w": b"\x00"} and tg.records[-1].fields == {
        "key": "snn",
        "sha256": None,
    }
    assert [r.kind for r in tg.records] == ["configure", "rename", "extension", "extension"]


def test_bind_state_binds_a_meta_change():
    from thermo_cli.config.engine import ConsolidationPolicy

    tg = Thermogram()
    assert tg.bind_state() is None
    tg.set_policy(ConsolidationPolicy.preset("manual"))
    ev = tg.bind_state()
    assert ev.fields["kinds"] == ["configure"] and ev.fields["meta_digest"] == tg.meta_digest()
    assert tg.bind_state() is None
    tg.meta.custom = {"x": 1}  # changed in place, no event: the digest still notices
    assert tg.bind_state().fields["events"] == 0


def test_suspending_auto_consolidation_changes_no_policy():
    from thermo_cli.config.engine import ConsolidationPolicy, DeltaCount

    tg = Thermogram(policy=ConsolidationPolicy((DeltaCount(2),), True, True))
    with tg.auto_consolidation_suspended():
        for i in range(3):
            tg.create(f"k{i}", b"v")
    assert tg.dirty_count == 3 and not tg.meta_unbound
    tg.create("k9", b"v")
    assert tg.dirty_count == 0
