"""``plain_deltas`` + ``seal_plain`` give exactly ``encode_delta``'s bytes and hashes.

The batch road of ``thermo apply`` encodes a record from per-batch tables of heads; the
record map itself is defined once (``codec.records``), so every piece must match the
general encoder byte for byte, for any strength (0.0 and -0.0 included), any text
length (short and long heads), any timestamp width and a chain started from no head.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec.fastrecords import encode_delta, plain_deltas, seal_plain
from thermo_cli.model import Delta, DeltaType

f32s = st.floats(0, 1, width=32) | st.sampled_from([0.0, -0.0, 1.0])
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)
long_texts = st.text(alphabet="é", min_size=2050, max_size=2060)  # > 4096 bytes: a long head
row = st.tuples(
    st.sampled_from([DeltaType.CREATE, DeltaType.UPDATE, DeltaType.MERGE]),
    texts | long_texts,
    st.binary(max_size=8) | st.binary(min_size=5000, max_size=5001),
    f32s,
    st.integers(0, 2**64 - 1),
    texts,
    st.sampled_from(["0d0c4b5e-8f1a-4c3b-9d2e-7f6a5b4c3d2e", "an-id", "ид"]),
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=8), linked=st.booleans(), cut=st.integers(0, 8))
def test_sealed_plain_records_are_the_general_encoders_bytes(rows, linked: bool, cut: int) -> None:
    ops, keys, values, strengths, stamps, sources, ids = (list(c) for c in zip(*rows, strict=True))
    batch = plain_deltas(ops, keys, [k.encode() for k in keys], values, strengths, stamps, sources, ids)
    head = hashlib.sha256(b"head").hexdigest() if linked else None
    cut = min(cut, len(rows))
    runs = [seal_plain(batch, 0, cut, head)] if cut else []
    if cut < len(rows):
        runs.append(seal_plain(batch, cut, len(rows), runs[0].head if runs else head))
    encoded = [rec for run in runs for rec in run.encoded]
    hashes = [h for run in runs for h in run.hashes()]
    deltas = [d for run in runs for d in run.deltas()]
    prev = head
    for i, fields in enumerate(rows):
        d = Delta(*fields, prev_hash=prev)
        assert encoded[i] == encode_delta(d)
        prev = hashlib.sha256(encoded[i]).hexdigest()
        assert hashes[i] == prev
        d.hash, d.encoded = prev, encoded[i]
        assert deltas[i] == d and deltas[i].encoded == encoded[i]


def test_a_run_holds_at_least_one_delta() -> None:
    batch = plain_deltas([DeltaType.UPDATE], ["k"], [b"k"], [b"v"], [1.0], [1], ["s"], ["i"])
    with pytest.raises(ValueError, match="at least one"):
        seal_plain(batch, 1, 1, None)


def test_a_batch_whose_pieces_were_dropped_is_not_sealed_again() -> None:
    batch = plain_deltas(
        [DeltaType.UPDATE] * 2,
        ["k", "j"],
        [b"k", b"j"],
        [b"v", b"w"],
        [1.0] * 2,
        [1, 2],
        ["s"] * 2,
        ["i", "h"],
    )
    run = seal_plain(batch, 0, 2, None)
    batch.drop_pieces()
    assert run.encoded and len(run.deltas()) == 2  # the sealed run keeps its own bytes
    with pytest.raises(ValueError, match="dropped"):
        seal_plain(batch, 0, 1, None)
