"""The streaming log pass: hashes, links, Merkle roots, legacy prefix, culprit naming."""

from __future__ import annotations

import itertools

import pytest

from thermo_cli.codec import records
from thermo_cli.integrity import logscan as chain
from thermo_cli.integrity import merkle
from thermo_cli.model import Delta, DeltaType, Event, HashScheme, TensorSpec, Ternary
from thermo_cli.model.valueclass import replace


def build(n: int, *, event_every: int = 0, start_prev: str | None = None) -> list:
    out = []
    prev = start_prev
    for i in range(n):
        if event_every and i % event_every == event_every - 1:
            rec = Event(kind="tick", timestamp_ns=1_000 + i, fields={"n": i}, prev_hash=prev)
        else:
            rec = Delta(
                DeltaType.UPDATE,
                f"key{i % 5}",
                bytes([i % 256]) * 8,
                0.75,
                1_000 + i,
                source="test",
                id=f"id-{i}",
                prev_hash=prev,
            )
        records.seal(rec)
        prev = rec.hash
        out.append(rec)
    return out


def raw(recs) -> list[bytes]:
    return [r.encoded for r in recs]


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(chain, "BLOCK", 8)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 23, 64, 65])
def test_root_head_and_counts(small_blocks, n):
    recs = build(n, event_every=4)
    scan = chain.scan_log(raw(recs), probes=range(n + 1))
    assert scan.failure is None and scan.size == n
    assert scan.root == merkle.root(raw(recs))
    assert scan.head_hex == (recs[-1].hash if recs else None)
    assert len(scan.events) == n // 4
    for ev in scan.events:
        assert ev.prefix_root == merkle.root(raw(recs)[: ev.index])
    for size, root in scan.probe_roots.items():
        assert root == merkle.root(raw(recs)[:size])
    assert scan.deltas + len(scan.events) == n


def test_fast_path_decodes_only_events_and_the_first_record():
    recs = build(40, event_every=10)
    scan = chain.scan_log(iter(raw(recs)))
    assert scan.decoded == 1 + 4 and scan.failure is None
    deep = chain.scan_log(raw(recs), deep=True)
    assert deep.decoded == 40 and deep.root == scan.root and deep.failure is None


def test_keep_leaves_gives_prefix_roots(small_blocks):
    recs = build(21)
    scan = chain.scan_log(raw(recs), keep_leaves=True)
    for m in range(22):
        assert scan.prefix_root(m) == merkle.root(raw(recs)[:m])


FIELD_CHANGES = {
    "id": lambda d: replace(d, id="other"),
    "op": lambda d: replace(d, delta_type=DeltaType.MERGE),
    "key": lambda d: replace(d, key="stolen"),
    "value": lambda d: replace(d, value=b"forged"),
    "ts": lambda d: replace(d, timestamp_ns=d.timestamp_ns + 1),
    "src": lambda d: replace(d, source="mallory"),
    "s": lambda d: replace(d, strength=0.25),
    "tern": lambda d: replace(d, ternary=Ternary.NEG),
    "obs": lambda d: replace(d, observation_count=9),
    "custom": lambda d: replace(d, custom={"x": 1}),
    "tensor": lambda d: replace(d, tensor=TensorSpec("U8", (8,))),
}


@pytest.mark.parametrize("field", sorted(FIELD_CHANGES))
def test_every_field_of_a_record_is_covered(small_blocks, field):
    recs = build(20)
    data = raw(recs)
    k = 9  # crosses a block boundary with BLOCK = 8
    forged = FIELD_CHANGES[field](recs[k])
    data[k] = records.encode_record(forged)
    scan = chain.scan_log(data)
    assert scan.failure is not None and scan.failure.index == k
    assert "altered" in scan.failure.reason


def test_a_rewritten_prev_link_names_its_record(small_blocks):
    recs = build(20)
    data = raw(recs)
    k = 8
    data[k] = records.encode_record(replace(recs[k], prev_hash="00" * 32))
    scan = chain.scan_log(data)
    assert scan.failure.index == k and "prev link" in scan.failure.reason


def test_the_first_record_must_not_link_back():
    recs = build(3, start_prev="ab" * 32)
    scan = chain.scan_log(raw(recs))
    assert scan.failure.index == 0


def test_every_byte_flip_is_detected(small_blocks):
    recs = build(12, event_every=6)
    data = raw(recs)
    k = 5  # an event: decoded on the slow path
    for target in (3, k):
        for i in range(len(data[target])):
            forged = list(data)
            b = bytearray(forged[target])
            b[i] ^= 0x01
            forged[target] = bytes(b)
            scan = chain.scan_log(forged)
            assert scan.failure is not None, (target, i)
            assert scan.failure.index in (target, target + 1)


