"""``thermo repair``: cut a container back to its last commit after a crash;
``thermo compact``: rewrite a container without the bytes its state no longer references.

Only parses, calls :func:`thermo_cli.operations.repair.repair` and reports: a summary on stderr,
the result as JSON on stdout with ``--json``. Exit 0 when the file ends in its last
commit afterwards (or already did), 3 when it has no committed state left, 4 when the
repair is refused (damaged last commit, existing backup), 5 when a writer holds the lock.
"""

from __future__ import annotations

from typing import Annotated

import typer

from thermo_cli.cli._common import err, print_json
from thermo_cli.cli._io import named_file
from thermo_cli.config.limits import format_size

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("repair")
def repair_cmd(
    file: Annotated[
        str,
        typer.Argument(
            help="A .thermo file left by an interrupted write.", show_default=False, callback=named_file
        ),
    ],
    backup: Annotated[
        str | None,
        typer.Option(
            "--backup",
            "-b",
            help="Where to copy the original bytes first (default: FILE.bak-<UTC time>); must not exist.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be done; change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also drop a tail that ends in a complete commit footer (a damaged commit, "
            "not an interrupted write); the backup is still written.",
        ),
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for a writer holding the file's lock.")
    ] = 120.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Drop the torn tail an interrupted write left (after a backup); never drops a commit.

    The file is cut back to the end of its last valid commit, which is what every reader
    already sees; the original bytes go to FILE.bak-<UTC time> (or --backup) first.
    Leftover temporary files of interrupted rewrites are removed too.

    Example: thermo repair memory.thermo && thermo verify memory.thermo
    """
    from thermo_cli.operations.repair import repair

    report = repair(file, backup=backup, dry_run=dry_run, force=force, lock_timeout=wait)
    if json_out:
        print_json(report.to_json())
    for line in _summary(file, report):
        err(line)


def _summary(file: str, report: object) -> list[str]:
    from thermo_cli.operations.repair import RepairReport

    assert isinstance(report, RepairReport)
    head = "none" if report.head_hash is None else report.head_hash[:12]
    state = f"{report.log_size} log records, head {head}"
    verb = "would drop" if report.dry_run else "dropped"
    lines: list[str] = []
    if report.torn_tail_bytes:
        lines.append(
            f"{verb} a torn tail of {report.torn_tail_bytes} bytes "
            f"({format_size(report.torn_tail_bytes)}) from {file}; it ends at its last commit "
            f"({state})"
        )
        lines.append(
            f"{'would back up' if report.dry_run else 'backed up'} the original "
            f"{report.file_bytes} bytes to {report.backup}"
        )
    for temp in report.temp_files:
        lines.append(
            f"{'would remove' if report.dry_run else 'removed'} the leftover temporary file "
            f"{temp} of an interrupted rewrite"
        )
    if not report.needed:
        lines.append(f"nothing to repair: {file} ends at its last commit ({state})")
    elif not report.dry_run:
        lines.append(f"run `thermo verify {file}` to check every hash")
    return lines


@commands.command("compact")
def compact_cmd(
    file: Annotated[
        str, typer.Argument(help="A .thermo container.", show_default=False, callback=named_file)
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Rewrite the file atomically without the chunks and values no entry references any more.

    Layer changes append only what changed; the replaced bytes stay until a compaction
    (writers compact on their own when they exceed half the file and 64 MiB). The whole
    log and every entry are kept; the file id stays.

    Example: thermo compact memory.thermo && thermo verify memory.thermo
    """
    from thermo_cli.store import compact

    result = compact(file)
    if json_out:
        print_json({"file": file, "before": result.before, "after": result.after, "garbage": result.garbage})
    err(
        f"compacted {file}: {format_size(result.before)} -> {format_size(result.after)} "
        f"(garbage estimate was {format_size(result.garbage)})"
    )
