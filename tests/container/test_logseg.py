"""Log segment framing and grouping: the batched forms equal the one-record-at-a-time ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.config.limits import DEFAULT_LIMITS
from thermo_cli.container.logseg import frame, frames, group, iter_frames

records = st.lists(st.binary(max_size=300), max_size=60)


def _greedy(recs: list[bytes], target: int) -> list[list[bytes]]:
    """The reference grouping: one record at a time."""
    runs: list[list[bytes]] = []
    cur: list[bytes] = []
    size = 0
    for rec in recs:
        if cur and size + 4 + len(rec) > target:
            runs.append(cur)
            cur, size = [], 0
        cur.append(rec)
        size += 4 + len(rec)
    if cur:
        runs.append(cur)
    return runs


@settings(max_examples=150, deadline=None)
@given(records)
def test_frames_equal_one_frame_per_record(recs: list[bytes]):
    data = frames(recs)
    assert data == b"".join(map(frame, recs))
    assert [bytes(r) for _, r in iter_frames(data, len(recs), DEFAULT_LIMITS, "test")] == recs


@settings(max_examples=300, deadline=None)
@given(records, st.integers(1, 2000))
def test_grouping_by_binary_search_equals_the_greedy_walk(recs: list[bytes], target: int):
    assert group(recs, target) == _greedy(recs, target)


def test_a_record_larger_than_the_target_is_a_run_of_its_own():
    recs = [b"a", b"x" * 50, b"b", b"c"]
    assert group(recs, 10) == [[b"a"], [b"x" * 50], [b"b", b"c"]]
    assert group([], 10) == []
