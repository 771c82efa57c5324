"""``thermo stats``: entries per layer, sizes and compression, counts and times.

The figures come from :func:`thermo_cli.operations.info.file_stats`; this module only
prints them, as JSON or as two tables.
"""

from __future__ import annotations

from typing import Any

import typer

from thermo_cli.cli._args import InputFileArg, JsonOpt
from thermo_cli.cli._common import print_json, shown, stdout_console, stdout_is_terminal
from thermo_cli.config.limits import format_size

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("stats")
def stats(file: InputFileArg, json_out: JsonOpt = False) -> None:
    """Entries per layer, deltas, consolidations, sizes and compression.

    On a terminal, two tables; piped, plain `name: value` lines (`| grep 'head hash'`).

    Example: thermo stats memory.thermo
    """
    from thermo_cli.operations.info import file_stats

    doc = file_stats(file)
    doc["file"] = shown(doc["file"])
    if json_out:
        print_json(doc)
        return
    if not stdout_is_terminal():
        _print_plain(doc)
        return
    console = stdout_console()
    console.print(_layer_table(doc))
    console.print(_info_table(doc))


def _layer_table(doc: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"{doc['name']} ({doc['file']}, {doc['format']})", show_header=True)
    table.add_column("layer", justify="left")
    for col in ("entries", "values", "stored", "ratio"):
        table.add_column(col, justify="right")

    def row(label: str, n: int, raw: int, stored: int | None, **kw: Any) -> None:
        ratio = f"{raw / stored:.2f}x" if stored else "-"
        table.add_row(
            label, str(n), format_size(raw), "-" if stored is None else format_size(stored), ratio, **kw
        )

    for layer, n in doc["entries"].items():
        sizes = doc["layer_bytes"][layer]
        row(layer, n, sizes["raw"], sizes["stored"])
    row("total", doc["total_entries"], doc["value_bytes"], doc["stored_layer_bytes"], style="bold")
    return table


def _print_plain(doc: dict[str, Any]) -> None:
    """One ``name: value`` line per figure, unpadded and never wrapped (for grep, cut, awk)."""
    import sys

    lines = [f"name: {doc['name']}", f"file: {doc['file']}", f"format: {doc['format']}"]
    for layer, n in doc["entries"].items():
        sizes = doc["layer_bytes"][layer]
        lines.append(f"{layer}: {_layer_text(n, sizes['raw'], sizes['stored'])}")
    lines.append(f"total: {_layer_text(doc['total_entries'], doc['value_bytes'], doc['stored_layer_bytes'])}")
    lines += [f"{k}: {v}" for k, v in _info_rows(doc)]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _layer_text(n: int, raw: int, stored: int | None) -> str:
    ratio = f"{raw / stored:.2f}x" if stored else "-"
    kept = "-" if stored is None else format_size(stored)
    return f"{n} entries, values {format_size(raw)}, stored {kept}, ratio {ratio}"


def _info_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("keys visible", str(doc["keys"])),
        ("dirty deltas", f"{doc['dirty_deltas']} ({format_size(doc['dirty_bytes'])} est.)"),
        ("log records", str(doc["log_records"])),
        ("total deltas", str(doc["total_deltas"])),
        ("consolidations", str(doc["consolidations"])),
        ("plasticity", doc["plasticity"]),
        ("auto-consolidate", doc["policy"]),
        ("created", doc["created_at"]),
        ("last consolidation", doc["last_consolidation"]),
        ("head hash", doc["head_hash"] or "none"),
        ("file size", format_size(doc["file_bytes"])),
    ]


def _info_table(doc: dict[str, Any]) -> Any:
    from rich.table import Table

    rows = _info_rows(doc)
    info = Table(show_header=False, box=None)
    info.add_column(style="dim")
    info.add_column(overflow="fold")
    for k, v in rows:
        info.add_row(k, v)
    return info
