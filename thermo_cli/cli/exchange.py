"""Moving a thermogram out and back in: ``thermo export``, ``thermo import-jsonl``, ``thermo upload``.

The formats are :mod:`thermo_cli.formats.dump`'s; reading JSONL input back is
:func:`thermo_cli.operations.apply.build_from_jsonl`. This module parses, streams to or
from files (``-`` is stdout/stdin) with a progress bar on a terminal, and reports.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from thermo_cli.cli._args import (
    DEFAULT_MAX_LINE,
    InputFileArg,
    JsonOpt,
    MaxLineOpt,
    Plasticity,
    PlasticityOpt,
    Policy,
    PolicyOpt,
    Preset,
    PresetOpt,
    SourceOpt,
    SyncOpt,
    new_thermogram,
    short_hash,
)
from thermo_cli.cli._common import (
    EXIT_USAGE,
    err,
    is_interactive,
    open_input,
    open_output,
    print_json,
    progress,
    stream_limits,
    usage_error,
)
from thermo_cli.cli._io import (
    PROGRESS_MIN_BYTES,
    UPLOAD_HELP,
    CountingReader,
    input_size,
    lines_of,
    local_then_upload,
    output_path,
)
from thermo_cli.container.fileops import refuse_overwriting_source

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


class ExportFormat(StrEnum):
    engram = "engram"
    jsonl = "jsonl"


@commands.command("export")
def export(
    file: InputFileArg,
    out: Annotated[str, typer.Argument(help="Output file; '-' for stdout.", show_default=False)],
    fmt: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            "-f",
            show_default=False,
            help="engram (the crate's JSON, all layers + history) or jsonl (lossless dump) "
            "[default: by OUT's extension, engram unless .jsonl].",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
    sync: SyncOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Export all four layers and the full history as Engram JSON or a JSONL dump.

    OUT appears atomically; --sync also fsyncs it (use it before deleting FILE).

    Example: thermo export memory.thermo memory.json; thermo export memory.thermo dump.jsonl
    """
    if fmt is None:
        fmt = ExportFormat.jsonl if out.endswith((".jsonl", ".ndjson")) else ExportFormat.engram
    if out == "-" and json_out:
        err("thermo: error: --json prints to stdout, so OUT cannot be '-' too")
        raise typer.Exit(EXIT_USAGE)
    counts = _export(file, out, fmt, force=force, sync=sync)
    if json_out:
        print_json({"file": file, "out": out, "format": fmt.value, **counts})
    err(
        f"exported {file} to {out} ({fmt.value}): {counts['entries']} entries, "
        f"{counts['deltas']} deltas, {counts['events']} events"
    )


def _export(file: str, out: str, fmt: ExportFormat, *, force: bool, sync: bool) -> dict[str, int]:
    from thermo_cli import store
    from thermo_cli.formats import dump

    if out != "-":
        refuse_overwriting_source(file, out)  # before loading: the export would replace its source
    tg = store.load(file, layers="lazy", log="tail")
    total = sum(len(tg.layers[layer]) for layer in tg.layers) + tg.log_length
    with (
        open_output(out, overwrite=force, durable=sync) as fh,
        progress("exporting", total, min_total=50_000) as bar,
    ):
        records = store.iter_log(file)
        if fmt is ExportFormat.engram:
            return dump.export_engram(tg, records, fh, on_item=bar.advance)
        return dump.export_jsonl(
            tg, records, fh, log_length=tg.log_length, head_hash=tg.head_hash, on_item=bar.advance
        )


