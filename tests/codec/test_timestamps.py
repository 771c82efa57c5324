"""RFC 3339 text ↔ integer nanoseconds, canonicalised the way chrono's to_rfc3339() wrote it,
and read alike by every reader of timestamp text (JSONL lines, crate JSON files)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.formats.legacy._fixtures import fixture_bytes
from thermo_cli.codec.timestamps import (
    MAX_NS,
    MIN_NS,
    TimestampError,
    format_rfc3339,
    format_z,
    parse_rfc3339,
    parse_rfc3339_i64,
)
from thermo_cli.errors import LegacyFormatError, ValidationError
from thermo_cli.formats import jsonl
from thermo_cli.formats.legacy import load_legacy
from thermo_cli.model import MAX_TIME_NS, MIN_TIME_NS

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


def test_the_model_keeps_no_formatter_of_its_own():
    """One home for timestamp text: the formatting that lived in the model moved here."""
    import thermo_cli.model as model

    assert not hasattr(model, "ns_to_rfc3339") and not hasattr(model, "ns_to_text")


@pytest.mark.parametrize("ns", [MIN_TIME_NS, -1, 0, 5, 1_795_363_590_120_000_000, MAX_TIME_NS])
def test_stored_range_edges_format_and_parse(ns):
    assert parse_rfc3339_i64(format_z(ns)) == ns


@pytest.mark.parametrize("text", ["1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775808Z"])
def test_the_stored_range_is_64_bit_nanoseconds(text):
    parse_rfc3339(text)
    with pytest.raises(TimestampError, match=r"1677-09-21\.\.2262-04-11"):
        parse_rfc3339_i64(text)


# --- parity: a JSONL line and a crate JSON file read the same texts the same way ---------------

_LEGACY_DOC = orjson.loads(fixture_bytes("v0.5", "small.thermo"))


def _via_jsonl(text: str) -> int | str:
    """The instant a JSONL delete line stores for ``text``, or the refusal's message."""
    line = orjson.dumps({"op": "delete", "key": "k", "timestamp": text})
    try:
        (delta,) = jsonl.parse_text(line)
    except ValidationError as exc:
        return str(exc)
    return delta.timestamp_ns


def _via_legacy(text: str) -> int | str:
    """The instant the legacy reader takes from a crate file whose ``created_at`` is ``text``."""
    doc = dict(_LEGACY_DOC, metadata=dict(_LEGACY_DOC["metadata"], created_at=text))
    try:
        return load_legacy(orjson.dumps(doc), source="old.thermo").meta.created_at_ns
    except LegacyFormatError as exc:
        return str(exc)


def _agree(text: str) -> int | None:
    """Both readers accept ``text`` giving the same ns (returned), or both refuse (None)."""
    by_jsonl, by_legacy = _via_jsonl(text), _via_legacy(text)
    assert type(by_jsonl) is type(by_legacy), (text, by_jsonl, by_legacy)
    if isinstance(by_jsonl, str):
        assert by_jsonl.startswith("line 1: timestamp: "), by_jsonl
        assert "created_at" in by_legacy, by_legacy
        return None
    assert by_jsonl == by_legacy
    return by_jsonl


@pytest.mark.parametrize(
    "text",
    [
        "٢٠٢٥-٠١-٠٢T03:04:05Z",  # Arabic-Indic digits: `thermo apply` once stored 2025-01-02
        "2025-01-02T23:59:60Z",  # a leap second: once folded into :59
        " 2025-01-02T03:04:05Z",  # surrounding whitespace: once stripped
        "2025-01-02T03:04:05Z\n",
        "2025-01-02T03:04:05",
        "2025-02-30T03:04:05Z",
        "2025-01-02T03:04:05+24:00",
        "1500-01-01T00:00:00Z",
    ],
)
def test_the_known_disagreements_are_refused_by_both(text):
    assert _agree(text) is None


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2025-01-02T03:04:05Z", 1_735_787_045 * 10**9),
        ("2025-01-02 03:04:05.1234567891z", 1_735_787_045 * 10**9 + 123_456_789),
        ("2025-01-02T04:04:05.5+01:00", 1_735_787_045 * 10**9 + 500_000_000),
    ],
)
def test_both_accept_the_same_spellings(text, ns):
    assert _agree(text) == ns


_DIGIT = st.sampled_from("0123456789٠١٢٣٤٥٦٧٨٩０")
_PIECE = st.one_of(
    st.text(_DIGIT, min_size=1, max_size=4),
    st.sampled_from(["-", ":", "T", "t", " ", ".", "Z", "z", "+", "\n", "60", "59", "23", "00"]),
)


def _mutations(ns: int, offset_minutes: int, fraction_digits: int) -> str:
    """A valid spelling of an instant: offset, fraction length and separator varied."""
    body = format_z(ns + offset_minutes * 60 * 10**9)[:-1].split(".")[0]
    frac = f"{ns % 10**9:09d}".ljust(fraction_digits, "7")[:fraction_digits]
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    return f"{body}{'.' + frac if frac else ''}{sign}{hh:02d}:{mm:02d}"


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.builds(
            _mutations,
            st.integers(min_value=MIN_TIME_NS + 10**15, max_value=MAX_TIME_NS - 10**15),
            st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
            st.integers(min_value=0, max_value=12),
        ),
        st.lists(_PIECE, max_size=12).map("".join),
        st.text(max_size=30),
    )
)
def test_jsonl_and_the_legacy_reader_agree_on_any_text(text):
    ns = _agree(text)
    if ns is not None:
        assert parse_rfc3339_i64(text) == ns
    else:
        with pytest.raises(TimestampError):
            parse_rfc3339_i64(text)