def test_keys_that_contain_the_prev_pattern_take_the_slow_path():
    recs = []
    prev = None
    for i, key in enumerate(["dprevX " + "\x00" * 4, "a", "dprev", "b"]):
        d = Delta(DeltaType.CREATE, key, b"v", 1.0, i, id=str(i), prev_hash=prev)
        records.seal(d)
        prev = d.hash
        recs.append(d)
    scan = chain.scan_log(raw(recs))
    assert scan.failure is None and scan.decoded >= 2
    data = raw(recs)
    data[1] = records.encode_record(replace(recs[1], value=b"w"))
    assert chain.scan_log(data).failure.index == 1


def legacy_chain(n: int) -> list[Delta]:
    out = []
    prev = None
    for i in range(n):
        d = Delta(
            DeltaType.CREATE,
            f"l{i}",
            b"legacy",
            1.0,
            1_700_000_000_000_000_000 + i,
            source="crate",
            id=f"L{i}",
            prev_hash=prev,
            scheme=HashScheme.LEGACY,
        )
        records.seal(d)
        prev = d.hash
        out.append(d)
    return out


def test_a_legacy_prefix_chains_into_v2_records(small_blocks):
    legacy = legacy_chain(10)
    v2 = build(5, start_prev=legacy[-1].hash)
    scan = chain.scan_log(raw(legacy + v2))
    assert scan.failure is None and scan.legacy == 10 and scan.deltas == 5


def test_legacy_faults(small_blocks):
    legacy = legacy_chain(10)
    v2 = build(5, start_prev=legacy[-1].hash)
    forged = replace(legacy[4], value=b"changed")
    forged.encoded = None
    records.seal(forged)  # keeps the stored (now wrong) crate hash
    data = raw(legacy + v2)
    data[4] = forged.encoded
    scan = chain.scan_log(data)
    assert scan.failure.index == 4 and "legacy hash mismatch" in scan.failure.reason
    late = legacy_chain(1)[0]
    late = replace(late, prev_hash=v2[-1].hash)
    late.hash = records.legacy_delta_hash(late)
    records.seal(late)
    scan = chain.scan_log([*raw(legacy + v2), late.encoded])
    assert scan.failure.index == 15 and "after the legacy segment" in scan.failure.reason


def test_a_broken_v2_link_after_legacy(small_blocks):
    legacy = legacy_chain(3)
    v2 = build(3, start_prev="cd" * 32)
    scan = chain.scan_log(raw(legacy + v2))
    assert scan.failure is not None and scan.failure.index in (2, 3)


def test_garbage_record_is_reported():
    recs = build(4)
    data = raw(recs)
    data[2] = b"\xff\x00garbage"
    scan = chain.scan_log(data)
    assert scan.failure.index == 2 and "not a valid record" in scan.failure.reason


def test_batches_of_any_size_give_the_same_scan(small_blocks):
    recs = raw(build(50, event_every=7))
    whole = chain.scan_log(recs)
    cuts = [0, 3, 4, 20, 21, 22, 50]
    batched = chain.scan_log(batches=[recs[a:b] for a, b in itertools.pairwise(cuts)])
    assert (batched.root, batched.head, batched.size) == (whole.root, whole.head, whole.size)
    assert [e.prefix_root for e in batched.events] == [e.prefix_root for e in whole.events]


@pytest.mark.parametrize("cuts", [[0, 8, 16, 24], [0, 16, 23], [0, 8]])
def test_ranges_merge_into_the_sequential_scan(small_blocks, cuts):
    recs = raw(build(23, event_every=5))
    probes = {0, 3, 8, 16, 20, 23}
    whole = chain.scan_log(recs, keep_leaves=True, probes=probes)
    bounds = [*cuts[:-1], 23] if cuts[-1] > 23 else [*cuts, 23]
    parts = [
        chain.scan_range(
            [recs[a:b]], a, keep_leaves=True, probes={p for p in probes if a < p <= b or (p == 0 and a == 0)}
        )
        for a, b in itertools.pairwise(bounds)
        if a < b
    ]
    merged = chain.merge_ranges(parts)
    assert merged is not None
    assert (merged.root, merged.head, merged.size, merged.deltas) == (
        whole.root,
        whole.head,
        whole.size,
        whole.deltas,
    )
    pairs = [(e.index, e.prefix_root) for e in whole.events]
    assert [(e.index, e.prefix_root) for e in merged.events] == pairs
    assert merged.probe_roots == whole.probe_roots
    assert merged.leaves.data == whole.leaves.data


def test_merge_refuses_what_only_a_sequential_scan_can_word(small_blocks):
    recs = raw(build(24))
    forked = raw(build(24, start_prev="ee" * 32))
    parts = [chain.scan_range([recs[:16]], 0), chain.scan_range([forked[16:]], 16)]
    assert chain.merge_ranges(parts) is None  # the link between the ranges is broken
    with pytest.raises(ValueError):
        chain.scan_range([recs[3:]], 3)
