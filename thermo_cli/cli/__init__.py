"""The ``thermo`` command line: parses, calls the library, formats. Nothing else.

Each feature keeps its commands in its own module with a ``register(app)`` function;
:func:`main` turns library errors into one line on stderr and a documented exit code.
"""

from __future__ import annotations

import importlib
import sys

from thermo_cli.cli._common import app, exit_process, run_app

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
    exit_process(run_app(sys.argv[1:]))
