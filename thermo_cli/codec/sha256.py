"""SHA-256 for the read path: the interpreter's own module first, OpenSSL's past a budget.

``hashlib`` loads OpenSSL, which costs about 6 ms of every process's start-up, more than
``thermo get`` spends hashing the few small blocks a one-key read checks (trailer, key
index, directory chunk, log segment). The interpreter's built-in SHA-256 module
(``_sha2`` from Python 3.12, ``_sha256`` before) gives the same digests and loads in
microseconds, but hashes long inputs several times slower than OpenSSL. So the first
:data:`BUILTIN_BUDGET` bytes a process hashes through here go to the built-in module, and
everything after them (or any single input longer than what is left of the budget) to
OpenSSL, loaded then: a short command never loads OpenSSL, a long one pays at most a
millisecond or two before switching. Once ``hashlib`` is loaded anyway (by the write
path, for instance) it is used for everything. Both give identical digests
(``tests/codec/test_sha256.py``), so which one ran is never visible (threads racing on the
budget change only that).

The write path's hot loops (record hashes, Merkle leaves) call ``hashlib.sha256`` directly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Protocol

    class _Hash(Protocol):
        def digest(self) -> bytes: ...
        def hexdigest(self) -> str: ...


_Buffer = bytes | bytearray | memoryview

BUILTIN_BUDGET = 512 * 1024
"""Bytes hashed with the built-in module before OpenSSL is loaded: at about 5 ns more per
byte, 512 KiB costs some 2.5 ms, less than half of what loading OpenSSL costs."""


def _builtin_constructor() -> Any:
    """The built-in module's ``sha256`` (None in an interpreter built without it)."""
    try:
        module = __import__("_sha2" if sys.version_info >= (3, 12) else "_sha256")
    except ImportError:
        return None
    return getattr(module, "sha256", None)


_builtin = _builtin_constructor()
_budget = BUILTIN_BUDGET if _builtin is not None else 0


def _hasher(n: int) -> Callable[[_Buffer], _Hash]:
    """The constructor to hash ``n`` more bytes with (see the module's docstring)."""
    global _budget
    if n <= _budget and "hashlib" not in sys.modules:
        _budget -= n
        return _builtin  # type: ignore[no-any-return]
    import hashlib

    return hashlib.sha256


def digest(data: _Buffer) -> bytes:
    """SHA-256 of ``data``, 32 bytes."""
    return _hasher(len(data))(data).digest()


def hexdigest(data: _Buffer) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex digits."""
    return _hasher(len(data))(data).hexdigest()
