"""Convert a crate save file (or Engram export) into a ``.thermo`` container, losing nothing.

Migration keeps the crate's chain as the start of the new log: the legacy deltas keep
their crate hashes (``scheme=LEGACY``), stay dirty exactly as they were in the crate (a
later ``consolidate`` folds them), and the new chain continues from the last of them with
an ``Event(kind="migrate")`` that records where the data came from — format, version,
the original file's SHA-256 and size — so an auditor can tie the container to the file.
The event also binds the log and the layer state (``log_size``, ``log_root``,
``state_digest``), so from the first commit on ``thermo verify`` checks the layers —
which no hash covered in the crate.
A file whose chain fails verification is refused: carrying a broken chain forward would
make every later verification of the new file fail.

The old file is only ever read. The new one is written atomically by the store and never
replaces an existing file unless asked.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from thermo_cli import store
from thermo_cli.container.fileops import refuse_overwriting_source
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import RefusedError
from thermo_cli.formats.legacy.engram import load_engram
from thermo_cli.formats.legacy.reader import FORMAT_NAME, load_legacy, read_legacy_file
from thermo_cli.formats.legacy.upgrade import record_migration
from thermo_cli.model import Layer


@dataclass(slots=True)
class MigrationResult:
    """What a migration or import wrote, for the CLI to show."""

    source: str
    target: str
    source_format: str
    crate_version: str
    source_sha256: str
    source_size: int
    legacy_deltas: int
    entries: dict[str, int] = field(default_factory=dict)
    head_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "source_format": self.source_format,
            "crate_version": self.crate_version,
            "source_sha256": self.source_sha256,
            "source_size": self.source_size,
            "legacy_deltas": self.legacy_deltas,
            "entries": self.entries,
            "head_hash": self.head_hash,
        }


def prepare_migration(data: bytes, *, source: str = "<file>") -> Thermogram:
    """A crate save file (bytes) → the Thermogram to write: legacy chain + migrate event.

    Raises LegacyFormatError for a malformed file and IntegrityError when its chain fails
    the crate's own verification (naming the first bad delta).
    """
    tg = load_legacy(data, source=source)
    record_migration(tg, data, source=source)
    return tg


def migrate_file(
    old: str | os.PathLike[str], new: str | os.PathLike[str], *, overwrite: bool = False
) -> MigrationResult:
    """``thermo migrate OLD NEW``: write the container for crate save file ``old`` to ``new``."""
    old_p, new_p = os.fspath(old), os.fspath(new)
    data = _read_source(old_p, new_p, "legacy")
    tg = prepare_migration(data, source=old_p)
    store.create(new_p, tg, overwrite=overwrite)
    event = tg.records[-1]
    fields = event.fields  # type: ignore[union-attr]
    return MigrationResult(
        source=old_p,
        target=new_p,
        source_format=f"{FORMAT_NAME} {fields['source_version']}",
        crate_version=fields["crate_version"],
        source_sha256=fields["source_sha256"].hex(),
        source_size=len(data),
        legacy_deltas=fields["legacy_deltas"],
        entries=fields["entries"],
        head_hash=tg.head_hash,
    )


def import_engram_file(
    export: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False
) -> MigrationResult:
    """``thermo import-engram EXPORT OUT``: a new container from a crate Engram export."""
    src, dst = os.fspath(export), os.fspath(out)
    data = _read_source(src, dst, "engram")
    tg = load_engram(data, source=src)
    store.create(dst, tg, overwrite=overwrite)
    return MigrationResult(
        source=src,
        target=dst,
        source_format="engram-json",
        crate_version="0.4.x/0.5.x",
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_size=len(data),
        legacy_deltas=0,
        entries={layer.label: len(tg.layers[layer]) for layer in Layer},
        head_hash=tg.head_hash,
    )


_WRONG_KIND = {
    ("legacy", "thermo"): "is already a .thermo container; nothing to migrate",
    ("legacy", "engram"): "is an Engram export, not a save file; use thermo import-engram",
    ("engram", "legacy"): "is not an Engram export (use thermo migrate)",
    ("engram", "thermo"): "is not an Engram export (it is already a .thermo container)",
}


def _read_source(src: str, dst: str, kind: str) -> bytes:
    """The bytes of crate file ``src``, once it is known to be a ``kind`` file that is not ``dst``."""
    found = store.sniff(src)
    if found != kind:
        raise RefusedError(f"{src}: {_WRONG_KIND[kind, found]}")
    refuse_overwriting_source(src, dst)
    return read_legacy_file(src)
