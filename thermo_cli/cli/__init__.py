"""The ``thermo`` command line: parses, calls the library, formats. Nothing else.

Each command group lives in its own module (``init``, ``apply``, ``strength``,
``entries``, ``info``, ``log``, ``exchange``, ``legacy``, ``ternary``, ``tensors``,
``snn``, ``audit``, ``reliability``) as module-level functions on that module's
``commands`` app; :mod:`thermo_cli.cli._registry` names the module of every command and
the root group imports a module only when one of its commands runs. :func:`main` turns
library errors into one line on stderr and a documented exit code.
"""

from __future__ import annotations

import os
import sys

from thermo_cli.cli._common import EXIT_USAGE, app, err, exit_process, run_app

__all__ = ["app", "main", "run_app"]


def main() -> None:
    exit_process(run_pinned(sys.argv[1:], dict(os.environ)))


def run_pinned(argv: list[str], environ: dict[str, str]) -> int:
    """:func:`run_app` under the clock ``THERMO_NOW`` pins (if set): time is an input.

    Unset (the usual case), nothing more is imported: parsing RFC 3339 text costs start-up.
    """
    if not environ.get("THERMO_NOW"):
        return run_app(argv)
    from thermo_cli.cli._now import ENV_VAR, clock_from_env
    from thermo_cli.config.clock import use_clock
    from thermo_cli.errors import ValidationError

    try:
        clock = clock_from_env(environ)
    except ValidationError as exc:
        err(f"thermo: error: {ENV_VAR}: {exc}")
        return EXIT_USAGE
    if clock is None:
        return run_app(argv)
    with use_clock(clock):
        return run_app(argv)
