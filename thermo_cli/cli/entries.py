"""Reading entries: ``thermo get`` (one value) and ``thermo keys`` — their options and help.

What they do is in :mod:`thermo_cli.cli._read`, shared with the start-up fast path
(:mod:`thermo_cli.cli._fast`) that runs a plain ``thermo get``/``thermo keys`` without
building the typer app; keep the options here and the fast path's parser in step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from thermo_cli.cli._args import InputFileArg, SyncOpt, utf8_text
from thermo_cli.cli._read import run_get, run_keys

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


class LayerName(StrEnum):
    """``--layer`` choices (:data:`thermo_cli.cli._read.LAYER_NAMES`, which the fast path checks)."""

    hot = "hot"
    warm = "warm"
    cool = "cool"
    cold = "cold"


@commands.command("get")
def get(
    file: InputFileArg,
    key: Annotated[str, typer.Argument(help="Key to read.", show_default=False, callback=utf8_text)],
    raw: Annotated[bool, typer.Option("--raw", help="Write the exact value bytes, nothing added.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print value, layer, strength and tensor info as JSON.")
    ] = False,
    as_npy: Annotated[
        str | None,
        typer.Option(
            "--as-npy",
            metavar="OUT",
            help="Write a tensor value as a .npy file ('-' for stdout; an existing file needs --force).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite an existing --as-npy file.")
    ] = False,
    sync: SyncOpt = False,
) -> None:
    """Read one key: newest uncommitted delta first, then hot → warm → cool → cold.

    A tensor prints as a JSON array of numbers. Any other value: redirected or piped,
    its exact bytes, nothing added; on a terminal, text with control characters escaped
    and a final newline (binary values are refused there).

    Example: thermo get memory.thermo greeting
    """
    code = run_get(file, key, raw, json_out, as_npy, force, sync)
    if code:
        raise typer.Exit(code)


@commands.command("keys")
def keys(
    file: InputFileArg,
    layer: Annotated[
        LayerName | None,
        typer.Option("--layer", "-l", help="Only this layer's keys.", show_default=False),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", "-p", help="Only keys starting with this.", show_default=False),
    ] = None,
    null: Annotated[bool, typer.Option("--null", "-0", help="Separate keys with NUL, not newline.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON array of keys.")] = False,
) -> None:
    """List the keys a read finds (sorted), or one layer's keys.

    On a terminal, control characters in keys are escaped (\\n, \\x1b); piped output
    is exact (use --null for keys that contain newlines).

    Example: thermo keys memory.thermo --layer cold --json
    """
    code = run_keys(file, layer.value if layer is not None else None, prefix, null, json_out)
    if code:
        raise typer.Exit(code)
