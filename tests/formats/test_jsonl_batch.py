"""``DeltaParser.plain_batch`` accepts exactly the chunks the line-by-line road reads as
plain deltas, gives the same deltas, and consumes nothing (clock, ids) when it declines."""

from __future__ import annotations

import itertools
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.config.clock import SteppingClock
from thermo_cli.config.limits import current_limits
from thermo_cli.errors import ThermoError
from thermo_cli.formats import jsonl

T0 = 1_800_000_000 * 10**9
anything = st.none() | st.booleans() | st.integers(-2, 2) | st.floats(-2, 2) | st.text(max_size=3)
field_values = {
    "op": st.sampled_from(["create", "update", "merge", "delete", "Merge", "nope"]) | anything,
    "key": st.text(max_size=5) | st.text(alphabet="é", min_size=2047, max_size=2049) | anything,
    "value": st.text(max_size=5) | st.just({"b64": "AA=="}) | anything,
    "strength": st.sampled_from([0.0, -0.0, 1.0, 0.3]) | anything,
    "source": st.text(max_size=3) | st.text(alphabet="s", min_size=256, max_size=257) | anything,
    "id": st.text(min_size=1, max_size=3),
}


@st.composite
def line(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(st.sampled_from(sorted(field_values)), unique=True, min_size=1))
    obj = {name: draw(field_values[name]) for name in names}
    text = orjson.dumps(obj)
    if draw(st.integers(0, 9)) == 0:  # a repeated name
        text = text[:-1] + b',"op":"create"}'
    return text


def _parser(clock: SteppingClock) -> jsonl.DeltaParser:
    return jsonl.DeltaParser(limits=current_limits(), clock=clock)


def _counted_ids() -> tuple[itertools.count, mock._patch, mock._patch]:
    counter = itertools.count()
    return (
        counter,
        mock.patch.object(jsonl, "new_id", lambda: f"id-{next(counter)}"),
        mock.patch.object(jsonl, "new_ids", lambda n: [f"id-{next(counter)}" for _ in range(n)]),
    )


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(line(), min_size=1, max_size=5))
def test_a_batch_is_what_the_lines_give_one_by_one(lines: list[bytes]) -> None:
    clock = SteppingClock(T0, 5)
    counter, one, many = _counted_ids()
    with one, many:
        batch = _parser(clock).plain_batch(lines)
    if batch is None:
        assert clock.ns == T0 and next(counter) == 0  # nothing consumed
        return
    parser = _parser(SteppingClock(T0, 5))
    _, one, many = _counted_ids()
    with one, many:
        expected = [parser.parse_line(n, text) for n, text in enumerate(lines, 1)]  # raises if bad
    got = list(
        zip(
            batch.ops,
            batch.keys,
            batch.values,
            batch.strengths,
            batch.timestamps,
            batch.sources,
            batch.ids,
            strict=True,
        )
    )
    assert got == [
        (d.delta_type, d.key, d.value, d.strength, d.timestamp_ns, d.source, d.id) for d in expected
    ]
    assert [str(s) for s in batch.strengths] == [str(d.strength) for d in expected]  # -0.0 stays -0.0
    assert all(d.ternary is None and d.custom is None and d.tensor is None for d in expected)


def test_plain_lines_are_taken_as_a_batch_and_others_are_not() -> None:
    parser = _parser(SteppingClock(T0))
    plain = [
        b'{"op":"update","key":"k","value":"v","strength":0.5,"source":"s"}',
        b'{"op":"create","key":"k","value":""}',
    ]
    assert parser.plain_batch(plain) is not None
    for other in (
        b'{"op":"delete","key":"k"}',
        b'{"op":"update","key":"k","value":{"b64":"AA=="}}',
        b'{"op":"update","key":"k","value":"v","strength":1}',
        b'{"op":"update","key":"k","value":"v","op":"update"}',
        b'{"op":"update","key":"k","value":"v","id":"x"}',
        b"[1]",
        b"{",
    ):
        assert parser.plain_batch([*plain, other]) is None, other
    with pytest.raises(ThermoError, match="appears twice"):
        parser.parse_line(1, b'{"op":"update","key":"k","value":"v","op":"update"}')


@pytest.mark.parametrize(
    "lines",
    [
        # five members on average, one line with a sixth (an id) and one with four
        [
            b'{"op":"update","key":"a","value":"x","strength":0.5,"source":"s","id":"i"}',
            b'{"op":"update","key":"b","value":"y","strength":0.5}',
        ],
        # five members on every line, but an id instead of the source
        [b'{"op":"update","key":"a","value":"x","strength":0.5,"id":"i"}'],
    ],
)
def test_five_members_are_plain_only_when_they_are_the_five_plain_fields(lines: list[bytes]) -> None:
    clock = SteppingClock(T0, 5)
    assert _parser(clock).plain_batch(lines) is None
    assert clock.ns == T0


def test_five_plain_fields_on_every_line_are_a_batch() -> None:
    lines = [b'{"op":"update","key":"a","value":"x","strength":0.5,"source":"s"}'] * 3
    batch = _parser(SteppingClock(T0, 5)).plain_batch(lines)
    assert batch is not None and batch.sources == ["s"] * 3 and batch.strengths == [0.5] * 3
