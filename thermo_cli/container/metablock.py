"""The meta block: everything of a thermogram except its layers and its log.

Name, id, the three configurations, the metadata (with the user's custom JSON) and the
extension state (``extras``, e.g. the spiking network's) are one CBOR map. It is written
again only when it changes, so an append that only adds records stays O(delta) while a
counter or an SNN state update appends just this block.
"""

from __future__ import annotations

from typing import Any

from thermo_cli.config.maps import (
    plasticity_from_map,
    plasticity_to_map,
    policy_from_map,
    policy_to_map,
    thermal_from_map,
    thermal_to_map,
)
from thermo_cli.model import Metadata
from thermo_cli.model.fields import as_int, as_map, as_text, as_uint, field_of

# --- encode -------------------------------------------------------------------------------


def metadata_to_map(m: Metadata) -> dict[str, Any]:
    return {
        "created_at": m.created_at_ns,
        "last_consolidation": m.last_consolidation_ns,
        "total_deltas": m.total_deltas,
        "total_consolidations": m.total_consolidations,
        "custom": m.custom,
    }


def meta_to_map(tg: Any) -> dict[str, Any]:
    """The meta block map of a Thermogram (``tg`` is any object with its meta attributes)."""
    return {
        "name": tg.name,
        "id": tg.id,
        "thermal": thermal_to_map(tg.thermal),
        "plasticity": plasticity_to_map(tg.plasticity),
        "policy": policy_to_map(tg.policy),
        "meta": metadata_to_map(tg.meta),
        "extras": dict(tg.extras),
    }


# --- decode -------------------------------------------------------------------------------


def metadata_from_map(v: Any, what: str = "meta.meta") -> Metadata:
    m = as_map(v, what)
    return Metadata(
        created_at_ns=as_int(field_of(m, "created_at", what), f"{what}.created_at"),
        last_consolidation_ns=as_int(field_of(m, "last_consolidation", what), f"{what}.last_consolidation"),
        total_deltas=as_uint(field_of(m, "total_deltas", what), f"{what}.total_deltas"),
        total_consolidations=as_uint(
            field_of(m, "total_consolidations", what), f"{what}.total_consolidations"
        ),
        custom=field_of(m, "custom", what),
    )


def meta_fields_from_map(v: Any, what: str = "meta") -> dict[str, Any]:
    """Keyword arguments for Thermogram(...) decoded from a meta block map."""
    m = as_map(v, what)
    return {
        "name": as_text(field_of(m, "name", what), f"{what}.name"),
        "id": as_text(field_of(m, "id", what), f"{what}.id"),
        "thermal": thermal_from_map(field_of(m, "thermal", what)),
        "plasticity": plasticity_from_map(field_of(m, "plasticity", what)),
        "policy": policy_from_map(field_of(m, "policy", what)),
        "meta": metadata_from_map(field_of(m, "meta", what)),
        "extras": dict(as_map(field_of(m, "extras", what), f"{what}.extras")),
    }
