"""The meta digest: one SHA-256 over the parts of the meta block that change behaviour.

The layers are bound into the log by the state digest; the meta block (name, id,
configuration, consolidation policy, custom metadata, extension state such as the spiking
network) used to be protected only by the unkeyed commit digests, so anyone could change
``decay_rates`` or ``prune_threshold``, recompute them, and a signed file still verified.
Every binding record therefore also carries ``meta_digest``, and a signed checkpoint
carries it as its ``meta-digest`` note line, so the signature covers the configuration.

The digest leaves out the counters and timestamps of ``meta`` (``created_at``,
``last_consolidation``, ``total_deltas``, ``total_consolidations``): they change with every
delta, and binding them would force a binding record into every commit. What is hashed is
the deterministic CBOR (spec §4) of the map::

    {"name": text, "id": text, "thermal": map, "plasticity": map, "policy": map,
     "custom": any, "extras": map}

whose values are exactly the meta block's (``custom`` is ``meta.custom``), keys sorted
bytewise by the encoder. Spec: FORMAT.md §9.2.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from thermo_cli.codec import cbor

META_FIELDS = ("name", "id", "thermal", "plasticity", "policy", "custom", "extras")
"""The bound fields, in the order reports name them."""


def bound_meta(meta_block: Mapping[str, Any]) -> dict[str, Any]:
    """The map the meta digest is taken over, from a meta block map (spec §7)."""
    inner = meta_block.get("meta")
    custom = inner.get("custom") if isinstance(inner, Mapping) else None
    return {
        "name": meta_block.get("name"),
        "id": meta_block.get("id"),
        "thermal": meta_block.get("thermal"),
        "plasticity": meta_block.get("plasticity"),
        "policy": meta_block.get("policy"),
        "custom": custom,
        "extras": dict(meta_block.get("extras") or {}),
    }


def meta_digest(meta_block: Mapping[str, Any]) -> bytes:
    """SHA-256 of the deterministic CBOR of :func:`bound_meta` (32 bytes)."""
    return hashlib.sha256(cbor.encode(bound_meta(meta_block))).digest()


def value_digest(value: Any) -> bytes:
    """SHA-256 of one value's deterministic CBOR: what ``extension`` events log for a value
    too large to copy into the log (e.g. a network state)."""
    return hashlib.sha256(cbor.encode(value)).digest()
