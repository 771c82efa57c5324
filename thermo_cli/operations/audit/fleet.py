"""Verify many thermograms at once: local processes, or an existing Dask cluster.

A fleet is a list of files, globs (``models/**/*.thermo``), local directories and URL
prefixes or globs (``s3://bucket/models/``, ``gs://b/run-*/m.thermo``). Each file is one
independent job — :func:`verify_one` opens it, runs the whole :func:`verify_file` and
returns one JSON-ready line — so the same function runs in-process (``jobs=1``), in a
pool of local processes (``jobs=N``) or on the workers of a Dask ``distributed`` cluster
(``dask=ADDRESS``), and a file that cannot be read is a line saying why, never the end
of the audit. Settings that live in this process's context (caps, remote options) travel
with each job explicitly: other processes do not share the context.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from thermo_cli.config.limits import Limits, current_limits, use_limits
from thermo_cli.config.remote import RemoteSettings, current_remote, is_url, use_remote
from thermo_cli.errors import NotFoundError, ThermoError, ValidationError

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """What every file of a fleet is verified with (picklable: it travels to workers)."""

    pubkeys: tuple[Any, ...] = ()
    deep: bool = False
    require_signed_head: bool = False
    limits: Limits = field(default_factory=current_limits)
    remote: RemoteSettings = field(default_factory=current_remote)


def expand_targets(targets: Sequence[str], remote: RemoteSettings | None = None) -> list[str]:
    """The files a fleet's arguments name, in argument order, each once.

    A glob expands to its matches (``**`` recurses), a local directory to the ``.thermo``
    files below it, a URL glob or a URL ending in ``/`` to the objects it lists; a
    pattern matching nothing is an error (NotFoundError), not a silently smaller audit.
    """
    out: dict[str, None] = {}
    for target in targets:
        for path in _expand_one(target, remote):
            out.setdefault(path, None)
    if not out:
        raise ValidationError("paths: no file to verify")
    return list(out)


def _expand_one(target: str, remote: RemoteSettings | None) -> list[str]:
    if is_url(target):
        from thermo_cli.container.remote import expand_url

        found = expand_url(target, remote)
    elif any(c in _GLOB_CHARS for c in target):
        found = sorted(p for p in glob.glob(target, recursive=True) if os.path.isfile(p))
    elif os.path.isdir(target):
        found = sorted(glob.glob(os.path.join(glob.escape(target), "**", "*.thermo"), recursive=True))
    else:
        return [target]
    if not found:
        raise NotFoundError(f"{target}: matches no file")
    return found


def verify_one(path: str, options: FleetOptions) -> dict[str, Any]:
    """Verify one file of a fleet: its JSON Lines report line (never raises for the file).

    ``ok`` is True only for an intact file; ``error`` names why a file could not be
    read at all (``code`` is the error's stable code), ``failure`` the first failed check.
    """
    from thermo_cli.operations.audit.verify import verify_file

    t0 = time.perf_counter()
    line: dict[str, Any] = {"path": path, "ok": False}
    with use_limits(options.limits), use_remote(options.remote):
        try:
            report = verify_file(
                path,
                pubkeys=options.pubkeys,
                deep=options.deep,
                workers=1,  # the fleet is the parallelism: one process per file
                require_signed_head=options.require_signed_head,
            )
        except ThermoError as exc:
            line["error"] = {"code": exc.code, "message": str(exc)}
        except OSError as exc:
            line["error"] = {"code": "os", "message": f"{path}: {exc.strerror or exc}"}
        else:
            line.update(_summary_of(report))
    line["seconds"] = round(time.perf_counter() - t0, 4)
    return line


def _summary_of(report: Any) -> dict[str, Any]:
    auth = report.authentication or {}
    return {
        "ok": report.ok,
        "format": report.format,
        "head_hash": report.head_hash,
        "records": report.details.get("log_size", report.records),
        "failure": _first_failure(report),
        "authentication": auth.get("status"),
    }


def _first_failure(report: Any) -> dict[str, Any] | None:
    """The report's first failure, or its first failed check when none was recorded."""
    f = report.failure
    if f is not None:
        return {"check": f.check, "reason": f.reason, "index": f.index, "key": f.key}
    bad = next((c for c in report.checks if not c.ok), None)
    return None if bad is None else {"check": bad.name, "reason": bad.detail, "index": None, "key": None}


@dataclass(slots=True)
class FleetSummary:
    """The last line of a fleet audit."""

    engine: str
    files: int = 0
    intact: int = 0
    failed: int = 0
    unreadable: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.unreadable == 0

    def count(self, line: dict[str, Any]) -> None:
        self.files += 1
        if line["ok"]:
            self.intact += 1
        elif "error" in line:
            self.unreadable += 1
        else:
            self.failed += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": True,
            "ok": self.ok,
            "files": self.files,
            "intact": self.intact,
            "failed": self.failed,
            "unreadable": self.unreadable,
            "engine": self.engine,
            "seconds": round(self.seconds, 4),
        }


def verify_fleet(
    paths: Sequence[str],
    options: FleetOptions,
    *,
    jobs: int = 1,
    dask: str | None = None,
    dask_timeout: float = 30.0,
    summary: FleetSummary | None = None,
) -> Iterator[dict[str, Any]]:
    """One report line per file of ``paths``, in their order, as each is known.

    ``jobs`` local processes (1: this process), or the workers of the Dask cluster at
    ``dask`` (a scheduler address, e.g. ``tcp://10.0.0.5:8786``; needs ``distributed``), through
    :func:`thermo_cli.operations.workers.run_jobs`.
    ``dask_timeout`` seconds to reach the scheduler. ``summary``, when given, is filled in
    as lines are produced.
    """
    from thermo_cli.operations.workers import run_jobs

    t0 = time.perf_counter()
    engine, lines = run_jobs(
        verify_one, paths, jobs=jobs, dask=dask, dask_timeout=dask_timeout, options=options
    )
    if summary is not None:
        summary.engine = engine
    for line in lines:
        if summary is not None:
            summary.count(line)
            summary.seconds = time.perf_counter() - t0
        yield line
