"""Shared fixtures: paths to the copied legacy fixtures, and the pinned clock.

Time is an input of the library (``thermo_cli.config.clock``), so the suite pins it: every
in-process test runs with the library clock fixed at :data:`PINNED_NS` (the ``clock``
fixture, a :class:`SteppingClock` a test advances when it needs time to move), and every
``thermo`` subprocess inherits ``THERMO_NOW`` with the same instant. Results then do not
depend on the day the suite runs.

To prove it, ``--clock-shift-years N`` (or ``THERMO_TEST_SHIFT_YEARS=N``) runs the session
as if it were N years later: the system clock travels N years ahead (time-machine, ticking)
and the pinned instant in-process and in ``THERMO_NOW`` moves N years too. Tests that relate
time to fixture files must pin a clock relative to the fixture, not rely on the default.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from thermo_cli.codec.timestamps import format_rfc3339 as ns_to_rfc3339
from thermo_cli.config.clock import Clock, SteppingClock, fixed_clock, use_clock
from thermo_cli.model import NS_PER_SECOND, datetime_to_ns

FIXTURES = Path(__file__).parent / "fixtures"
BASE_INSTANT = datetime(2027, 1, 1, tzinfo=UTC)
"""The default pinned instant: after every fixture and test vector was made (2026)."""
SHIFT_ENV = "THERMO_TEST_SHIFT_YEARS"
PINNED_NS = datetime_to_ns(BASE_INSTANT)
"""The instant tests run at (moved by the session's shift, see pytest_configure)."""
_traveller = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift-years",
        type=int,
        default=int(os.environ.get(SHIFT_ENV) or 0),
        help=f"run as if the date were N years later (system clock and pinned clock; env {SHIFT_ENV})",
    )


def _years_later(dt: datetime, years: int) -> datetime:
    """The same calendar date ``years`` later (29 February becomes 28 February)."""
    try:
        return dt.replace(year=dt.year + years)
    except ValueError:
        return dt.replace(year=dt.year + years, day=28)


def pytest_configure(config: pytest.Config) -> None:
    """Pin the session's instant (shifted when asked) and hand it to subprocesses."""
    global PINNED_NS, _traveller
    years = config.getoption("--clock-shift-years")
    PINNED_NS = datetime_to_ns(_years_later(BASE_INSTANT, years))
    os.environ["THERMO_NOW"] = ns_to_rfc3339(PINNED_NS)
    if years:
        import time_machine

        _traveller = time_machine.travel(_years_later(datetime.now(UTC), years), tick=True)
        _traveller.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _traveller is not None:
        _traveller.stop()


def pytest_report_header(config: pytest.Config) -> str:
    years = config.getoption("--clock-shift-years")
    shifted = f", system clock shifted {years} years ahead" if years else ""
    return f"thermo clock pinned at {ns_to_rfc3339(PINNED_NS)}{shifted}"


@pytest.fixture(autouse=True)
def clock() -> Iterator[SteppingClock]:
    """The library's clock for this test: fixed at PINNED_NS until the test advances it."""
    pinned = SteppingClock(PINNED_NS)
    with use_clock(pinned):
        yield pinned


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def clock_after(path: Path, hours: float) -> Clock:
    """A fixed clock ``hours`` after the last consolidation of the thermogram at ``path``.

    For tests on fixture files: whether the 24 h time trigger fires depends on how long
    after the file's last consolidation the operation runs, not on today's date.
    """
    from thermo_cli import store

    return fixed_clock(store.load(path).meta.last_consolidation_ns + int(hours * 3600 * NS_PER_SECOND))


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every fsync/fdatasync while a test runs, as (kind, inode): kind "file" or "dir" for
    an fsync of that, "data" for an fdatasync. The calls still reach the OS."""
    calls: list[tuple[str, int]] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        calls.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino))
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        calls.append(("data", os.fstat(fd).st_ino))
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    return calls


def sync_kinds(calls: list[tuple[str, int]]) -> list[str]:
    """The kinds of the recorded syncs (see :func:`syncs`), in order."""
    return [kind for kind, _ in calls]
