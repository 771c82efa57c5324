"""``thermo ternary pack|unpack`` and ``thermo quantize``: ternary (-1/0/+1) tensors.

Thin: arguments are parsed here, the work is done by :mod:`thermo_cli.operations.ternary_files`,
and what happened is printed — sizes before/after and the reconstruction error of every
packed tensor and of all of them together on stderr, or the whole report as JSON on
stdout with ``--json``. A tensor whose relative error exceeds 1 also gets a
``thermo: warning:`` line on stderr (and is listed under ``warnings`` in the JSON).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from thermo_cli.cli._args import SyncOpt, finite
from thermo_cli.cli._common import err, print_json
from thermo_cli.config.limits import format_size


class Method(StrEnum):
    absmean = "absmean"
    twn = "twn"
    optimal = "optimal"
    reference = "reference"


METHOD_HELP = (
    "absmean (default): BitNet b1.58, scale = mean |w|, round(clip(w/scale)); "
    "twn: keep |w| > 0.7 mean |w|, scale = mean of the kept; "
    "optimal: the exact L2-optimal threshold (sorts each row; slower); "
    "reference: the Rust crate's rule (scale = max |w|), ruinous on trained weights"
)
THRESHOLD_HELP = (
    "cut-off on |w|/scale (> 0) for absmean (default 0.5, rounding) and reference (default adaptive); "
    "the factor for twn (default 0.7); not for optimal"
)
PER_ROW_HELP = "One scale per row (first dimension) of 2+-D tensors (default), or one per tensor."
MIN_RANK_HELP = "Pack only tensors with at least N dimensions (default 2: biases and norms stay exact)."

MethodOpt = Annotated[Method, typer.Option("--method", "-m", help=METHOD_HELP, case_sensitive=False)]
ThresholdOpt = Annotated[
    float | None, typer.Option("--threshold", "-t", callback=finite, help=THRESHOLD_HELP)
]
PerRowOpt = Annotated[bool, typer.Option("--per-row/--per-tensor", help=PER_ROW_HELP)]
MinRankOpt = Annotated[int, typer.Option("--min-rank", metavar="N", min=0, help=MIN_RANK_HELP)]
NanOpt = Annotated[
    bool, typer.Option("--nan-as-zero", help="Store NaN/Inf weights as 0 instead of refusing.")
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Replace OUT if it exists.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]


def _in_arg(what: str) -> Any:
    return typer.Argument(metavar="IN", help=f"{what} ('-': stdin, by content).")


def _out_arg(what: str) -> Any:
    return typer.Argument(metavar="OUT", help=f"{what} ('-': stdout).")


def _format_opt(default: str) -> Any:
    return typer.Option(
        "--format", help=f"OUT's format when OUT is '-' (default {default}).", show_default=False
    )


class PackFormat(StrEnum):
    thermo = "thermo"
    safetensors = "safetensors"


class UnpackFormat(StrEnum):
    npy = "npy"
    safetensors = "safetensors"


def _stdout_file(out: str, fmt: StrEnum | None, default: StrEnum, as_json: bool, src: str) -> str:
    """The temporary file name for OUT ``-`` (:func:`~thermo_cli.cli._io.stdout_name`), after
    checking that ``--format`` and ``--json`` fit OUT."""
    from thermo_cli.cli._common import usage_error

    if out != "-":
        if fmt is not None:
            raise usage_error("--format is for OUT '-'; a named OUT's extension gives its format")
        return "stdout"
    if as_json:
        raise usage_error("--json prints to stdout, so OUT cannot be '-' too")
    from thermo_cli.cli._io import stdout_name

    return stdout_name(src, (fmt or default).value)


def _shown(report: Any, src: str, out: str) -> None:
    """Name ``-`` as the user gave it in the report, not by its temporary file."""
    from pathlib import Path

    if src == "-":
        report.src = Path("-")
    if out == "-":
        report.out = Path("-")


def _ratio(before: int, after: int) -> str:
    if after <= 0:
        return ""
    r = before / after
    return f" ({r:.1f}x smaller)" if r >= 1 else f" ({1 / r:.2f}x larger)"


def _quality_lines(report: Any, recorded: bool = False) -> list[str]:
    """One line per packed tensor with figures, then the figures of all of them together."""
    total = report.total_quality()
    q = total if total is not None else report.mean_quality()
    if q is None:
        if not recorded:
            return ["no tensor was packed"]
        return ["reconstruction error: unknown (no figures were recorded when these tensors were packed)"]
    rated = [t for t in report.tensors if t.packed and t.rel_l2 is not None]
    width = max(len(t.name) for t in rated)
    lines = [f"  {t.name:<{width}}  rel L2 error {t.rel_l2:8.4f}  cosine {t.cosine:.4f}" for t in rated]
    methods = sorted(
        {f"{t.method}{', per-row' if t.per_row else ''}" for t in report.tensors if t.packed and t.method}
    )
    when = " (recorded at pack time)" if recorded else ""
    what = "all packed tensors together" if total is not None else "mean over packed tensors"
    lines.append(
        f"reconstruction{when}, {what}: rel L2 error {q[0]:.4f}, cosine {q[1]:.4f} [{'; '.join(methods)}]"
    )
    return lines


def _warn(report: Any) -> None:
    for line in report.warnings:
        err(f"thermo: warning: {line}")


def _summary(report: Any, verb: str, recorded: bool = False) -> None:
    packed = sum(t.packed for t in report.tensors)
    copied = len(report.tensors) - packed
    tail = f", {copied} copied unchanged" if copied else ""
    err(
        f"{verb} {len(report.tensors)} tensor{'s' if len(report.tensors) != 1 else ''} "
        f"({packed} ternary{tail}): {report.src} -> {report.out}"
    )
    err(
        f"size: {format_size(report.file_before)} -> {format_size(report.file_after)}"
        f"{_ratio(report.file_before, report.file_after)}; tensor data "
        f"{format_size(report.tensor_before)} -> {format_size(report.tensor_after)}"
    )
    for line in _quality_lines(report, recorded):
        err(line)
    _warn(report)


commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""

ternary = typer.Typer(
    name="ternary",
    help="Pack float tensors as 2-bit ternary weights (-1/0/+1 plus scales), and back.",
    no_args_is_help=True,
)


@ternary.command("pack")
def pack(
    ctx: typer.Context,
    src: Annotated[str, _in_arg("A .npy or .safetensors file of float tensors")],
    out: Annotated[str, _out_arg("A .thermo or .safetensors file to write")],
    fmt: Annotated[PackFormat | None, _format_opt("thermo")] = None,
    method: MethodOpt = Method.absmean,
    threshold: ThresholdOpt = None,
    per_row: PerRowOpt = True,
    min_rank: MinRankOpt = 2,
    nan_as_zero: NanOpt = False,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Key of a .npy input's tensor (default: the file name without .npy; 'stdin' for '-').",
        ),
    ] = None,
    layer: Annotated[str, typer.Option("--layer", help="Layer of the entries in a .thermo output.")] = "cool",
    strength: Annotated[
        float, typer.Option("--strength", help="Strength of the entries in a .thermo output, 0..1.")
    ] = 0.9,
    force: ForceOpt = False,
    sync: SyncOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Quantize the float tensors of IN to ternary and write OUT (.thermo or .safetensors).

    Tensors below --min-rank, non-float and empty ones are copied bit for bit. This is
    lossy archival of a trained model, not a runnable model. A .thermo OUT is always
    fsynced; a .safetensors OUT with --sync. Example:
    thermo ternary pack model.safetensors model.ternary.safetensors --method optimal
    """
    from thermo_cli.cli._io import output_path, stdin_as_file
    from thermo_cli.operations.ternary_files import PackOptions, pack_file

    opts = PackOptions(
        method=method.value, threshold=threshold, per_row=per_row, nan_as_zero=nan_as_zero, min_rank=min_rank
    )
    filename = _stdout_file(out, fmt, PackFormat.thermo, as_json, src)
    local_src = stdin_as_file(ctx, src)
    with output_path(out, filename) as target:
        report = pack_file(
            local_src,
            target,
            options=opts,
            name=name,
            layer=layer,
            strength=strength,
            overwrite=force,
            durable=sync,
        )
    _shown(report, src, out)
    if as_json:
        _warn(report)
        print_json(report.to_json())
    else:
        _summary(report, "packed")


