"""Start-up fast path: a plain ``thermo get``, ``keys`` or ``apply`` runs without typer.

Building the typer app (typer, its vendored click, the parameter machinery) costs more
than the whole read of a small file, and these are the commands scripts run in loops and
pipelines. When the command line is simple — the command name first, its positional
arguments, and only options this parser knows, each given once — it is parsed here and
handed to the same :mod:`thermo_cli.cli._read` / :mod:`thermo_cli.cli._write` functions
the typer commands call, with the same error lines and exit codes as the typer path
(``ThermoGroup``/``run_app``). Any other command line (help, ``--``, ``--limit``, an
unknown or repeated option, a value that looks like an option, a wrong number of
arguments, ``THERMO_LIMITS``, shell completion) returns None and goes to typer unchanged,
so usage errors and help always come from typer; so does an ``apply`` whose stderr is a
terminal (typer's path draws its progress bar). ``tests/cli/test_fast.py`` checks both
paths give identical bytes and exit codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from thermo_cli.cli._core import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    _global_flags,
    _set_flags,
    _silence_broken_pipe,
    _split_global_flags,
    is_interactive,
    report_error,
)

_Spec = tuple[tuple[str, ...], dict[str, str], dict[str, str], dict[str, Any]]
"""(positional names, flag option → parameter, value option → parameter, defaults)."""

_SPECS: dict[str, _Spec] = {
    "get": (
        ("file", "key"),
        {"--raw": "raw", "--json": "json_out"},
        {"--as-npy": "as_npy"},
        {"raw": False, "json_out": False, "as_npy": None},
    ),
    "keys": (
        ("file",),
        {"--null": "null", "-0": "null", "--json": "json_out"},
        {"--layer": "layer", "-l": "layer", "--prefix": "prefix", "-p": "prefix"},
        {"layer": None, "prefix": None, "null": False, "json_out": False},
    ),
    "apply": (
        ("file", "deltas"),
        {
            "--skip-invalid": "skip_invalid",
            "--dry-run": "dry_run",
            "--upgrade": "upgrade",
            "--json": "json_out",
            "--auto-consolidate": "auto",
            "--no-auto-consolidate": "no_auto",
        },
        {"--source": "source"},
        {"deltas": "-", "source": "thermo", "skip_invalid": False, "dry_run": False, "upgrade": False},
    ),
}
"""The options of ``entries.get``, ``entries.keys`` and ``apply.apply`` (help and ``-h`` are
left to typer; so are apply's numeric caps, whose range checks typer words)."""

_OPTIONAL_LAST = frozenset({"apply"})
"""Commands whose last positional argument may be left out (its default is in the spec)."""


def parse(argv: list[str]) -> tuple[str, dict[str, Any]] | None:
    """``(command, parameters)`` for a simple get/keys/apply command line, else None."""
    if not argv or argv[0] not in _SPECS:
        return None
    command = argv[0]
    names, flags, valued, defaults = _SPECS[command]
    params: dict[str, Any] = {}
    positional: list[str] = []
    rest = argv[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if token == "-" or not token.startswith("-"):
            positional.append(token)
            continue
        given: bool | str
        option, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if option in flags and not eq:
            dest, given = flags[option], True
        elif option in valued:
            if not eq:
                if i >= len(rest):
                    return None
                value, i = rest[i], i + 1
            if value.startswith("-") and value != "-":
                return None
            dest, given = valued[option], value
        else:
            return None
        if dest in params:
            return None
        params[dest] = given
    if command in _OPTIONAL_LAST and len(positional) == len(names) - 1:
        names = names[:-1]
    if len(positional) != len(names) or "-" in positional[:1]:
        return None  # '-' as the file: spooled (get/keys) or refused (apply) by the typer path
    if command != "apply" and "-" in positional:
        return None
    if not all(_utf8(a) for a in positional):
        return None  # typer's callback words the error
    if command == "keys" and params.get("layer", "hot") not in ("hot", "warm", "cool", "cold"):
        return None
    if command == "apply":
        if "auto" in params and "no_auto" in params:
            return None  # both given: typer's rule (the last one wins) applies
        params["auto_consolidate"] = not params.pop("no_auto", False)
        params.pop("auto", None)
    return command, {**defaults, **params, **dict(zip(names, positional, strict=True))}


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def run_fast(argv: list[str], environ: Mapping[str, str]) -> int | None:
    """The exit code of a simple get/keys/apply command line run here, or None to use typer."""
    if environ.get("THERMO_LIMITS", "").strip() or "_THERMO_COMPLETE" in environ:
        return None
    rest, debug, no_color = _split_global_flags(argv)
    parsed = parse(rest)
    if parsed is None:
        return None
    command, params = parsed
    if command == "apply":
        if is_interactive():
            return None  # typer's path draws a progress bar on a terminal
        from thermo_cli.cli._write import run_apply

        handler: Callable[..., int] = run_apply
    else:
        from thermo_cli.cli import _read

        handler = _read.run_get if command == "get" else _read.run_keys
    with _global_flags():
        _set_flags(debug, no_color)
        return _invoke(handler, params)


def _invoke(handler: Callable[..., int], params: dict[str, Any]) -> int:
    """Run one command as ``ThermoGroup._invoke`` and typer's main do: same lines, same codes."""
    try:
        return handler(**params)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # typer turns Ctrl-C inside a command into a quiet exit 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:
        _silence_broken_pipe()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        return report_error(exc)
