"""Which module holds each top-level command: the declarative table the root group reads.

A command's module is imported only when that command runs (or when help, completion
or a typo suggestion needs every name), so ``thermo get`` never loads the safetensors,
SNN or audit code. Each module exposes ``commands``, a ``typer.Typer`` whose
module-level functions are its commands. Order here is the order ``thermo --help``
lists them.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "init": "init",
    "apply": "apply",
    "consolidate": "apply",
    "tick": "apply",
    "reinforce": "strength",
    "weaken": "strength",
    "warm": "strength",
    "get": "entries",
    "keys": "entries",
    "stats": "info",
    "log": "log",
    "export": "exchange",
    "import-jsonl": "exchange",
    "upload": "exchange",
    "migrate": "legacy",
    "import-engram": "legacy",
    "ternary": "ternary",
    "quantize": "ternary",
    "import-safetensors": "tensors",
    "export-safetensors": "tensors",
    "nearest": "nearest",
    "snn": "snn",
    "verify": "audit",
    "keygen": "audit",
    "checkpoint": "audit",
    "sign": "audit",
    "prove": "audit",
    "verify-proof": "audit",
    "repair": "reliability",
    "compact": "reliability",
}
"""Command name → module under ``thermo_cli.cli``."""
