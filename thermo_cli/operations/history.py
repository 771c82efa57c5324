"""Choosing log records: by key, deltas only, the newest N; and where the dirty tail starts.

The library half of ``thermo log``: it yields ``(index, record)`` pairs and never
formats them (a record's JSON shape is :func:`thermo_cli.formats.dump.record_doc`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import Any

from thermo_cli import store
from thermo_cli.model import Delta, Event, LogRecord


def select_records(
    path: str, *, key: str | None = None, events: bool = True, last: int | None = None
) -> Iterator[tuple[int, LogRecord]]:
    """The file's log records, oldest first, filtered; ``last`` keeps only the newest N."""
    chosen = _chosen(path, key, events)
    return iter(deque(chosen, maxlen=last)) if last is not None else chosen


def _chosen(path: str, key: str | None, events: bool) -> Iterator[tuple[int, LogRecord]]:
    for index, rec in enumerate(store.iter_log(path)):
        if not events and not isinstance(rec, Delta):
            continue
        if key is not None and not mentions(rec, key):
            continue
        yield index, rec


def mentions(rec: LogRecord, key: str) -> bool:
    """A record about ``key``: its delta, or an event naming it (reinforce, warm …)."""
    if isinstance(rec, Delta):
        return rec.key == key
    f = rec.fields
    return f.get("key") == key or (isinstance(f.get("keys"), list) and key in f["keys"])


def dirty_start(path: str) -> int:
    """Index of the first uncommitted record: a container's trailer says it, no decoding."""
    if store.sniff(path) != "thermo":
        return store.load(path).dirty_start
    reader = store.open_reader(path)
    try:
        return int(reader.trailer.dirty_start)
    finally:
        reader.close()


def recorded_quality(src: str | os.PathLike[str]) -> dict[str, tuple[float | None, float | None]]:
    """Reconstruction errors (rel L2, cosine) logged when entries were packed, by key.

    ``thermo ternary pack``, ``import --ternary`` and ``thermo quantize`` log them in their
    import/quantize events. A figure holds only for the value it was measured on: a later
    delta on the key, or a later import/quantize event without figures, drops it.
    """
    return {k: (f[0], f[1]) for k, f in recorded_figures(src).items()}


Figures = tuple[float | None, float | None, float | None, float | None]
"""(rel L2, cosine, ||w||, ||ŵ||) as logged; the norms (logged since figures are also
given for whole files) let per-tensor figures be combined, and are None in older logs."""


def recorded_figures(src: str | os.PathLike[str]) -> dict[str, Figures]:
    """:func:`recorded_quality` with the norms that were logged alongside, by key."""
    found: dict[str, Figures] = {}
    for rec in store.iter_log(src):
        if isinstance(rec, Delta):
            found.pop(rec.key, None)
        elif isinstance(rec, Event) and rec.kind in ("import", "quantize"):
            f = rec.fields
            key = f.get("key")
            if not isinstance(key, str):
                continue
            if "rel_l2" in f:
                found[key] = (
                    number_or_none(f.get("rel_l2")),
                    number_or_none(f.get("cosine")),
                    number_or_none(f.get("norm")),
                    number_or_none(f.get("norm_reconstructed")),
                )
            else:
                found.pop(key, None)
    return found


def number_or_none(x: Any) -> float | None:
    """A logged figure as float, None when the field is missing or not a number."""
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None
