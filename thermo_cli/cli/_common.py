"""Shared CLI plumbing: the typer app, exit codes, error reporting, output helpers.

Exit codes (documented in the README):
  0 ok · 1 verification failed · 2 usage error · 3 unreadable or corrupt input
  4 refused (would overwrite / convert without being asked) · 5 file locked · 6 not found
  70 internal error (a bug: rerun with --debug for the traceback)
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

EXIT_OK = 0
EXIT_VERIFY_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_REFUSED = 4
EXIT_LOCKED = 5
EXIT_NOT_FOUND = 6
EXIT_INTERNAL = 70

app = typer.Typer(
    name="thermo",
    help="Thermograms: plastic memory capsules with hot/warm/cool/cold layers and an audited log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state: dict[str, bool] = {"debug": False, "no_color": False}


class VerificationFailed(Exception):
    """Raised by a command whose check ran and failed (exit 1, report already printed)."""


def exit_code_for(exc: BaseException) -> int:
    from thermo_cli import errors

    if isinstance(exc, VerificationFailed):
        return EXIT_VERIFY_FAILED
    if isinstance(exc, errors.LockError):
        return EXIT_LOCKED
    if isinstance(exc, errors.RefusedError):
        return EXIT_REFUSED
    if isinstance(exc, errors.NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, errors.ValidationError | errors.ChainError):
        return EXIT_BAD_INPUT
    if isinstance(exc, errors.FormatError | errors.ThermoError):
        return EXIT_BAD_INPUT
    if isinstance(exc, OSError):
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def use_color() -> bool:
    return not _state["no_color"] and "NO_COLOR" not in os.environ and sys.stderr.isatty()


def err(message: str) -> None:
    """One line on stderr."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def print_json(obj: Any) -> None:
    """JSON document on stdout (data goes to stdout, messages to stderr)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
    sys.stdout.flush()


def run_app(argv: list[str]) -> int:
    """Run the typer app; map library errors to one stderr line and an exit code."""
    _state["debug"] = "--debug" in argv
    _state["no_color"] = "--no-color" in argv
    argv = [a for a in argv if a not in ("--debug", "--no-color")]
    try:
        app(args=argv, prog_name="thermo", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err("thermo: interrupted")
        return 130
    except BaseException as exc:  # the one place errors become exit codes
        return _report(exc)
    return EXIT_OK


def _report(exc: BaseException) -> int:
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, typer.Abort):
        err("thermo: aborted")
        return 130
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # typer/click usage errors
        if hasattr(exc, "show"):
            exc.show()
        else:
            err(f"thermo: error: {exc.format_message()}")
        return int(exc.exit_code)
    code = exit_code_for(exc)
    if code == EXIT_VERIFY_FAILED:
        return code
    if _state["debug"]:
        import traceback

        traceback.print_exception(exc)
    if code == EXIT_INTERNAL:
        err(f"thermo: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
    else:
        text = str(exc).replace("\n", " ")
        err(f"thermo: error: {text}")
    return code


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for internal errors."),
    no_color: bool = typer.Option(False, "--no-color", help="Disable colour (also NO_COLOR=1)."),
) -> None:
    """Thermograms: plastic memory capsules with hot/warm/cool/cold layers and an audited log."""
