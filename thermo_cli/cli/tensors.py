"""Commands that move checkpoints in and out: ``import-safetensors`` and ``export-safetensors``.

They parse arguments, call :mod:`thermo_cli.operations.safetensors` and print what happened: a
short summary on stderr (a byte progress bar while working, when stderr is a terminal),
or the result as JSON on stdout with ``--json``.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer

from thermo_cli.cli._args import SyncOpt
from thermo_cli.cli._common import err, is_interactive, print_json, stderr_console, usage_error
from thermo_cli.cli._io import UPLOAD_HELP, local_then_upload, output_path, stdin_as_file, stdout_name
from thermo_cli.config.limits import format_size

_METHODS = ("absmean", "twn", "optimal", "reference")
MIN_BAR_BYTES = 32 * 1024 * 1024
"""Below this a progress bar would only flicker."""


class _PhaseBar:
    """The library's ``progress(phase, nbytes)`` callback drawn as a rich byte bar on stderr.

    The bar appears at the "start" phase (when the total is known) if stderr is a
    terminal and the work is big enough; "commit" relabels it while the file is written.
    """

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and is_interactive()
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, phase: str, nbytes: int) -> None:
        if not self.enabled:
            return
        if phase == "start":
            if nbytes >= MIN_BAR_BYTES:
                self._open(nbytes)
        elif self._bar is None:
            return
        elif phase == "commit":
            self._bar.update(self._task, description=self.label.replace("reading", "writing", 1))
        else:
            self._bar.advance(self._task, nbytes)

    def _open(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=stderr_console(),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=total)

    def __enter__(self) -> _PhaseBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _import_summary(r: Any, out: str) -> list[str]:
    kinds = ", ".join(f"{n} {d}" for d, n in sorted(r.dtypes.items()))
    verb = "would import" if r.dry_run else "imported"
    size = format_size(r.tensor_bytes)
    lines = [
        f"{verb} {r.tensors} tensors ({size}; {kinds}) from {len(r.files)} file(s) "
        f"into the {r.layer.label} layer of {out}"
    ]
    if r.skipped:
        lines.append(f"skipped {r.skipped} tensors (--include/--exclude)")
    total = r.ternary_total()
    if r.ternary and total is not None:
        width = max(len(q.key) for q in r.quality)
        lines += [
            f"  {q.key:<{width}}  rel L2 error {q.rel_l2:8.4f}  cosine {q.cosine:.4f}" for q in r.quality
        ]
        lines.append(
            f"ternary: {r.ternary} float tensors packed (all together: relative L2 error "
            f"{total.rel_l2:.4f}, cosine {total.cosine:.4f}); the others stored exactly"
        )
    if not r.dry_run:
        ratio = r.stored_bytes / max(r.input_bytes, 1)
        lines.append(
            f"stored {format_size(r.stored_bytes)} = {ratio:.3f} of the input's "
            f"{format_size(r.input_bytes)} in {r.seconds:.2f} s"
        )
    return lines


commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("import-safetensors")
def import_safetensors_cmd(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT... OUT",
            help="One or more .safetensors files, index JSONs (model.safetensors.index.json), model "
            "directories, globs or URLs (s3://bucket/key, a URL prefix ending in /) or '-' (stdin), "
            "then the .thermo file to create ('-': stdout; always the last argument; left out with --to).",
        ),
    ],
    layer: str = typer.Option("cool", "--layer", "-l", help="Target layer: hot, warm, cool, cold."),
    strength: float = typer.Option(0.9, "--strength", "-s", help="Strength of every entry, in [0, 1]."),
    ternary: bool = typer.Option(
        False,
        "--ternary",
        help="Pack float weight tensors as ternary codes + scales (~16x smaller "
        "than F32; lossy). Integer/bool tensors are stored exactly.",
    ),
    method: str | None = typer.Option(
        None, "--method", help="Ternary method: absmean (default), twn, optimal or reference."
    ),
    per_row: bool | None = typer.Option(
        None, "--per-row/--per-tensor", help="Ternary: one scale per row (default) or per tensor."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Ternary: explicit cut in units of the scale."
    ),
    min_rank: int = typer.Option(
        2,
        "--ternary-min-rank",
        metavar="N",
        help="Ternary: only tensors with at least N dimensions (default 2: "
        "matrices and embeddings; biases and norms stay exact).",
    ),
    nan_as_zero: bool = typer.Option(
        False, "--nan-as-zero", help="Ternary: store NaN/Inf weights as 0 instead of refusing."
    ),
    prefix: str = typer.Option("", "--prefix", help="Prepend this to every tensor name to form its key."),
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include", metavar="GLOB", help="Import only tensors whose name matches (repeatable)."
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="GLOB", help="Skip tensors whose name matches (repeatable)."),
    ] = None,
    name: str | None = typer.Option(None, "--name", help="Thermogram name (default: OUT's file stem)."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace OUT if it exists."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, help="Read, hash and pack N shards at once in local processes."
    ),
    dask: str | None = typer.Option(
        None,
        "--dask",
        metavar="ADDRESS",
        help="Read, hash and pack the shards on the Dask cluster whose scheduler is at ADDRESS.",
        show_default=False,
    ),
    to: str | None = typer.Option(None, "--to", metavar="URL", help=UPLOAD_HELP, show_default=False),
) -> None:
    """Import safetensors checkpoints into a new thermogram, one entry per tensor.

    Keys are the tensor names (with --prefix prepended); dtype and shape are
    kept and the bytes stored exactly (every safetensors dtype, F4/F6/F8 too).
    Several inputs, or a sharded checkpoint's index JSON, go into one
    thermogram; tensor names must be unique across them. The __metadata__ is
    kept for export. The log gets one 'import' event per tensor (key, dtype,
    shape, SHA-256 of its bytes) and a 'checkpoint' event with the state
    digest. Inputs are validated before anything is written; OUT appears only
    when complete. With --jobs N or --dask ADDRESS the shards of a sharded
    checkpoint are read, hashed and packed in parallel; the file written is the
    same byte for byte. URL inputs are downloaded to a temporary directory first.
    """
    from thermo_cli.operations.safetensors import TernaryOptions, import_safetensors

    if to is not None:
        if paths[-1].endswith(".thermo"):
            raise typer.BadParameter(
                f"{paths[-1]}: with --to URL every argument is an INPUT; leave out the OUT file",
                param_hint="--to",
            )
        inputs, given_out = list(paths), None
    elif len(paths) < 2:
        raise typer.BadParameter("give at least one INPUT and the OUT file", param_hint="INPUT... OUT")
    else:
        *inputs, given_out = paths
    if jobs > 1 and dask is not None:
        raise typer.BadParameter("--jobs and --dask are alternatives", param_hint="--dask")
    if inputs.count("-") > 1:
        raise typer.BadParameter("'-' (stdin) can be given once", param_hint="INPUT...")
    if given_out == "-" and as_json:
        raise typer.BadParameter("--json prints to stdout, so OUT cannot be '-' too", param_hint="OUT")
    out_name = stdout_name(inputs[0], "thermo")
    inputs = [stdin_as_file(ctx, p) if p == "-" else p for p in inputs]
    if method is not None and method not in _METHODS:
        raise typer.BadParameter(f"expected one of {', '.join(_METHODS)}", param_hint="--method")
    if not ternary and (per_row is not None or threshold is not None or nan_as_zero or method is not None):
        raise typer.BadParameter(
            "--method, --per-row/--per-tensor, --threshold and --nan-as-zero need --ternary",
            param_hint="--ternary",
        )
    defaults = TernaryOptions()
    options = (
        TernaryOptions(
            method=method or defaults.method,
            per_row=defaults.per_row if per_row is None else per_row,
            threshold=threshold,
            nan_as_zero=nan_as_zero,
            min_rank=min_rank,
        )
        if ternary
        else None
    )
    with (
        (
            contextlib.nullcontext(to.rsplit("/", 1)[-1])
            if dry_run and to is not None
            else local_then_upload(given_out, to, force=force)
        ) as local,
        output_path(local, out_name) as out,
        _PhaseBar(f"reading → {to or given_out}", not as_json) as progress,
    ):
        report = import_safetensors(
            inputs,
            out,
            layer=layer,
            strength=strength,
            ternary=options,
            prefix=prefix,
            include=include or (),
            exclude=exclude or (),
            name=name,
            overwrite=force,
            dry_run=dry_run,
            progress=progress,
            jobs=jobs,
            dask=dask,
        )
    for warning in report.warnings:
        err(f"thermo: warning: {warning}")
    shown_out = to or ("-" if given_out == "-" else str(report.out))
    if as_json:
        print_json({**report.to_json(), "out": shown_out})
    else:
        for line in _import_summary(report, shown_out):
            err(line)


@commands.command("export-safetensors")
def export_safetensors_cmd(
    file: str = typer.Argument(
        ...,
        help="A thermogram (.thermo container or a Rust-crate JSON file); '-' reads stdin.",
        callback=stdin_as_file,
    ),
    out: str = typer.Argument(..., help="The .safetensors file to write; '-' for stdout."),
    layers: Annotated[
        list[str] | None,
        typer.Option("--layer", "-l", help="Export only this layer (repeatable; default: all four)."),
    ] = None,
    dequantize: bool = typer.Option(
        True,
        "--dequantize/--keep-ternary",
        help="Ternary entries: write floats in their original dtype "
        "(default), or keep packed U8 codes + F32 scales.",
    ),
    prefix: str = typer.Option(
        "", "--prefix", help="Export only keys starting with this, removed from the names."
    ),
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include", metavar="GLOB", help="Export only tensors whose name matches (repeatable)."
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="GLOB", help="Skip tensors whose name matches (repeatable)."),
    ] = None,
    force: bool = typer.Option(False, "--force", "-f", help="Replace OUT if it exists."),
    sync: SyncOpt = False,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Write the tensor entries of a thermogram as a safetensors file.

    Raw entries come out bit-identical to what was imported, with the
    original __metadata__; entries without a tensor are skipped. Uncommitted
    deltas are not in the layers: run `thermo consolidate` first to include
    them. OUT appears only when complete and checked by the safetensors library;
    --sync also fsyncs it (use it before deleting FILE).
    """
    from thermo_cli.operations.safetensors import export_safetensors

    if out == "-" and as_json:
        raise usage_error("--json prints to stdout, so OUT cannot be '-' too")
    with _PhaseBar(f"writing {out}", not as_json) as progress, output_path(out) as target:
        report = export_safetensors(
            file,
            target,
            layers=layers or None,
            keep_ternary=not dequantize,
            prefix=prefix,
            include=include or (),
            exclude=exclude or (),
            overwrite=force,
            progress=progress,
            durable=sync,
        )
    if as_json:
        print_json(report.to_json())
        return
    extra = []
    if report.ternary_dequantized:
        extra.append(f"{report.ternary_dequantized} ternary dequantized")
    if report.ternary_kept:
        extra.append(f"{report.ternary_kept} ternary kept packed")
    if report.skipped_non_tensor:
        extra.append(f"{report.skipped_non_tensor} non-tensor entries skipped")
    tail = f" ({'; '.join(extra)})" if extra else ""
    size = format_size(report.file_bytes)
    err(f"exported {report.tensors} tensors ({size}) from {file} to {out}{tail}")
    if report.pending_deltas:
        err(
            f"note: {report.pending_deltas} uncommitted deltas are not in the layers and were not "
            "exported (run `thermo consolidate` first to include them)"
        )
