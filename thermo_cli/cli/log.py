"""``thermo log``: the history, oldest first, as text lines, a JSON array or JSON Lines.

A record becomes JSON in one place, :func:`thermo_cli.formats.dump.record_doc` (the
same shape as a JSONL dump's record lines, plus ``consolidated`` and ``size``); the text
lines are this module's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from thermo_cli.cli._args import InputFileArg, short_hash, strength_text

if TYPE_CHECKING:
    from thermo_cli.model import LogRecord

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("log")
def log(
    file: InputFileArg,
    key: Annotated[
        str | None, typer.Argument(help="Only records about this key.", show_default=False)
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON array of records.")] = False,
    json_lines: Annotated[
        bool,
        typer.Option("--jsonl", "--json-lines", help="Print one JSON object per record per line (streams)."),
    ] = False,
    values: Annotated[
        bool, typer.Option("--values", help="Include delta values in --json/--jsonl output.")
    ] = False,
    events: Annotated[
        bool,
        typer.Option("--events/--no-events", help="Include consolidation points and layer operations."),
    ] = True,
    last: Annotated[
        int | None,
        typer.Option("--last", "-n", min=0, help="Only the newest N records.", show_default=False),
    ] = None,
) -> None:
    """The history, oldest first, including deltas already consolidated.

    Example: thermo log memory.thermo greeting --json
    """
    from thermo_cli.operations.history import dirty_start, select_records

    if json_out and json_lines:
        from thermo_cli.cli._common import usage_error

        raise usage_error("--json and --jsonl are alternatives")
    start = dirty_start(file)
    selected = select_records(file, key=key, events=events, last=last)
    if json_out:
        _write_json(selected, start, values)
    elif json_lines:
        _write_json_lines(selected, start, values)
    else:
        out = sys.stdout
        for index, rec in selected:
            out.write(_record_line(index, rec, start) + "\n")
        out.flush()


def _write_json(selected: Iterator[tuple[int, Any]], start: int, values: bool) -> None:
    """A JSON array written record by record, so a long log streams."""
    from thermo_cli.cli._common import json_bytes
    from thermo_cli.formats.dump import record_doc

    out = sys.stdout
    first = True
    out.write("[")
    for index, rec in selected:
        doc = record_doc(index, rec, dirty_start=start, values=values)
        out.write(("\n" if first else ",\n") + json_bytes(doc).decode("utf-8"))
        first = False
    out.write("]\n" if first else "\n]\n")
    out.flush()


def _write_json_lines(selected: Iterator[tuple[int, Any]], start: int, values: bool) -> None:
    """One JSON object per line, flushed as it goes, for ``| jq -c`` and ``| head``."""
    from thermo_cli.cli._common import json_bytes
    from thermo_cli.formats.dump import record_doc

    out = sys.stdout
    for index, rec in selected:
        out.write(json_bytes(record_doc(index, rec, dirty_start=start, values=values)).decode("utf-8") + "\n")
    out.flush()


def _record_line(index: int, rec: LogRecord, dirty_start: int) -> str:
    from thermo_cli.codec.timestamps import format_z as ns_to_text
    from thermo_cli.model import Delta

    when = ns_to_text(rec.timestamp_ns)
    if not isinstance(rec, Delta):
        details = " ".join(f"{k}={_field_text(v)}" for k, v in sorted(rec.fields.items()))
        return f"{index:>8}  {when}  [{rec.kind}] {details}  {short_hash(rec.hash)}"
    tern = "" if rec.ternary is None else f" ternary={int(rec.ternary):+d}"
    state = "consolidated" if index < dirty_start else "dirty"
    return (
        f"{index:>8}  {when}  {rec.delta_type.label:<6} {rec.key!r} s={strength_text(rec.strength)}"
        f"{tern} src={rec.source} {len(rec.value)}B {state}  {short_hash(rec.hash)}"
    )


def _field_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex()[:12]
    if isinstance(v, float):
        return strength_text(v)
    if isinstance(v, list) and len(v) > 6:
        return f"[{len(v)} items]"
    return str(v)
