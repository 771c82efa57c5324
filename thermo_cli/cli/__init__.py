"""The ``thermo`` command line: parses, calls the library, formats. Nothing else.

Each command group lives in its own module (``init``, ``apply``, ``strength``,
``entries``, ``info``, ``log``, ``exchange``, ``legacy``, ``ternary``, ``tensors``,
``snn``, ``audit``, ``reliability``) as module-level functions on that module's
``commands`` app; :mod:`thermo_cli.cli._registry` names the module of every command and
the root group imports a module only when one of its commands runs. :func:`main` turns
library errors into one line on stderr and a documented exit code.

A plain ``thermo get``/``thermo keys`` skips typer altogether (:mod:`thermo_cli.cli._fast`);
``app`` and ``run_app`` (the typer app and its runner) are imported on first use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from thermo_cli.cli._core import EXIT_USAGE, err, exit_process

__all__ = ["app", "dispatch", "main", "run_app"]


def main() -> None:
    exit_process(run_pinned(sys.argv[1:], dict(os.environ)))


def dispatch(argv: list[str], environ: Mapping[str, str]) -> int:
    """Run one command line: the typer-free fast path when it applies, else the typer app."""
    from thermo_cli.cli._fast import run_fast

    code = run_fast(argv, environ)
    if code is not None:
        return code
    from thermo_cli.cli._common import run_app

    return run_app(argv)


def run_pinned(argv: list[str], environ: dict[str, str]) -> int:
    """:func:`dispatch` under the clock ``THERMO_NOW`` pins (if set): time is an input.

    Unset (the usual case), nothing more is imported: parsing RFC 3339 text costs start-up.
    """
    if not environ.get("THERMO_NOW"):
        return dispatch(argv, environ)
    from thermo_cli.cli._now import ENV_VAR, clock_from_env
    from thermo_cli.config.clock import use_clock
    from thermo_cli.errors import ValidationError

    try:
        clock = clock_from_env(environ)
    except ValidationError as exc:
        err(f"thermo: error: {ENV_VAR}: {exc}")
        return EXIT_USAGE
    if clock is None:
        return dispatch(argv, environ)
    with use_clock(clock):
        return dispatch(argv, environ)


def __getattr__(name: str) -> Any:
    """``app`` and ``run_app`` load typer, so they are imported when first asked for."""
    if name in ("app", "run_app"):
        from thermo_cli.cli import _common

        return getattr(_common, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
