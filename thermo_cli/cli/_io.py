"""Input helpers for the commands that read a stream: its size, and a progress-counting wrapper."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

PROGRESS_MIN_BYTES = 16 * 1024 * 1024
"""Inputs smaller than this finish too fast for a progress bar to help."""


class CountingReader:
    """Wraps a binary stream to advance a progress bar by the bytes read."""

    def __init__(self, raw: Any, bar: Any) -> None:
        self._raw = raw
        self._bar = bar

    def read1(self, n: int = -1) -> bytes:
        read = getattr(self._raw, "read1", None) or self._raw.read
        data: bytes = read(n)
        self._bar.advance(len(data))
        return data

    def read(self, n: int = -1) -> bytes:
        return self.read1(n)


def input_size(path: str) -> int | None:
    """Bytes in ``path`` (None for stdin or an unreadable path: the bar then just counts)."""
    if path == "-":
        return None
    with contextlib.suppress(OSError):
        return os.stat(path).st_size
    return None


def stream_name(path: str) -> str:
    """How messages name an input: its path, or ``<stdin>`` for ``-``."""
    return "<stdin>" if path == "-" else path


@contextlib.contextmanager
def lines_of(path: str) -> Iterator[None]:
    """A JSONL line error inside the block names the input too: ``d.jsonl: line 3: …``."""
    from thermo_cli.formats.jsonl import LineError, LineLimitError

    try:
        yield
    except (LineError, LineLimitError) as exc:
        exc.args = (f"{stream_name(path)}: {exc}",)
        raise
