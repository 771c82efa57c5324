"""Tell the crate's JSON files apart by content: both old and new files are called ``.thermo``.

Sniffing looks only at the first bytes of a file (a few KiB are plenty: the crate writes
``id`` and ``name`` first, then the entry maps), so the store can decide how to open a
file without reading it whole. A positive answer is a strong hint, not a validation:
:func:`thermo_cli.formats.legacy.reader.load_legacy` checks everything.
"""

from __future__ import annotations

import re

SNIFF_BYTES = 64 * 1024
"""How much of a file the sniffers need at most (pass more and the rest is ignored)."""

_OPEN_OBJECT = re.compile(rb"\A(?:\xef\xbb\xbf)?[ \t\r\n]*\{")
_THERMOGRAM_KEYS = re.compile(
    rb'"(?:hot_entries|warm_entries|cool_entries|cold_entries|dirty_chain|plasticity_rule'
    rb'|consolidation_policy|thermal_config)"[ \t\r\n]*:'
)
_ENGRAM_KEYS = re.compile(rb'"(?:thermogram_id|state|history)"[ \t\r\n]*:')


def sniff_legacy(head: bytes) -> bool:
    """True if ``head`` (the start of a file) looks like a crate save file (0.4 or 0.5).

    A JSON object with at least one member only the crate's Thermogram has
    (``hot_entries``, ``dirty_chain``, ``thermal_config`` …). Engram exports do not match.
    """
    head = bytes(head[:SNIFF_BYTES])
    return bool(_OPEN_OBJECT.match(head)) and _THERMOGRAM_KEYS.search(head) is not None


def sniff_engram(head: bytes) -> bool:
    """True if ``head`` looks like the crate's Engram export (``export_to_json``)."""
    head = bytes(head[:SNIFF_BYTES])
    if not _OPEN_OBJECT.match(head) or _THERMOGRAM_KEYS.search(head) is not None:
        return False
    return b'"thermogram_id"' in head and _ENGRAM_KEYS.search(head) is not None
