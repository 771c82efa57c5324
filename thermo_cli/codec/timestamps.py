"""RFC 3339 text ⇄ integer nanoseconds: the one parser and formatter of timestamp text.

Every timestamp the project reads as text (JSONL ``timestamp``, a crate JSON file, an
Engram export) and every one it writes or hashes goes through here, so they cannot
disagree: a text one reader took, another refusing, or two readers giving two instants.

The rules are the Rust crate's (chrono's) as the legacy reader applies them. The crate
hashed the *text* of each delta's timestamp, produced by chrono's ``to_rfc3339()`` from
the parsed instant, so the instant is kept to the nanosecond (``datetime`` keeps only
microseconds) and any spelling of it — ``Z`` or ``+00:00``, another offset, 9 fraction
digits where 3 would do — canonicalises to the same text. Only ASCII digits count, no
surrounding whitespace is allowed and a leap second (``:60``) is refused, since an
integer instant cannot hold it.
"""

from __future__ import annotations

import re
from datetime import date

from thermo_cli.errors import ValidationError, quote
from thermo_cli.model import NS_PER_SECOND, TIME_RANGE_TEXT, time_in_range

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))?",
    re.ASCII,  # \d must not match other scripts' digits
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NS_PER_DAY = 86_400 * NS_PER_SECOND
MIN_NS = (date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * _NS_PER_DAY
"""0001-01-01T00:00:00Z: the earliest instant with a four-digit RFC 3339 year."""
MAX_NS = (date(9999, 12, 31).toordinal() + 1 - _EPOCH_ORDINAL) * _NS_PER_DAY - 1
"""9999-12-31T23:59:59.999999999Z: the latest one."""


class TimestampError(ValidationError):
    """The text is not an RFC 3339 instant the crate could have read (reason in the message)."""


def parse_rfc3339(text: str) -> int:
    """RFC 3339 date-time text → nanoseconds since the Unix epoch (UTC), losing nothing.

    Accepts what chrono's parser accepts in practice: ``T``/``t``/space separator, any
    number of fraction digits (digits past the ninth are truncated, as chrono does), ``Z``,
    ``z`` or a ``±HH:MM`` offset below 24 h; years 0001..9999 once converted to UTC.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise TimestampError(f"not an RFC 3339 timestamp: {quote(text)}")
    if m.group(8) is None and m.group(9) is None:
        raise TimestampError(f"{quote(text)} must be timezone-aware (end in Z or ±HH:MM)")
    ns = _utc_seconds(text, m) * NS_PER_SECOND + _fraction_ns(m.group(7))
    if not MIN_NS <= ns <= MAX_NS:
        raise TimestampError(f"{quote(text)} is outside the years 0001..9999 once converted to UTC")
    return ns


def parse_rfc3339_i64(text: str) -> int:
    """:func:`parse_rfc3339`, also refusing instants outside the format's 64-bit nanoseconds.

    chrono's 0001..9999 is wider than what a record can store, so every reader that turns
    text into a stored timestamp uses this one, with this one message.
    """
    ns = parse_rfc3339(text)
    if not time_in_range(ns):
        raise TimestampError(
            f"{quote(text)} is outside the supported range {TIME_RANGE_TEXT} (64-bit nanoseconds)"
        )
    return ns


def parse_instant(value: object) -> int:
    """An instant given as RFC 3339 text or as integer nanoseconds → ns in the format's range.

    The one reading of "a time a user typed": JSONL ``timestamp`` fields and ``THERMO_NOW``
    both accept either form and refuse the same values with the same words.
    """
    if isinstance(value, str):
        return parse_rfc3339_i64(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TimestampError(f"expected RFC 3339 text or integer nanoseconds, got {type(value).__name__}")
    if not time_in_range(value):
        raise TimestampError(
            f"nanoseconds out of range: {value} is outside the supported range {TIME_RANGE_TEXT} "
            "(64-bit nanoseconds)"
        )
    return value


def _utc_seconds(text: str, m: re.Match[str]) -> int:
    """Whole seconds since the epoch of a matched text, its offset applied and checked."""
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        ordinal = date(year, month, day).toordinal()
    except ValueError as exc:
        raise TimestampError(f"not a valid date in {quote(text)} ({exc})") from None
    if hour > 23 or minute > 59:
        raise TimestampError(f"not a valid time of day in {quote(text)}")
    if second == 60:
        raise TimestampError(f"leap second in {quote(text)} is not supported")
    if second > 59:
        raise TimestampError(f"not valid seconds in {quote(text)}")
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise TimestampError(f"bad UTC offset in {quote(text)}")
        offset = (oh * 3600 + om * 60) * (1 if m.group(9) == "+" else -1)
    return (ordinal - _EPOCH_ORDINAL) * 86_400 + hour * 3600 + minute * 60 + second - offset


def _fraction_ns(frac: str | None) -> int:
    """Fraction digits → nanoseconds; digits past the ninth are dropped, as chrono does."""
    return int(frac[:9].ljust(9, "0")) if frac else 0


def _fraction(nanos: int) -> str:
    """chrono's automatic fraction: none, 3, 6 or 9 digits, the fewest that are exact."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1000 == 0:
        return f".{nanos // 1000:06d}"
    return f".{nanos:09d}"


def _civil(ns: int) -> str:
    """The date and time of day of an instant (UTC), without an offset."""
    if not MIN_NS <= ns <= MAX_NS:
        raise TimestampError(f"{ns} ns is outside the years 0001..9999")
    days, rem = divmod(ns, _NS_PER_DAY)
    secs, nanos = divmod(rem, NS_PER_SECOND)
    d = date.fromordinal(_EPOCH_ORDINAL + days)
    hh, rest = divmod(secs, 3600)
    mm, ss = divmod(rest, 60)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{hh:02d}:{mm:02d}:{ss:02d}{_fraction(nanos)}"


def format_rfc3339(ns: int) -> str:
    """The crate's ``to_rfc3339()`` text of an instant (ends in ``+00:00``): what it hashed."""
    return _civil(ns) + "+00:00"


def format_z(ns: int) -> str:
    """The same digits ending in ``Z``: what serde wrote into the crate's JSON files and what
    thermo shows people and writes to JSON."""
    return _civil(ns) + "Z"
