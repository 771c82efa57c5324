"""The body of ``thermo apply``, without typer: shared by the typer command and the fast path.

``thermo apply`` runs in shell pipelines, where building the typer app would be a tenth of
applying 100,000 deltas; :mod:`thermo_cli.cli._fast` calls :func:`run_apply` directly for a
simple command line (and leaves help, usage errors and progress bars to typer), the typer
command calls it with its progress bar. Only :mod:`thermo_cli.cli._core` and
:mod:`thermo_cli.cli._io` are imported at load time.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from thermo_cli.cli._core import (
    EXIT_USAGE,
    err,
    flag_hints,
    is_interactive,
    open_input,
    print_json,
    short_hash,
    stream_limits,
)
from thermo_cli.cli._io import PROGRESS_MIN_BYTES, CountingReader, input_size, lines_of

_KEEP_UNTIL_EXIT: list[Any] = []
"""The last applied thermogram: see ``_core.exit_process`` for why it is not freed."""


def _no_progress(description: str, total: float | None, **kwargs: Any) -> Any:
    return contextlib.nullcontext(None)


def run_apply(
    file: str,
    deltas: str = "-",
    source: str = "thermo",
    skip_invalid: bool = False,
    auto_consolidate: bool = True,
    dry_run: bool = False,
    max_line_bytes: int | None = None,
    max_key_bytes: int | None = None,
    upgrade: bool = False,
    json_out: bool = False,
    progress: Callable[..., Any] = _no_progress,
) -> int:
    """Apply the JSONL deltas of ``deltas`` to ``file``; print the summary; return the exit code."""
    from thermo_cli.config.limits import DEFAULT_LIMITS
    from thermo_cli.operations.apply import apply_file

    if deltas == "-" and sys.stdin.isatty():
        err("thermo: error: reading deltas from a terminal: pipe a JSONL stream or name a file")
        return EXIT_USAGE
    limits = stream_limits(
        DEFAULT_LIMITS.max_line_bytes if max_line_bytes is None else max_line_bytes,
        DEFAULT_LIMITS.max_key_bytes if max_key_bytes is None else max_key_bytes,
    )
    started = time.perf_counter()
    size = input_size(deltas)
    with (
        open_input(deltas) as raw,
        progress("applying", size, min_total=PROGRESS_MIN_BYTES, unit="bytes") as bar,
        lines_of(deltas),
    ):
        stream = CountingReader(raw, bar) if bar is not None and is_interactive() else raw
        report = apply_file(
            file,
            stream,
            limits=limits,
            source=source,
            skip_invalid=skip_invalid,
            auto_consolidate=auto_consolidate,
            dry_run=dry_run,
            upgrade=upgrade,
            second_core=True,
        )
    _KEEP_UNTIL_EXIT[:] = [report]  # freed by the process exit, not object by object
    elapsed = time.perf_counter() - started
    for message in report.skipped:
        err(f"thermo: skipped {flag_hints(message)}")
    if json_out:
        print_json({"file": file, **report.to_json(), "seconds": round(elapsed, 6)})
    err(_apply_summary(file, report, elapsed))
    return 0


def _apply_summary(file: str, report: Any, elapsed: float) -> str:
    n, c, s = report.applied, report.consolidations, len(report.skipped)
    extra = f", {c} consolidation{'s' * (c != 1)}" if c else ""
    skip = f", skipped {s} bad line{'s' * (s != 1)}" if s else ""
    verb = "would apply" if report.dry_run else "applied"
    head = short_hash(report.thermogram.head_hash)
    return f"{verb} {n} delta{'s' * (n != 1)} to {file}{extra}{skip}; head {head} ({elapsed:.2f} s)"
