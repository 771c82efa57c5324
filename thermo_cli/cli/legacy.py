"""Commands for the Rust crate's files: ``thermo migrate`` and ``thermo import-engram``.

Both only parse arguments, call :mod:`thermo_cli.operations.migrate` and print what was
written: a one-line summary on stderr, or the result as JSON on stdout with ``--json``.
Every other command already reads legacy files directly (the store sniffs them).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from thermo_cli.cli._common import err, print_json, usage_error
from thermo_cli.cli._io import UPLOAD_HELP, local_then_upload, output_path, stdin_as_file

if TYPE_CHECKING:  # the library is imported when a command runs, not at start-up
    from thermo_cli.operations.migrate import MigrationResult


def _summary(result: MigrationResult, verb: str) -> str:
    entries = ", ".join(f"{n} {layer}" for layer, n in result.entries.items() if n) or "no entries"
    chain = (
        f"{result.legacy_deltas} legacy deltas kept with their crate hashes"
        if verb == "migrated"
        else ("no chain in the export")
    )
    return (
        f"{verb} {result.source} ({result.source_format}, crate {result.crate_version}) → "
        f"{result.target}: {entries}; {chain}"
    )


def _refuse_existing(path: str, source: str, force: bool) -> None:
    """Refuse an existing output naming the CLI flag (the library refuses writing over the
    source itself, even with --force)."""
    if force or not os.path.lexists(path):
        return
    if os.path.exists(source) and os.path.exists(path) and os.path.samefile(path, source):
        return
    from thermo_cli.errors import RefusedError

    raise RefusedError(f"{path}: already exists (pass --force to replace it)")


commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("migrate")
def migrate(
    old: str = typer.Argument(
        ...,
        help="A Rust-crate save file (0.4.x or 0.5.x JSON); only read; '-' reads stdin.",
        callback=stdin_as_file,
    ),
    new: str | None = typer.Argument(
        None, help="The .thermo container to write; '-' for stdout; left out with --to.", show_default=False
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Replace NEW if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    to: str | None = typer.Option(None, "--to", metavar="URL", help=UPLOAD_HELP, show_default=False),
) -> None:
    """Convert a Rust-crate save file into a .thermo container, losslessly.

    The crate's deltas stay at the start of the new log with their crate hashes
    (thermo verify checks them), followed by a 'migrate' event recording the
    original file's SHA-256. A file whose chain fails verification is refused.
    OLD is never modified.
    """
    from thermo_cli.operations.migrate import migrate_file

    if (new is None) == (to is None):
        raise usage_error("give the NEW file or --to URL (one of them)")
    if new == "-" and as_json:
        raise usage_error("--json prints to stdout, so NEW cannot be '-' too")
    if new is not None:
        _refuse_existing(new, old, force)
    with local_then_upload(new, to, force=force) as local, output_path(local) as target:
        result = migrate_file(old, target, overwrite=force)
    if to is not None:
        result.target = to
    if as_json:
        print_json(result.to_json())
    else:
        err(_summary(result, "migrated"))


@commands.command("import-engram")
def import_engram(
    export: str = typer.Argument(
        ...,
        help="An Engram export (export_*.json) written by the crate; '-' reads stdin.",
        callback=stdin_as_file,
    ),
    out: str | None = typer.Argument(
        None, help="The .thermo container to write; '-' for stdout; left out with --to.", show_default=False
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Replace OUT if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    to: str | None = typer.Option(None, "--to", metavar="URL", help=UPLOAD_HELP, show_default=False),
) -> None:
    """Create a .thermo container from the crate's Engram JSON export.

    The export has no layers, timestamps or configuration: entries go to the hot
    layer (a key listed twice: the second copy to cold), with the default
    configuration; the export's own metadata is kept in an 'import' event.
    """
    from thermo_cli.operations.migrate import import_engram_file

    if (out is None) == (to is None):
        raise usage_error("give the OUT file or --to URL (one of them)")
    if out == "-" and as_json:
        raise usage_error("--json prints to stdout, so OUT cannot be '-' too")
    if out is not None:
        _refuse_existing(out, export, force)
    with local_then_upload(out, to, force=force) as local, output_path(local) as target:
        result = import_engram_file(export, target, overwrite=force)
    if to is not None:
        result.target = to
    if as_json:
        print_json(result.to_json())
    else:
        err(_summary(result, "imported"))
