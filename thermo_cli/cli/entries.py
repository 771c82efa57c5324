"""Reading entries: ``thermo get`` (one value) and ``thermo keys``.

``get`` is the command people run in loops, so this module imports only typer at load
time; the store, numpy and the codecs are imported by the code path that needs them.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from thermo_cli.cli._args import InputFileArg, utf8_text
from thermo_cli.cli._common import (
    EXIT_USAGE,
    err,
    escape_controls,
    open_output,
    print_json,
    stdout_is_terminal,
    write_stdout_bytes,
)

if TYPE_CHECKING:
    from thermo_cli.model import ReadResult

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


class LayerName(StrEnum):
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
) -> None:
    """Read one key: newest uncommitted delta first, then hot → warm → cool → cold.

    A tensor prints as a JSON array of numbers. Any other value: redirected or piped,
    its exact bytes, nothing added; on a terminal, text with control characters escaped
    and a final newline (binary values are refused there).

    Example: thermo get memory.thermo greeting
    """
    from thermo_cli import store
    from thermo_cli.errors import NotFoundError

    if sum((raw, json_out, as_npy is not None)) > 1:
        err("thermo: error: --raw, --json and --as-npy are alternatives")
        raise typer.Exit(EXIT_USAGE)
    if (as_npy == "-" or raw) and stdout_is_terminal():
        err("thermo: error: not writing binary data to a terminal: redirect stdout or name a file")
        raise typer.Exit(EXIT_USAGE)
    result = store.read(file, key)
    if result is None:
        raise NotFoundError(f"key {key!r} not found in {file}")
    if json_out:
        print_json(_entry_json(result))
    elif as_npy is not None:
        _write_npy(result, as_npy, force=force)
    elif raw:
        write_stdout_bytes(result.value)
    else:
        _print_value(result)


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
    from thermo_cli import store

    tg = store.load(file, layers="lazy", log="tail")
    found = tg.keys(layer.value if layer is not None else None)
    if prefix:
        found = [k for k in found if k.startswith(prefix)]
    if json_out:
        print_json(found)
    elif found:
        sep = "\0" if null else "\n"
        if stdout_is_terminal():
            found = [escape_controls(k) for k in found]
        sys.stdout.write(sep.join(found) + sep)
        sys.stdout.flush()


def _entry_json(result: ReadResult) -> dict[str, Any]:
    from thermo_cli.formats import jsonl

    doc: dict[str, Any] = {
        "key": result.key,
        "layer": result.source,
        "strength": result.strength,
        "ternary": None if result.ternary is None else int(result.ternary),
        "update_count": result.update_count,
        "size": len(result.value),
        "value": jsonl.encode_value(result.value, result.tensor),
    }
    if result.tensor is not None:
        t = result.tensor
        doc["tensor"] = {"dtype": t.dtype, "shape": list(t.shape), "encoding": t.encoding}
    return doc


def _print_value(result: ReadResult) -> None:
    """Exact bytes away from a terminal; on one, escaped text or a tensor as JSON numbers."""
    if result.tensor is not None:
        _print_tensor(result)
        return
    if not stdout_is_terminal():
        write_stdout_bytes(result.value)
        return
    try:
        text = result.value.decode("utf-8")
    except UnicodeDecodeError:
        from thermo_cli.errors import ValidationError

        raise ValidationError(
            f"{escape_controls(repr(result.key))} holds {len(result.value)} bytes of binary data: "
            "not printed to a terminal (use --raw, --json or a redirect)"
        ) from None
    sys.stdout.write(escape_controls(text, keep="\n\t") + "\n")
    sys.stdout.flush()


def _print_tensor(result: ReadResult) -> None:
    import numpy as np

    from thermo_cli.cli._common import json_bytes

    arr = _tensor_array(result)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64)
    sys.stdout.write(json_bytes(arr.tolist()).decode("utf-8") + "\n")
    sys.stdout.flush()


def _tensor_array(result: ReadResult, *, note: bool = False) -> Any:
    """The tensor's values; a float type numpy lacks becomes float32 (noted when asked)."""
    from thermo_cli.codec.tensors import dtype_info, to_float32, value_to_array

    assert result.tensor is not None
    arr = value_to_array(result.value, result.tensor)
    info = dtype_info(result.tensor.dtype)
    if info.kind == "float" and not info.native:
        if note:
            err(f"thermo: note: .npy has no {info.name}; writing float32 values")
        arr = to_float32(arr, info.name)
    return arr


def _write_npy(result: ReadResult, out: str, *, force: bool) -> None:
    import numpy as np

    from thermo_cli.codec.tensors import dtype_info
    from thermo_cli.errors import ValidationError, quote

    if result.tensor is None:
        raise ValidationError(
            f"{quote(result.key)} is not a tensor (it holds {len(result.value)} bytes): use --raw"
        )
    arr = _tensor_array(result, note=True)
    with open_output(out, overwrite=force) as fh:
        np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
    if out != "-":
        info = dtype_info(result.tensor.dtype)
        shape = list(result.tensor.shape)
        stored = f" as {arr.dtype} {list(arr.shape)}" if list(arr.shape) != shape or info.is_packed else ""
        if info.is_packed:
            stored += " (packed)"
        err(f"wrote {quote(result.key)} {result.tensor.dtype} {shape}{stored} to {out}")
