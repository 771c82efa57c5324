"""The hash chain: fast record encoding equals the reference encoding; any edit is caught."""

from __future__ import annotations

import re
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec import fastrecords, records
from thermo_cli.engine import chain
from thermo_cli.engine.plasticity import f32
from thermo_cli.model import Delta, DeltaType, Event, HashScheme, TensorSpec, Ternary
from thermo_cli.model.valueclass import replace

from .conftest import T0, manual

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
keys = text.filter(lambda s: 0 < len(s.encode()) <= 4096)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | text
    | st.binary(max_size=16),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
tensors = st.none() | st.builds(
    TensorSpec,
    st.sampled_from(["F32", "F16", "I8"]),
    st.lists(st.integers(0, 70000), max_size=3).map(tuple),
    st.sampled_from(["raw", "ternary"]),
    st.none() | st.binary(max_size=8),
    st.booleans(),
    st.none() | st.just("absmean"),
)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)


@st.composite
def deltas(draw) -> Delta:
    tern = draw(st.none() | st.sampled_from(list(Ternary)))
    strength = float(tern) if tern is not None else f32(draw(st.floats(0, 1)))
    value_size = draw(st.sampled_from([0, 1, 23, 24, 255, 256, 5000]))
    return Delta(
        delta_type=draw(st.sampled_from(list(DeltaType))),
        key=draw(keys),
        value=draw(st.binary(min_size=value_size, max_size=value_size)),
        strength=strength,
        timestamp_ns=draw(st.integers(0, 2**63 - 1)),
        source=draw(text),
        id=draw(st.uuids().map(str) | keys),
        ternary=tern,
        observation_count=draw(st.none() | st.integers(0, 2**64 - 1)),
        custom=draw(plain),
        tensor=draw(tensors),
        prev_hash=draw(st.none() | hashes),
    )


@settings(max_examples=200, deadline=None)
@given(deltas())
def test_fast_encoding_equals_the_reference_record_encoding(d):
    assert fastrecords.encode_delta(d) == records.encode_record(d)
    fastrecords.seal(d)
    back = records.decode_record(d.encoded)
    assert back.hash == d.hash
    assert replace(back, encoded=None) == replace(d, encoded=None)


@settings(max_examples=200, deadline=None)
@given(deltas())
def test_the_plain_delta_encoding_equals_the_reference_record_encoding(d):
    """Deltas whose optional fields are all null take ``encode_delta``'s merged-items path."""
    d = replace(d, ternary=None, observation_count=None, custom=None, tensor=None)
    if d.strength != d.strength or not 0.0 <= d.strength <= 1.0:
        d.strength = 0.5
    assert fastrecords.encode_delta(d) == records.encode_record(d)


def test_fast_ids_are_uuid4():
    ids = {chain.fast_id() for _ in range(3000)}
    assert len(ids) == 3000
    for i in list(ids)[:200]:
        u = uuid.UUID(i)
        assert (u.version, u.variant, str(u)) == (4, uuid.RFC_4122, i)
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)


def test_ids_need_no_numpy():
    """`thermo apply` makes an id per delta: numpy's import would cost more than the ids."""
    import subprocess
    import sys

    code = "import sys; from thermo_cli.model import new_id; new_id(); print('numpy' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


# --- tamper detection ---------------------------------------------------------------------

MUTATIONS = {
    "delta_type": lambda d: DeltaType((d.delta_type + 1) % 4),
    "key": lambda d: d.key + "x",
    "value": lambda d: d.value + b"\x00",
    "strength": lambda d: f32(0.25) if d.strength != f32(0.25) else 0.5,
    "timestamp_ns": lambda d: d.timestamp_ns + 1,
    "source": lambda d: d.source + "!",
    "id": lambda d: d.id[:-1] + ("0" if d.id[-1] != "0" else "1"),
    "ternary": lambda d: Ternary.POS if d.ternary is None else None,
    "observation_count": lambda d: 7 if d.observation_count is None else None,
    "custom": lambda d: {"tampered": True},
    "tensor": lambda d: TensorSpec("F32", (1,)) if d.tensor is None else None,
    "prev_hash": lambda d: "f" * 64 if d.prev_hash != "f" * 64 else "e" * 64,
    "hash": lambda d: "0" * 64,
}


