"""The bookkeeping of turning a loaded crate save file into a container's log.

Every writer that upgrades a crate file (``thermo migrate``, a store commit with
``upgrade``) appends the same ``migrate`` event, so it lives here, beside the crate
format itself, below the store that commits it.
"""

from __future__ import annotations

import hashlib

from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import IntegrityError, ValidationError
from thermo_cli.formats.legacy.reader import FORMAT_NAME
from thermo_cli.formats.legacy.verify import verify_legacy
from thermo_cli.model import Delta, Event, HashScheme, Layer

CRATE_VERSIONS = {"0.4": "0.4.x", "0.5": "0.5.x"}
"""Crate releases whose files have each shape (0.4: hot/cold and a scalar thermal config)."""


def record_migration(tg: Thermogram, data: bytes, *, source: str = "<file>") -> Event:
    """Append the ``migrate`` event to a thermogram loaded from the crate file ``data``.

    For any writer that turns a loaded legacy file into a container (``thermo migrate``,
    or a store commit with ``upgrade``): checks the legacy chain first (IntegrityError
    naming the first bad delta), then moves what ``extras["legacy"]`` said about the
    source into the event, so the container carries no stale legacy state.
    """
    info = tg.extras.get("legacy")
    if info is None:
        raise ValidationError("thermogram: not loaded from a Rust-crate save file (no extras['legacy'])")
    report = verify_legacy(tg, path=source)
    if not report.ok:
        f = report.failure
        where = f"delta {f.index}" if f is not None and f.index is not None else "the chain"
        reason = f.reason if f is not None else "verification failed"
        raise IntegrityError(
            f"{source}: legacy chain fails verification at {where}: {reason}; "
            "refusing to migrate a broken chain (see thermo verify)"
        )
    legacy = [r for r in tg.records if isinstance(r, Delta) and r.scheme is HashScheme.LEGACY]
    tg.remove_extra("legacy", log=False)  # first, so the event's meta digest binds the container's meta
    return tg.append_event(
        "migrate",
        {
            "source_format": FORMAT_NAME,
            "source_version": info["version"],
            "crate_version": CRATE_VERSIONS[info["version"]],
            "source_sha256": hashlib.sha256(data).digest(),
            "source_size": len(data),
            "legacy_deltas": len(legacy),
            "legacy_head": info["head_hash"],
            "entries": {layer.label: len(tg.layers[layer]) for layer in Layer},
        },
        bind=True,
    )
