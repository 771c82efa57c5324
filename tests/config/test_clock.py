"""The clock: fixed and stepping clocks, context scoping, and THERMO_NOW on the command line."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
import time

import pytest

from thermo_cli.config import clock as clk
from thermo_cli.config.clock import SteppingClock, current_clock, fixed_clock, now_ns, system_clock, use_clock
from thermo_cli.errors import ValidationError
from thermo_cli.model import MAX_TIME_NS, NS_PER_SECOND

pytestmark = pytest.mark.clock

T = 1_767_323_045 * NS_PER_SECOND  # 2026-01-02T03:04:05Z


def test_a_fixed_clock_always_reads_its_instant():
    c = fixed_clock(T)
    assert [c(), c(), c()] == [T, T, T]


@pytest.mark.parametrize("bad", [MAX_TIME_NS + 1, 1.5, "1", True])
def test_a_clock_refuses_instants_the_format_cannot_store(bad):
    with pytest.raises(ValidationError, match="clock"):
        fixed_clock(bad)


def test_a_stepping_clock_moves_only_when_told():
    c = SteppingClock(T)
    assert c() == c() == T
    assert c.advance(10) == T + 10 == c()
    with pytest.raises(ValidationError, match="non-negative"):
        c.advance(-1)
    assert c() == T + 10


def test_a_stepping_clock_with_a_step_gives_increasing_reads():
    c = SteppingClock(T, step_ns=3)
    assert [c(), c(), c()] == [T, T + 3, T + 6]


def test_the_system_clock_reads_the_wall_clock():
    before = time.time_ns()
    assert before <= system_clock() <= time.time_ns()


def test_use_clock_scopes_the_current_clock_and_restores_it(clock):
    assert current_clock() is clock
    inner = fixed_clock(T)
    with use_clock(inner) as given:
        assert given is inner and now_ns() == T
        with use_clock(fixed_clock(T + 1)):
            assert now_ns() == T + 1
        assert now_ns() == T
    assert current_clock() is clock


def test_use_clock_restores_the_clock_after_an_error(clock):
    with pytest.raises(RuntimeError), use_clock(fixed_clock(T)):
        raise RuntimeError("boom")
    assert current_clock() is clock


def test_use_clock_refuses_what_is_not_a_clock():
    with pytest.raises(ValidationError, match="callable"), use_clock(T):  # type: ignore[arg-type]
        pass


def test_the_default_clock_is_the_system_clock_outside_any_context():
    assert contextvars.Context().run(current_clock) is system_clock


def test_a_pinned_clock_is_for_this_context_only(clock):
    """Another thread starts from a fresh context: it sees the default, not our pin."""
    seen = []
    with use_clock(fixed_clock(T)):
        worker = threading.Thread(target=lambda: seen.append(current_clock()))
        worker.start()
        worker.join()
    assert seen == [clk.system_clock]


# --- THERMO_NOW on the command line -----------------------------------------------------------

RUN = "import sys; from thermo_cli.cli import main; sys.argv[0] = 'thermo'; main()"


def thermo(*args: str, now: str | None) -> subprocess.CompletedProcess[str]:
    """Run the real ``thermo`` entry point with THERMO_NOW set to ``now`` (None: unset)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "THERMO_NOW"}
    if now is not None:
        env["THERMO_NOW"] = now
    return subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        ("tomorrow", "not an RFC 3339 timestamp"),
        ("2026-02-30T00:00:00Z", "not a valid date"),
        ("2026-01-02T03:04:05", "must be timezone-aware"),  # no offset: not an instant
        ("2026-01-02T23:59:60Z", "leap second"),
        ("3000-01-01T00:00:00Z", "outside the supported range 1677-09-21..2262-04-11"),
        (str(2**63), "outside"),
        ("1.5e18", "not an RFC 3339 timestamp"),
    ],
)
def test_a_bad_thermo_now_is_one_usage_error_line(tmp_path, now, reason):
    target = tmp_path / "t.thermo"
    done = thermo("init", str(target), now=now)
    assert done.returncode == 2
    assert done.stderr.startswith("thermo: error: THERMO_NOW: ")
    assert reason in done.stderr and done.stderr.count("\n") == 1
    assert not target.exists()


@pytest.mark.parametrize(
    "now", ["2026-01-02T03:04:05Z", "2026-01-02T04:04:05+01:00", str(1_767_323_045 * NS_PER_SECOND)]
)
def test_thermo_now_pins_every_stamp_of_a_run(tmp_path, now):
    from thermo_cli import store

    target = tmp_path / "t.thermo"
    assert thermo("init", str(target), now=now).returncode == 0
    deltas = tmp_path / "d.jsonl"
    deltas.write_text('{"op": "create", "key": "k", "value": "v"}\n')
    assert thermo("apply", str(target), str(deltas), now=now).returncode == 0
    assert thermo("consolidate", str(target), now=now).returncode == 0
    tg = store.load(target, log="full")
    assert tg.meta.created_at_ns == tg.meta.last_consolidation_ns == T
    assert {r.timestamp_ns for r in tg.records} == {T}


def test_an_empty_thermo_now_leaves_the_system_clock(tmp_path):
    """The subprocess reads the real wall clock (a session shift travels this process only)."""
    from time_machine import escape_hatch

    from thermo_cli import store

    wall = escape_hatch.time.time_ns if escape_hatch.is_travelling() else time.time_ns
    target = tmp_path / "t.thermo"
    before = wall()
    assert thermo("init", str(target), now="").returncode == 0
    assert before <= store.load(target).meta.created_at_ns <= wall()
