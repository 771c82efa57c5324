"""Count the objects and arrays of a JSON text before parsing it.

Why: orjson builds the whole document at once, and ``{}`` is two bytes of text but a
64-byte dict (plus a list slot) once parsed, so a file of empty objects costs ~36 times
its size before any check runs. Scalars cost at most ~10 times their text, so containers
are what needs a cap. ``bytes.count`` runs at memory speed; only when that upper bound
(which also counts brackets inside strings) is over the cap are the strings blanked out
for an exact count, so legitimate input pays a couple of passes over its bytes.
"""

from __future__ import annotations

import re

from thermo_cli.config.limits import raise_hint
from thermo_cli.errors import LimitExceededError

CONTAINERS_CAP = "max_json_containers"
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_containers(data: bytes) -> int:
    """Objects plus arrays in the JSON text ``data`` (brackets inside strings not counted)."""
    return _brackets(_STRING.sub(b'""', data))


def check_json_containers(data: bytes, cap: int, what: str, cap_name: str = CONTAINERS_CAP) -> None:
    """Raise LimitExceededError naming ``cap_name`` when ``data`` holds more than ``cap`` containers."""
    if _brackets(data) <= cap:
        return
    n = json_containers(data)
    if n > cap:
        raise LimitExceededError(
            f"{what}: {n} JSON objects and arrays exceeds the cap {cap_name}={cap} ({raise_hint(cap_name)})"
        )


def _brackets(data: bytes) -> int:
    return data.count(b"{") + data.count(b"[")
