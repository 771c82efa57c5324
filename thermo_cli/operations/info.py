"""What a thermogram file holds, as data: counts, sizes per layer, compression, policy.

The library half of ``thermo stats``. A container's index knows every layer's raw and
stored size without decompressing anything, so this stays fast on big files.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from thermo_cli import store
from thermo_cli.codec.timestamps import format_z as ns_to_text
from thermo_cli.config.engine import DeltaCount, DirtySize, TimePeriod
from thermo_cli.config.limits import format_size as size_text
from thermo_cli.model import Layer

if TYPE_CHECKING:
    from thermo_cli.engine.thermogram import Thermogram


def file_stats(path: str) -> dict[str, Any]:
    """Counts, times, head hash, policy and per-layer sizes of the file ``path``."""
    kind = store.sniff(path)
    tg = store.load(path, layers="lazy", log="tail")
    st = tg.stats()
    sizes = {layer.label: layer_sizes(tg, layer) for layer in Layer}
    raw = sum(r for r, _ in sizes.values())
    stored = None if any(s is None for _, s in sizes.values()) else sum(s or 0 for _, s in sizes.values())
    return {
        "file": path,
        "format": kind,
        "name": st.name,
        "id": st.id,
        "entries": st.entries,
        "total_entries": st.total_entries,
        "keys": st.total_keys,
        "dirty_deltas": st.dirty_deltas,
        "dirty_bytes": st.dirty_bytes,
        "log_records": st.log_records,
        "total_deltas": st.total_deltas,
        "consolidations": st.total_consolidations,
        "created_at": ns_to_text(st.created_at_ns),
        "last_consolidation": ns_to_text(st.last_consolidation_ns),
        "head_hash": st.head_hash,
        "file_bytes": _file_bytes(tg, path),
        "plasticity": tg.plasticity.policy.value,
        "policy": policy_text(tg),
        "layer_bytes": {k: {"raw": r, "stored": s} for k, (r, s) in sizes.items()},
        "value_bytes": raw,
        "stored_layer_bytes": stored,
        "compression_ratio": round(raw / stored, 4) if stored else None,
    }


def _file_bytes(tg: Thermogram, path: str) -> int:
    """The file's size: a container's reader knows it (a URL has no local stat)."""
    origin = store.info(tg)
    if origin is not None and origin.reader is not None:
        return origin.reader.file_size
    return os.stat(path).st_size


def layer_sizes(tg: Thermogram, layer: Layer) -> tuple[int, int | None]:
    """(raw value bytes, stored chunk bytes) of a layer; stored is None for JSON files."""
    origin = store.info(tg)
    if origin is not None and origin.reader is not None:
        idx = origin.reader.index[layer]
        raw = sum(s.size for s in idx.streams)
        stored = sum(c.len for s in idx.streams for c in s.chunks) + sum(d.len for d in idx.dirs)
        return raw, stored
    return sum(len(e.value) for e in tg.layers[layer].values()), None


def policy_text(tg: Thermogram) -> str:
    """The auto-consolidation triggers in words: "every 100 deltas, at 1.0 MiB dirty"."""
    parts = []
    for t in tg.policy.triggers:
        if isinstance(t, DeltaCount):
            parts.append(f"every {t.count} deltas")
        elif isinstance(t, TimePeriod):
            parts.append(f"every {t.hours} h")
        elif isinstance(t, DirtySize):
            parts.append(f"at {size_text(t.bytes)} dirty")
        else:
            parts.append("manual")
    return ", ".join(parts)
