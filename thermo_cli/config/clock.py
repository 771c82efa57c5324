"""Time as an input: every wall-clock read of the library goes through a clock.

A *clock* is a zero-argument callable returning integer nanoseconds since the Unix epoch
(UTC). The engine stamps deltas, events, entries and metadata with it and compares it with
the last consolidation (the 24 h time trigger), so the time a thermogram sees decides what
it writes. Reading ``time.time_ns()`` directly made results depend on the day they were
computed; with a clock passed in (or pinned for a context) a run can be reproduced — tests
pin one, and the CLI pins one from ``THERMO_NOW`` the way ``SOURCE_DATE_EPOCH`` pins builds.

The current clock is context-scoped (a :class:`contextvars.ContextVar`), like a config
context: :func:`use_clock` sets it for a ``with`` block of this thread or task only and
restores the previous clock afterwards. New threads start with the default, the system
clock, so code that stamps time reads the clock in the calling thread.
Measuring durations and lock timeouts uses ``time.perf_counter``/``time.monotonic``
instead: those are not wall-clock time and stay outside this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import repeat, starmap

from thermo_cli.errors import ValidationError
from thermo_cli.model import TIME_RANGE_TEXT, time_in_range

Clock = Callable[[], int]
"""Returns the current instant as integer nanoseconds since the Unix epoch (UTC)."""


def system_clock() -> int:
    """The operating system's wall clock (``time.time_ns``): the default clock."""
    return time.time_ns()


def readings(clock: Clock, n: int) -> list[int]:
    """``n`` successive readings of ``clock`` (a batch of deltas each stamped when parsed),
    called from C (``starmap``) rather than a Python loop; the system clock is read
    without a Python call per reading."""
    return list(starmap(time.time_ns if clock is system_clock else clock, repeat((), n)))


def _checked_instant(ns: int) -> int:
    """Refuse instants the format cannot store, before anything is stamped with them."""
    if type(ns) is not int:
        raise ValidationError(f"clock: expected integer nanoseconds, got {type(ns).__name__}")
    if not time_in_range(ns):
        raise ValidationError(f"clock: {ns} ns is outside {TIME_RANGE_TEXT}")
    return ns


def fixed_clock(ns: int) -> Clock:
    """A clock that always reads ``ns``: for reproducible runs where time must not move."""
    instant = _checked_instant(ns)

    def clock() -> int:
        return instant

    clock.__qualname__ = f"fixed_clock({instant})"
    return clock


class SteppingClock:
    """A test clock that moves only when told to (``advance``) or by ``step`` per read.

    With ``step=0`` every read returns the same instant until :meth:`advance`; a positive
    ``step`` makes consecutive reads strictly increasing, for code that orders by time.
    """

    __slots__ = ("ns", "step")

    def __init__(self, start_ns: int, step_ns: int = 0) -> None:
        if type(step_ns) is not int or step_ns < 0:
            raise ValidationError(f"clock: step must be a non-negative integer, got {step_ns!r}")
        self.ns = _checked_instant(start_ns)
        self.step = step_ns

    def __call__(self) -> int:
        now = self.ns
        self.ns = now + self.step
        return now

    def advance(self, ns: int) -> int:
        """Move the clock ``ns`` nanoseconds forward (never back); returns the new time."""
        if type(ns) is not int or ns < 0:
            raise ValidationError(f"clock: can only advance by a non-negative integer, got {ns!r}")
        self.ns = _checked_instant(self.ns + ns)
        return self.ns


_CURRENT: ContextVar[Clock] = ContextVar("thermo_clock", default=system_clock)


def current_clock() -> Clock:
    """The clock of the current context (the system clock unless :func:`use_clock` set one)."""
    return _CURRENT.get()


def now_ns() -> int:
    """The current instant by the current context's clock, in nanoseconds since the epoch."""
    return _CURRENT.get()()


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the current clock inside the ``with`` block (this context only)."""
    if not callable(clock):
        raise ValidationError(f"clock: expected a callable returning nanoseconds, got {type(clock).__name__}")
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)
