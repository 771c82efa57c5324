"""The ``thermo`` command line: parses, calls the library, formats. Nothing else.

Each feature keeps its commands in its own module with a ``register(app)`` function;
:func:`main` turns library errors into one line on stderr and a documented exit code.
"""

from __future__ import annotations

import importlib
import os
import sys

from thermo_cli.cli._common import EXIT_USAGE, app, err, exit_process, run_app

# Feature modules, each with register(app). Kept explicit so start-up imports only typer.
_FEATURES = ("core", "legacy", "ternary", "tensors", "snn", "audit", "reliability")

for _name in _FEATURES:
    try:
        _mod = importlib.import_module(f"thermo_cli.cli.{_name}")
    except ModuleNotFoundError as _exc:  # feature not built yet in this checkout
        if _exc.name != f"thermo_cli.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:
    exit_process(run_pinned(sys.argv[1:], dict(os.environ)))


def run_pinned(argv: list[str], environ: dict[str, str]) -> int:
    """:func:`run_app` under the clock ``THERMO_NOW`` pins (if set): time is an input."""
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
