"""Fixtures for the reliability tests: an in-process ``thermo`` runner and small files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands on the app
from thermo_cli import store
from thermo_cli.cli._common import app
from thermo_cli.config.engine import ConsolidationPolicy
from thermo_cli.engine.thermogram import Thermogram

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "format" / "vectors"
LEGACY = ROOT / "tests" / "fixtures" / "legacy"
SAMPLES = ROOT / "samples"


@dataclass
class Run:
    code: int
    out: str
    err: str


class Thermo:
    """Invoke ``thermo`` in-process (CliRunner); exit code, stdout and stderr apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: object, input: bytes | str | None = None) -> Run:
        result = self.runner.invoke(app, [str(a) for a in args], input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def thermo() -> Thermo:
    return Thermo()


def make_file(path: Path, *, deltas: int = 20, commits: int = 2) -> Path:
    """A container with ``commits`` commits (a create, then appends of ``deltas`` deltas each)."""
    tg = Thermogram(name="rel", policy=ConsolidationPolicy.preset("manual"))
    for i in range(deltas):
        tg.create(f"k{i}", f"value {i}".encode(), strength=0.5, timestamp_ns=1_700_000_000_000_000_000 + i)
    store.create(path, tg)
    for c in range(1, commits):
        tg = store.load(path)
        for i in range(deltas):
            tg.update(
                f"k{i}",
                f"value {i} v{c}".encode(),
                strength=0.6,
                timestamp_ns=1_700_000_001_000_000_000 + c * 1000 + i,
            )
        assert store.commit(path, tg) == "append"
    return path


@pytest.fixture
def container(tmp_path: Path) -> Path:
    return make_file(tmp_path / "r.thermo")
