"""Helpers for CLI tests: a CliRunner bound to the full app, and small files to work on."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands on the app
from thermo_cli.cli._common import app

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
LEGACY_SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "v0.5" / "small.thermo"


@dataclass
class Run:
    code: int
    out: str
    err: str
    stdout_bytes: bytes


class Thermo:
    """Invoke ``thermo`` in-process; returns exit code, stdout and stderr separately."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: bytes | str | None = None, env: dict | None = None) -> Run:
        result = self.runner.invoke(app, [str(a) for a in args], input=input, env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr, result.stdout_bytes)


@pytest.fixture
def thermo() -> Thermo:
    return Thermo()


@pytest.fixture
def fresh(tmp_path: Path, thermo: Thermo) -> Path:
    """An empty thermogram (manual policy, so nothing consolidates behind a test's back)."""
    path = tmp_path / "t.thermo"
    assert thermo("init", path, "--policy", "manual").code == 0
    return path


@pytest.fixture
def filled(fresh: Path, thermo: Thermo) -> Path:
    """The sample delta stream applied and consolidated."""
    assert thermo("apply", fresh, SAMPLES / "deltas.jsonl").code == 0
    assert thermo("consolidate", fresh).code == 0
    return fresh


@pytest.fixture
def legacy_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "legacy.thermo"
    shutil.copyfile(LEGACY_SMALL, dest)
    return dest
