"""RFC 3339 text ↔ integer nanoseconds, canonicalised the way chrono's to_rfc3339() wrote it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thermo_cli.formats.legacy.timefmt import (
    MAX_NS,
    MIN_NS,
    TimestampError,
    format_rfc3339,
    format_z,
    parse_rfc3339,
)
from thermo_cli.model import ns_to_rfc3339

BASE = parse_rfc3339("2026-11-22T16:06:30Z")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2026-11-22T16:06:30Z", "2026-11-22T16:06:30+00:00"),
        ("2026-11-22T16:06:30.120Z", "2026-11-22T16:06:30.120+00:00"),
        ("2026-11-22T16:06:30.000001Z", "2026-11-22T16:06:30.000001+00:00"),
        ("2026-11-22T16:06:30.000000005Z", "2026-11-22T16:06:30.000000005+00:00"),
        # spellings other tools write for the same instants
        ("2026-11-22T16:06:30.000000000Z", "2026-11-22T16:06:30+00:00"),
        ("2026-11-22T16:06:30.120000000+00:00", "2026-11-22T16:06:30.120+00:00"),
        ("2026-11-22T16:06:30.000001000Z", "2026-11-22T16:06:30.000001+00:00"),
        ("2026-11-22T17:06:30.5+01:00", "2026-11-22T16:06:30.500+00:00"),
        ("2026-11-22T10:36:30-05:30", "2026-11-22T16:06:30+00:00"),
        ("2026-11-23T01:06:30.000000005+09:00", "2026-11-22T16:06:30.000000005+00:00"),
        ("2026-11-22t16:06:30z", "2026-11-22T16:06:30+00:00"),
        ("2026-11-22 16:06:30Z", "2026-11-22T16:06:30+00:00"),
        ("2026-11-22T16:06:30-00:00", "2026-11-22T16:06:30+00:00"),
        ("2026-11-22T16:06:30.1234567891Z", "2026-11-22T16:06:30.123456789+00:00"),  # chrono truncates
        ("2024-02-29T23:59:59.999999999-23:59", "2024-03-01T23:58:59.999999999+00:00"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500+00:00"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00+00:00"),
    ],
)
def test_canonical_text(text, canonical):
    assert format_rfc3339(parse_rfc3339(text)) == canonical


def test_nanoseconds_are_kept():
    assert parse_rfc3339("2026-11-22T16:06:30.000000005Z") == BASE + 5
    assert parse_rfc3339("2026-11-22T16:06:30.480190925Z") == BASE + 480_190_925
    assert parse_rfc3339("1970-01-01T00:00:00Z") == 0


def test_z_form_is_what_the_crate_wrote():
    assert format_z(BASE + 120_000_000) == "2026-11-22T16:06:30.120Z"
    assert format_z(BASE) == "2026-11-22T16:06:30Z"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-22",
        "2026-11-22T16:06:30",
        "2026-11-22T16:06:30+0000",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T16:60:00Z",
        "2026-11-22T16:06:60Z",
        "2026-11-22T16:06:30.Z",
        "2026-11-22T16:06:30+24:00",
        "2026-11-22T16:06:30+01:60",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        " 2026-11-22T16:06:30Z",
        "2026-11-22T16:06:30Z ",
        "２０２６-11-22T16:06:30Z",
    ],
)
def test_invalid_text_is_refused(text):
    with pytest.raises(TimestampError):
        parse_rfc3339(text)


@given(st.integers(min_value=MIN_NS, max_value=MAX_NS))
def test_round_trip_every_instant(ns):
    assert parse_rfc3339(format_rfc3339(ns)) == ns
    assert parse_rfc3339(format_z(ns)) == ns


@given(
    st.integers(min_value=0, max_value=parse_rfc3339("9999-12-31T23:59:59Z")),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_any_offset_and_nine_digits_canonicalise(ns, offset_minutes):
    """Re-spell an instant in another offset with 9 fraction digits: the same hash text."""
    shifted = ns + offset_minutes * 60 * 1_000_000_000
    if not MIN_NS <= shifted <= MAX_NS:
        return
    body = format_z(shifted)[:-1]
    if "." not in body:
        body += "."
    body = body.ljust(len("2026-11-22T16:06:30.") + 9, "0")
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    assert format_rfc3339(parse_rfc3339(f"{body}{sign}{hh:02d}:{mm:02d}")) == format_rfc3339(ns)


@given(st.integers(min_value=0, max_value=parse_rfc3339("9999-12-31T23:59:59Z")))
def test_agrees_with_the_shared_model_helper(ns):
    assert format_rfc3339(ns) == ns_to_rfc3339(ns)
