"""Crash safety of the writing commands: SIGKILL at random moments, truncation at many bytes.

Default suite: two kills per command plus a truncation sweep of one ``thermo apply``
commit (a few seconds). Slow suite (``-m slow``): at least 200 kills over the commands and
a sweep over thousands of cut points. See :mod:`tests.reliability.harness` for the checks
made after every kill.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.reliability import scenarios
from tests.reliability.harness import KillStats, Prepared, kill_once, prepare, sweep_points, truncation_sweep

QUICK_SCALE = 0.4
QUICK_KILLS = 2


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


@pytest.mark.parametrize("scenario", scenarios.all_scenarios(QUICK_SCALE), ids=lambda s: _slug(s.name))
def test_killed_command_leaves_before_or_after_state(scenario: scenarios.Scenario, tmp_path: Path) -> None:
    prepared = prepare(scenario, tmp_path / _slug(scenario.name))
    stats = KillStats()
    rng = random.Random(f"quick-{scenario.name}")
    for i in range(QUICK_KILLS):
        kill_once(prepared, rng, stats, cli_check=i == 0)
    assert stats.kills == QUICK_KILLS
    assert stats.before + stats.after == QUICK_KILLS


def test_snn_run_is_among_the_killed_commands() -> None:
    assert scenarios.snn_available(), "thermo snn run is not registered (thermo_cli/cli/snn.py missing)"


@pytest.fixture(scope="module")
def small_apply(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(scenarios.apply_scenario(0.05), tmp_path_factory.mktemp("sweep"))


def test_truncated_append_reads_as_before_and_repairs_to_the_exact_bytes(small_apply: Prepared) -> None:
    assert small_apply.before_bytes is not None
    appended = len(small_apply.after_bytes) - len(small_apply.before_bytes)
    cuts = sweep_points(appended, random.Random(7), 12)
    assert truncation_sweep(small_apply, cuts) == len(cuts)


# --- slow suite --------------------------------------------------------------------------------

SLOW_KILLS = {
    "apply": 50,
    "apply+auto-consolidate": 30,
    "consolidate": 35,
    "import-safetensors": 30,
    "quantize": 30,
    "snn run": 30,
}


@pytest.mark.slow
def test_many_kills_of_every_writing_command(tmp_path: Path) -> None:
    total = KillStats()
    per: dict[str, KillStats] = {}
    for scenario in scenarios.all_scenarios(1.0):
        prepared = prepare(scenario, tmp_path / _slug(scenario.name))
        stats = per[scenario.name] = KillStats()
        rng = random.Random(f"slow-{scenario.name}")
        for i in range(SLOW_KILLS[scenario.name]):
            kill_once(prepared, rng, stats, cli_check=i < 3)
        for name in (
            "kills",
            "finished_before_kill",
            "before",
            "after",
            "torn_tails",
            "temp_files",
            "repaired",
        ):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        assert stats.before and stats.after, (scenario.name, stats.outcomes)
    summary = {name: (s.kills, s.before, s.after, s.torn_tails, s.temp_files) for name, s in per.items()}
    print(f"\nkills (kills, before, after, torn tails, temp files): {summary}")
    assert total.kills >= 200
    assert per["apply"].torn_tails + per.get("snn run", KillStats()).torn_tails > 0, summary
    assert total.temp_files > 0, summary


@pytest.mark.slow
def test_truncated_append_at_thousands_of_cut_points(tmp_path: Path) -> None:
    prepared = prepare(scenarios.apply_scenario(0.05), tmp_path)
    assert prepared.before_bytes is not None
    appended = len(prepared.after_bytes) - len(prepared.before_bytes)
    cuts = sweep_points(appended, random.Random(8), 3000)
    assert truncation_sweep(prepared, cuts, full_checks=20) == len(cuts)
