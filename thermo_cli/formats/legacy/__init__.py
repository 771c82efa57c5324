"""The Rust crate's save files: detect, read (0.4.x and 0.5.x), verify, write, migrate.

Everything here produces or consumes the one data model (:mod:`thermo_cli.model`,
:class:`thermo_cli.engine.thermogram.Thermogram`); legacy deltas keep
``scheme=HashScheme.LEGACY`` and the crate's own hash, so a migrated log still proves
what the crate recorded.
"""

from thermo_cli.codec.timestamps import format_rfc3339, format_z, parse_rfc3339
from thermo_cli.formats.legacy.detect import sniff_engram, sniff_legacy
from thermo_cli.formats.legacy.reader import load_legacy, load_legacy_file, read_legacy_file
from thermo_cli.formats.legacy.verify import legacy_hash, verify_legacy

__all__ = [
    "format_rfc3339",
    "format_z",
    "legacy_hash",
    "load_legacy",
    "load_legacy_file",
    "parse_rfc3339",
    "read_legacy_file",
    "sniff_engram",
    "sniff_legacy",
    "verify_legacy",
]