@commands.command("import-jsonl")
def import_jsonl(
    src: Annotated[
        str,
        typer.Argument(
            help="A `thermo export --format jsonl` dump or a delta stream; '-' reads stdin.",
            show_default=False,
        ),
    ],
    out: Annotated[
        str | None,
        typer.Argument(help="New thermogram file; '-' for stdout; left out with --to.", show_default=False),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", show_default=False, help="Name for a delta stream's thermogram."),
    ] = None,
    preset: PresetOpt = Preset.default,
    plasticity: PlasticityOpt = Plasticity.stdp,
    policy: PolicyOpt = Policy.default,
    source: SourceOpt = "thermo",
    max_line_bytes: MaxLineOpt = DEFAULT_MAX_LINE,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
    json_out: JsonOpt = False,
    to: Annotated[
        str | None, typer.Option("--to", metavar="URL", help=UPLOAD_HELP, show_default=False)
    ] = None,
) -> None:
    """Build a new thermogram from a JSONL export (exactly) or a plain delta stream.

    A `thermo export --format jsonl` dump gives back the same layers, log and head
    hash; a delta stream is applied to a fresh thermogram, like init + apply.

    --name/--preset/--plasticity/--policy apply to delta streams; a dump carries its own.

    Example: thermo export a.thermo dump.jsonl && thermo import-jsonl dump.jsonl b.thermo
    """
    from thermo_cli import store
    from thermo_cli.errors import RefusedError
    from thermo_cli.operations.apply import build_from_jsonl
    from thermo_cli.operations.upload import check_upload_target

    if name is not None and not name.strip():
        raise usage_error("--name must not be empty (leave it out to use OUT's stem)")
    if (out is None) == (to is None):
        raise usage_error("give the OUT file or --to URL (one of them)")
    if out == "-" and json_out:
        raise usage_error("--json prints to stdout, so OUT cannot be '-' too")
    if src != "-" and out is not None and out != "-":
        refuse_overwriting_source(src, out)
    if not force and out is not None and out != "-" and Path(out).exists():
        raise RefusedError(f"{out}: already exists (pass --force to overwrite)")
    if to is not None:
        check_upload_target(to, overwrite=force)  # before reading the input
    label = to or out or "-"
    if src == "-" and sys.stdin.isatty():
        err("thermo: error: reading from a terminal: pipe a JSONL file or name one")
        raise typer.Exit(EXIT_USAGE)
    stem = "thermogram" if label == "-" else Path(label).stem
    fresh = new_thermogram(name or stem or "thermogram", preset, plasticity, policy)
    limits = stream_limits(max_line_bytes)
    with (
        open_input(src) as raw,
        progress("importing", input_size(src), min_total=PROGRESS_MIN_BYTES, unit="bytes") as bar,
        lines_of(src),
    ):
        stream = CountingReader(raw, bar) if is_interactive() else raw
        result = build_from_jsonl(stream, fresh, source=source, limits=limits)
    tg = result.thermogram
    with local_then_upload(out, to, force=force) as local, output_path(local) as target:
        store.create(target, tg, overwrite=force)
    entries = sum(len(tg.layers[layer]) for layer in tg.layers)
    if json_out:
        print_json(
            {
                "file": label,
                "source": src,
                "kind": result.kind,
                "deltas": result.deltas,
                "log_length": tg.log_length,
                "entries": entries,
                "head_hash": tg.head_hash,
            }
        )
    err(
        f"imported {src} ({result.kind}) into {label}: {result.deltas} deltas, {tg.log_length} log records, "
        f"{entries} entries; head {short_hash(tg.head_hash)}"
    )


@commands.command("upload")
def upload(
    file: Annotated[str, typer.Argument(help="A local .thermo file.", show_default=False)],
    url: Annotated[
        str,
        typer.Argument(
            help="Where to put it: an s3://, gs://, memory:// or file:// URL.", show_default=False
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace the object at URL if it exists.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Verify a finished thermogram, then upload it whole to URL.

    The file is verified first (a failing file is not uploaded, exit 3), put under a
    temporary key beside URL, checked for size and moved onto URL; on failure the
    temporary object is removed, so URL holds the old object or the complete new one.
    An existing object is refused without --force (exit 4); a missing bucket is exit 6.

    Example: thermo upload model.thermo s3://models/run-7/model.thermo
    """
    from thermo_cli.operations.upload import upload_thermogram

    report = upload_thermogram(file, url, overwrite=force)
    if json_out:
        print_json(report.to_json())
    err(f"uploaded {file} ({report.bytes:,} bytes, verified) to {url}")
