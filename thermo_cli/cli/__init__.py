"""The ``thermo`` command line: parses, calls the library, formats. Nothing else.

Each command group lives in its own module (``init``, ``apply``, ``strength``,
``entries``, ``info``, ``log``, ``exchange``, ``legacy``, ``ternary``, ``tensors``,
``snn``, ``audit``, ``reliability``) as module-level functions on that module's
``commands`` app; :mod:`thermo_cli.cli._registry` names the module of every command and
the root group imports a module only when one of its commands runs. :func:`main` turns
library errors into one line on stderr and a documented exit code.
"""

from __future__ import annotations

import sys

from thermo_cli.cli._common import app, exit_process, run_app

__all__ = ["app", "main", "run_app"]


def main() -> None:
    exit_process(run_app(sys.argv[1:]))
