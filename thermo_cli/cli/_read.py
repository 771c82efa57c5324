"""What ``thermo get`` and ``thermo keys`` do, without typer.

The typer commands in :mod:`thermo_cli.cli.entries` (help, options) and the start-up fast
path (:mod:`thermo_cli.cli._fast`, which skips building the typer app for a plain
``thermo get FILE KEY``) both call :func:`run_get` and :func:`run_keys`, so the two ways
in print the same bytes and return the same exit codes. Only the standard library is
imported at load time; the store, numpy and the codecs by the code path that needs them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from thermo_cli.cli._core import (
    EXIT_OK,
    EXIT_USAGE,
    err,
    escape_controls,
    json_bytes,
    open_output,
    print_json,
    stdout_is_terminal,
    write_stdout_bytes,
)

if TYPE_CHECKING:
    from thermo_cli.model import ReadResult

LAYER_NAMES = ("hot", "warm", "cool", "cold")
"""The values ``keys --layer`` accepts."""


def run_get(
    file: str,
    key: str,
    raw: bool,
    json_out: bool,
    as_npy: str | None,
    force: bool = False,
    sync: bool = False,
) -> int:
    """``thermo get``: print one key's value; the exit code (library errors are raised).
    ``sync`` fsyncs an ``as_npy`` file (exports are otherwise left to the system to flush)."""
    from thermo_cli import store
    from thermo_cli.errors import NotFoundError

    if sum((raw, json_out, as_npy is not None)) > 1:
        err("thermo: error: --raw, --json and --as-npy are alternatives")
        return EXIT_USAGE
    if (as_npy == "-" or raw) and stdout_is_terminal():
        err("thermo: error: not writing binary data to a terminal: redirect stdout or name a file")
        return EXIT_USAGE
    result = store.read(file, key)
    if result is None:
        raise NotFoundError(f"key {key!r} not found in {file}")
    if json_out:
        print_json(_entry_json(result))
    elif as_npy is not None:
        _write_npy(result, as_npy, force=force, sync=sync)
    elif raw:
        write_stdout_bytes(result.value)
    else:
        _print_value(result)
    return EXIT_OK


def run_keys(file: str, layer: str | None, prefix: str | None, null: bool, json_out: bool) -> int:
    """``thermo keys``: list the keys a read finds (or one layer's); the exit code."""
    from thermo_cli import store

    found = store.keys(file, layer)
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
    return EXIT_OK


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


def _write_npy(result: ReadResult, out: str, *, force: bool = False, sync: bool = False) -> None:
    import numpy as np

    from thermo_cli.codec.tensors import dtype_info
    from thermo_cli.errors import ValidationError, quote

    if result.tensor is None:
        raise ValidationError(
            f"{quote(result.key)} is not a tensor (it holds {len(result.value)} bytes): use --raw"
        )
    arr = _tensor_array(result, note=True)
    with open_output(out, overwrite=force, durable=sync) as fh:
        np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
    if out != "-":
        info = dtype_info(result.tensor.dtype)
        shape = list(result.tensor.shape)
        stored = f" as {arr.dtype} {list(arr.shape)}" if list(arr.shape) != shape or info.is_packed else ""
        if info.is_packed:
            stored += " (packed)"
        err(f"wrote {quote(result.key)} {result.tensor.dtype} {shape}{stored} to {out}")
