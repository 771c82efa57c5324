"""``THERMO_NOW``: pin the clock for one ``thermo`` run (reproducible pipelines, tests).

Like ``SOURCE_DATE_EPOCH`` for builds: every timestamp the run writes (deltas without one,
events, entries, backups) and the 24 h consolidation trigger then read this instant, so
the same input gives the same file on any day. The CLI only parses the text; the library
receives a clock through :func:`thermo_cli.config.clock.use_clock`.
"""

from __future__ import annotations

import re

from thermo_cli.codec.timestamps import TimestampError, parse_instant
from thermo_cli.config.clock import Clock, fixed_clock
from thermo_cli.errors import ValidationError

ENV_VAR = "THERMO_NOW"
_INTEGER = re.compile(r"-?[0-9]+\Z")


def parse_now(text: str) -> int:
    """``THERMO_NOW`` text → nanoseconds since the epoch: RFC 3339 (strict) or an integer."""
    try:
        return parse_instant(int(text) if _INTEGER.match(text) else text)
    except TimestampError as exc:
        raise ValidationError(
            f"{exc} (expected RFC 3339 text such as 2026-01-02T03:04:05Z or integer nanoseconds)"
        ) from None


def clock_from_env(environ: dict[str, str]) -> Clock | None:
    """The fixed clock ``THERMO_NOW`` asks for, or None when it is unset or empty."""
    text = environ.get(ENV_VAR, "")
    return fixed_clock(parse_now(text)) if text else None
