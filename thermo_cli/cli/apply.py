"""Commands that move a thermogram forward: ``apply`` a delta stream, ``consolidate``, ``tick``.

Each parses, calls one library function or engine operation inside a writer session
(:func:`thermo_cli.store.edit`: lock → load → change → commit) and prints:
data on stdout with ``--json``, a one-line summary on stderr.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from thermo_cli.cli._args import (
    DEFAULT_MAX_LINE,
    FileArg,
    JsonOpt,
    MaxLineOpt,
    SourceOpt,
    UpgradeOpt,
)
from thermo_cli.cli._common import (
    err,
    print_json,
    progress,
)

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""

_PROMOTIONS = ("hot_warm", "warm_cool", "cool_cold")
_DEMOTIONS = ("cold_cool", "cool_warm", "warm_hot")


@commands.command("apply")
def apply(
    file: FileArg,
    deltas: Annotated[str, typer.Argument(help="JSONL delta stream; '-' reads stdin.")] = "-",
    source: SourceOpt = "thermo",
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Skip bad lines (reported on stderr) instead of aborting."),
    ] = False,
    auto_consolidate: Annotated[
        bool,
        typer.Option(
            "--auto-consolidate/--no-auto-consolidate",
            help="Consolidate when the file's policy says so (checked after every delta).",
        ),
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and apply in memory only.")] = False,
    max_line_bytes: MaxLineOpt = DEFAULT_MAX_LINE,
    max_key_bytes: Annotated[
        int, typer.Option("--max-key-bytes", min=1, max=4096, help="Longest accepted key (UTF-8 bytes).")
    ] = 4096,
    upgrade: UpgradeOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply a JSONL stream of deltas, linked to the chain head, all-or-nothing.

    One JSON object per line: {"op": "update", "key": "k", "value": "text", "strength": 0.8}.
    The whole input is read and checked before the file is locked, so a slow producer
    never blocks other commands. A bad line N aborts with 'DELTAS: line N: <reason>' and leaves
    the file untouched.

    Example: cat deltas.jsonl | thermo apply memory.thermo -
    """
    from thermo_cli.cli._write import run_apply

    code = run_apply(
        file,
        deltas,
        source=source,
        skip_invalid=skip_invalid,
        auto_consolidate=auto_consolidate,
        dry_run=dry_run,
        max_line_bytes=max_line_bytes,
        max_key_bytes=max_key_bytes,
        upgrade=upgrade,
        json_out=json_out,
        progress=progress,
    )
    if code:
        raise typer.Exit(code)


@commands.command("consolidate")
def consolidate(file: FileArg, upgrade: UpgradeOpt = False, json_out: JsonOpt = False) -> None:
    """Fold the uncommitted deltas into the hot layer, prune, crystallize; log the point.

    Example: thermo consolidate memory.thermo --json
    """
    from thermo_cli.store import edit

    with edit(file, upgrade=upgrade) as tg:
        report = tg.consolidate()
    if json_out:
        print_json({"file": file, **_consolidation_doc(report)})
    err(
        f"consolidated {file}: processed {report.processed}, pruned {report.pruned}, "
        f"promoted {report.promoted} to cold; {report.entries_after} entries"
    )


def _consolidation_doc(report: Any) -> dict[str, Any]:
    names = ("processed", "created", "updated", "merged", "deleted", "pruned", "promoted")
    doc: dict[str, Any] = {name: getattr(report, name) for name in names}
    doc.update(
        crystallized=report.crystallized,
        crystal_merged=report.crystal_merged,
        entries=report.entries_after,
        log_size=report.log_size,
        state_digest=report.state_digest.hex(),
        log_root=report.log_root.hex(),
    )
    return doc


@commands.command("tick")
def tick(
    file: FileArg,
    decay: Annotated[bool, typer.Option("--decay/--no-decay", help="Decay strengths first.")] = True,
    repeat: Annotated[int, typer.Option("--repeat", "-r", min=1, help="Run this many ticks.")] = 1,
    upgrade: UpgradeOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Advance time: decay every layer, then promote, demote and prune (the Rust crate's order).

    Example: thermo tick memory.thermo --repeat 10
    """
    from thermo_cli.store import edit

    decayed = pruned = 0
    promoted = [0, 0, 0]
    demoted = [0, 0, 0]
    with edit(file, upgrade=upgrade) as tg:
        for _ in range(repeat):
            if decay:
                decayed += tg.apply_decay()
            report = tg.run_thermal_transitions()
            promoted = [a + b for a, b in zip(promoted, report.promoted, strict=True)]
            demoted = [a + b for a, b in zip(demoted, report.demoted, strict=True)]
            pruned += report.pruned
        entries = {layer.label: len(tg.layers[layer]) for layer in tg.layers}
    if json_out:
        print_json(
            {
                "file": file,
                "ticks": repeat,
                "decayed": decayed,
                "promoted": dict(zip(_PROMOTIONS, promoted, strict=True)),
                "demoted": dict(zip(_DEMOTIONS, demoted, strict=True)),
                "pruned": pruned,
                "entries": entries,
            }
        )
    layers = ", ".join(f"{k} {v}" for k, v in entries.items())
    err(
        f"ticked {file}{f' x{repeat}' if repeat > 1 else ''}: decayed {decayed}, promoted "
        f"{sum(promoted)}, demoted {sum(demoted)}, pruned {pruned}; {layers}"
    )
