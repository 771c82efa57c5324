"""Runs of plain deltas stay sealed columns in the log until someone reads ``records``.

``Thermogram.apply_plain`` keeps each run as a ``SealedRun`` (record bytes and digests) and
builds Delta objects only when ``records`` is read; ``log_tail`` gives the writer the same
records without building them. Whatever is read, when, the log must be the one the general
road (``apply_many``) builds, and every count must include the pending runs.
"""

from __future__ import annotations

import pytest

from thermo_cli.codec.fastrecords import plain_deltas
from thermo_cli.config.clock import SteppingClock
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import ValidationError
from thermo_cli.model import Delta, DeltaType

T0 = 1_800_000_000 * 10**9


def _batch(keys: list[str], tag: str):
    n = len(keys)
    return plain_deltas(
        [DeltaType.UPDATE] * n,
        keys,
        [k.encode() for k in keys],
        [f"{tag}-{k}".encode() for k in keys],
        [0.5] * n,
        [T0 + i for i in range(n)],
        ["test"] * n,
        [f"00000000-0000-4000-8000-{tag}{i:011d}"[:36] for i in range(n)],
    )


def _general(batch) -> list[Delta]:
    return [
        Delta(op, k, v, s, ts, src, i)
        for op, k, v, s, ts, src, i in zip(
            batch.ops,
            batch.keys,
            batch.values,
            batch.strengths,
            batch.timestamps,
            batch.sources,
            batch.ids,
            strict=True,
        )
    ]


def _pair() -> tuple[Thermogram, Thermogram]:
    kw = {"name": "runs", "id": "same", "clock": SteppingClock(T0)}
    return Thermogram(**kw), Thermogram(**kw)


def test_pending_runs_read_back_as_the_general_roads_deltas():
    lazy, eager = _pair()
    first, second = _batch(["a", "b", "a"], "1"), _batch(["c", "a"], "2")
    lazy.apply_plain(first)
    lazy.apply_plain(second)
    eager.apply_many(_general(first), validated=True)
    eager.apply_many(_general(second), validated=True)
    assert lazy.log_length == eager.log_length == 5
    assert lazy.head_hash == eager.head_hash
    assert lazy.last_record_hash() == eager.head_hash
    assert lazy.dirty_count == 5  # (reads the index: builds the pending runs)
    assert lazy.records == eager.records
    assert [r.encoded for r in lazy.records] == [r.encoded for r in eager.records]
    assert lazy.read("a") == eager.read("a") == b"2-a"


def test_log_tail_gives_the_runs_without_building_deltas():
    lazy, _ = _pair()
    lazy.apply_many(_general(_batch(["x"], "0")), validated=True)
    lazy.apply_plain(_batch(["a", "b"], "1"))
    lazy.apply_plain(_batch(["b"], "2"))
    tail = lazy.log_tail(0)
    assert len(tail) == 4 and len(tail.records) == 1 and len(tail.runs) == 2
    assert tail.delta_keys() == ["x", "a", "b", "b"]
    assert lazy.__dict__["_pending"], "log_tail must not build the runs"
    encoded = [r.encoded for r in tail.records] + tail.encoded_runs()
    assert encoded == [r.encoded for r in lazy.records]
    assert lazy.log_tail(2).records == lazy.records[2:]  # a start inside a run: Delta objects
    with pytest.raises(ValidationError, match="log_tail"):
        lazy.log_tail(5)


def test_a_general_apply_after_a_run_links_to_it():
    lazy, eager = _pair()
    batch, more = _batch(["a"], "1"), _batch(["b"], "2")
    lazy.apply_plain(batch)
    lazy.apply_many(_general(more), validated=True)
    eager.apply_many(_general(batch) + _general(more), validated=True)
    assert lazy.records == eager.records and lazy.head_hash == eager.head_hash


def test_assigning_records_replaces_the_pending_runs_too():
    lazy, _ = _pair()
    lazy.apply_plain(_batch(["a", "b"], "1"))
    lazy.records = []
    lazy.head_hash = None
    assert lazy.log_length == 0 and lazy.records == []
    assert lazy.dirty_count == 0


def test_copies_and_pickles_keep_the_pending_runs():
    import copy
    import pickle

    lazy, eager = _pair()
    batch = _batch(["a", "b"], "1")
    lazy.apply_plain(batch)
    eager.apply_many(_general(batch), validated=True)
    for twin in (copy.deepcopy(lazy), pickle.loads(pickle.dumps(lazy))):
        assert twin.log_length == 2 and twin.head_hash == eager.head_hash
        assert twin.records == eager.records