@st.composite
def chains(draw):
    tg = manual()
    for d in draw(st.lists(deltas(), min_size=1, max_size=6)):
        d.prev_hash = None
        if d.delta_type is DeltaType.DELETE:
            d.value = b""
        d.source = d.source or "s"  # what the validator accepts: non-empty source,
        if d.tensor is not None:  # a tensor spec that describes the value
            d.tensor = TensorSpec("U8", (len(d.value),))
        tg.apply(d)
    return tg


@settings(max_examples=100, deadline=None)
@given(chains(), st.data(), st.sampled_from(sorted(MUTATIONS)))
def test_changing_any_field_of_any_delta_fails_verification_at_that_index(tg, data, name):
    assert tg.verify_chain().ok
    i = data.draw(st.integers(0, len(tg.records) - 1))
    d = tg.records[i]
    setattr(d, name, MUTATIONS[name](d))
    check = tg.verify_chain()
    assert not check.ok
    assert check.index == i


def test_events_are_chained_and_checked(tg):
    tg.create("a", b"1", strength=0.9)
    tg.consolidate()
    tg.create("b", b"2")
    assert tg.verify_chain().ok
    ev = tg.records[1]
    assert isinstance(ev, Event) and tg.records[2].prev_hash == ev.hash
    ev.fields["processed"] = 99
    check = tg.verify_chain()
    assert (check.ok, check.index) == (False, 1)


def test_dropping_a_record_breaks_the_next_link(tg):
    for i in range(4):
        tg.create(f"k{i}", b"v")
    del tg.records[1]
    check = tg.verify_chain()
    assert (check.ok, check.index) == (False, 1)
    assert "prev_hash" in check.reason


def test_wrong_head_is_reported(tg):
    tg.create("a", b"1")
    tg.create("b", b"2")
    tg.head_hash = tg.records[0].hash
    check = tg.verify_chain()
    assert not check.ok and "head" in check.reason


def test_legacy_hash_does_not_cover_ternary_or_custom(tg):
    d = Delta(
        DeltaType.UPDATE,
        "w",
        b"\x01",
        1.0,
        T0,
        ternary=Ternary.POS,
        custom={"a": 1},
        scheme=HashScheme.LEGACY,
    )
    tg.apply(d)
    d.ternary = Ternary.NEG
    d.custom = {"a": 2}
    d.strength = -1.0 + 0.0  # covered: this one is caught
    assert not tg.verify_chain().ok
    d.strength = 1.0
    assert tg.verify_chain().ok  # the crate's recipe cannot see the other two changes


def test_tail_loaded_chain_skips_the_unknown_first_link(tg):
    for i in range(5):
        tg.create(f"k{i}", b"v")
    check = chain.verify_records(tg.records[2:], base=2, head_hash=tg.head_hash)
    assert check.ok and check.checked == 3
    tg.records[3].key = "changed"
    bad = chain.verify_records(tg.records[2:], base=2, head_hash=tg.head_hash)
    assert (bad.ok, bad.index) == (False, 3)


def test_standalone_hash_chain():
    hc = chain.HashChain()
    a = hc.append(Delta(DeltaType.CREATE, "a", b"1", 1.0, T0))
    b = hc.append(Delta(DeltaType.UPDATE, "a", b"2", 0.5, T0))
    ev = hc.append(Event("checkpoint", T0, {"n": 2}))
    assert (a.prev_hash, b.prev_hash, ev.prev_hash, hc.head_hash) == (None, a.hash, b.hash, ev.hash)
    assert len(hc) == 3 and hc.verify().ok
    b.value = b"3"
    assert hc.verify().index == 1
