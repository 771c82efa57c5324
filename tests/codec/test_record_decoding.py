"""Loading decodes the uncommitted log tail through a fast path that must be exactly as
strict as :func:`thermo_cli.codec.records.decode_record`."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli import store
from thermo_cli.codec import fastrecords, records
from thermo_cli.codec.fastrecords import decode_log_record
from thermo_cli.config.engine import ConsolidationPolicy
from thermo_cli.engine import Thermogram, chain
from thermo_cli.errors import CorruptError
from thermo_cli.model import Delta, DeltaType, Event, TensorSpec, Ternary

_FIELDS = (
    "delta_type",
    "key",
    "value",
    "strength",
    "timestamp_ns",
    "source",
    "id",
    "ternary",
    "observation_count",
    "custom",
    "tensor",
    "prev_hash",
    "hash",
    "scheme",
    "encoded",
)


def _same(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, Event):
        assert (a.kind, a.fields, a.hash, a.encoded) == (b.kind, b.fields, b.hash, b.encoded)
        return
    for name in _FIELDS:
        assert getattr(a, name) == getattr(b, name), name
        assert type(getattr(a, name)) is type(getattr(b, name)), name


deltas = st.builds(
    lambda op, key, value, s, ts, src, tern, obs, prev, custom: Delta(
        op,
        key,
        b"" if op is DeltaType.DELETE else value,
        float(tern) if tern is not None else s,
        ts,
        src,
        chain.fast_id(),
        tern,
        obs,
        custom,
        None,
        prev,
    ),
    st.sampled_from(list(DeltaType)),
    st.text(min_size=1, max_size=40),
    st.binary(max_size=64),
    st.floats(0.0, 1.0, width=32),
    st.integers(0, 2**63 - 1),
    st.text(min_size=1, max_size=12),
    st.none() | st.sampled_from(list(Ternary)),
    st.none() | st.integers(0, 2**64 - 1),
    st.none() | st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(deltas)
def test_fast_decoding_equals_the_strict_decoder(d: Delta) -> None:
    try:
        chain.validate_delta(d)
    except Exception:  # only valid deltas are ever stored
        return
    fastrecords.seal(d)
    _same(decode_log_record(d.encoded, 0), records.decode_record(d.encoded))


def test_events_and_tensor_deltas_take_the_strict_path() -> None:
    ev = chain.new_event("decay", 5, {"entries": 3}, None)
    _same(decode_log_record(ev.encoded, 0), records.decode_record(ev.encoded))
    spec = TensorSpec(dtype="f32", shape=(2,), encoding="raw")
    d = fastrecords.seal(Delta(DeltaType.CREATE, "t", bytes(8), 1.0, 7, tensor=spec))
    _same(decode_log_record(d.encoded, 0), records.decode_record(d.encoded))


def _plain(**kw) -> Delta:
    return fastrecords.seal(Delta(DeltaType.UPDATE, "k", b"v", 0.5, 1_700_000_000_000_000_000, **kw))


def _remapped(**changes) -> bytes:
    m = cbor2.loads(_plain().encoded)
    m.update(changes)
    return cbor2.dumps(m, canonical=True)


def _float64_strength() -> bytes:
    data = _plain().encoded
    assert b"\x61s\xf9\x38\x00" in data  # "s": 0.5 as the shortest (half) float
    return data.replace(b"\x61s\xf9\x38\x00", b"\x61s\xfb" + bytes.fromhex("3fe0000000000000"))


@pytest.mark.parametrize(
    "make",
    [
        _float64_strength,
        lambda: _remapped(s=1),
        lambda: _remapped(ts=-1),
        lambda: _remapped(tern=True),
        lambda: _remapped(op="upsert"),
        lambda: _remapped(prev=b"short"),
        lambda: _remapped(extra="field of a newer minor version"),
        lambda: _plain().encoded[:-3],
    ],
)
def test_anything_unusual_gets_the_strict_decoders_answer(make) -> None:
    data = make()
    try:
        want = records.decode_record(data, what="log record 0")
    except CorruptError as exc:
        with pytest.raises(CorruptError) as got:
            decode_log_record(data, 0)
        assert str(got.value) == str(exc)
        return
    _same(decode_log_record(data, 0), want)


def test_loading_a_tail_of_plain_deltas_never_needs_the_slow_decoder(tmp_path: Path, monkeypatch) -> None:
    tg = Thermogram(name="tail", policy=ConsolidationPolicy.manual())
    for i in range(200):
        tg.update(f"key/{i % 7}", b"v%d" % i, strength=0.5, observation_count=i)
    path = tmp_path / "t.thermo"
    store.create(path, tg)

    def slow(data, **kw):
        raise AssertionError("the strict decoder ran for a plain delta")

    monkeypatch.setattr(records, "decode_record", slow)
    loaded = store.load(path)
    assert [r.hash for r in loaded.records] == [r.hash for r in tg.records]
    assert loaded.read("key/3") == tg.read("key/3") and loaded.dirty_count == 200