@ternary.command("unpack")
def unpack(
    ctx: typer.Context,
    src: Annotated[str, _in_arg("A packed .safetensors or a .thermo file")],
    out: Annotated[str, _out_arg("A .npy (one tensor) or .safetensors file")],
    fmt: Annotated[UnpackFormat | None, _format_opt("npy")] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Only this tensor (needed for .npy when IN holds several)."),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option("--layer", help="Layers of a .thermo input to read (repeatable; default all)."),
    ] = None,
    force: ForceOpt = False,
    sync: SyncOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Dequantize ternary tensors of IN (scale * code, in their original dtype) into OUT.

    OUT appears atomically; --sync also fsyncs it (use it before deleting IN).

    Example: thermo ternary unpack model.ternary.safetensors restored.safetensors
    """
    from thermo_cli.cli._io import output_path, stdin_as_file
    from thermo_cli.operations.ternary_files import unpack_file

    filename = _stdout_file(out, fmt, UnpackFormat.npy, as_json, src)
    local_src = stdin_as_file(ctx, src)
    with output_path(out, filename) as target:
        report = unpack_file(local_src, target, key=key, layers=layer, overwrite=force, durable=sync)
    _shown(report, src, out)
    if as_json:
        _warn(report)
        print_json(report.to_json())
    else:
        _summary(report, "unpacked", recorded=True)


commands.add_typer(ternary, name="ternary")


@commands.command("quantize")
def quantize(
    file: Annotated[str, typer.Argument(help="A .thermo file, converted in place.")],
    layer: Annotated[
        str, typer.Option("--layer", help="Layer whose float tensor entries are quantized.")
    ] = "cool",
    method: MethodOpt = Method.absmean,
    threshold: ThresholdOpt = None,
    per_row: PerRowOpt = True,
    min_rank: MinRankOpt = 2,
    nan_as_zero: NanOpt = False,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Only keys matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Skip keys matching this glob (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be quantized; write nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", "-f", help="Really convert in place (lossy and irreversible; required)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Convert a layer's float tensor entries to ternary in place (audited, consolidating rewrite).

    Lossy and irreversible, so it needs --force (try --dry-run first). Tensors below
    --min-rank stay exact. Each converted entry gets a "quantize" log event (key, method,
    digests, error); the file is consolidated and rewritten atomically. Example:
    thermo quantize model.thermo --layer cool --exclude 'embeddings.*' --force
    """
    from thermo_cli.operations.ternary_files import PackOptions, quantize_file

    opts = PackOptions(
        method=method.value, threshold=threshold, per_row=per_row, nan_as_zero=nan_as_zero, min_rank=min_rank
    )
    report = quantize_file(
        file,
        layer=layer,
        options=opts,
        include=include or (),
        exclude=exclude or (),
        dry_run=dry_run,
        force=force,
    )
    if as_json:
        _warn(report)
        print_json(report.to_json())
        return
    n = sum(t.packed for t in report.tensors)
    if dry_run:
        err(
            f"would quantize {n} entr{'y' if n == 1 else 'ies'} of the {layer} layer of {file} "
            f"({format_size(report.tensor_before)} of tensor data)"
        )
        return
    if not n:
        err(f"nothing to quantize: no float tensor entries in the {layer} layer of {file} (file unchanged)")
        return
    err(
        f"quantized {n} entr{'y' if n == 1 else 'ies'} of the {layer} layer of {file}; "
        f"tensor data {format_size(report.tensor_before)} -> {format_size(report.tensor_after)}"
        f"{_ratio(report.tensor_before, report.tensor_after)}"
    )
    err(f"file: {format_size(report.file_before)} -> {format_size(report.file_after)}")
    for line in _quality_lines(report):
        err(line)
    _warn(report)
