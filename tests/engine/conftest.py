"""Helpers for engine tests: a thermogram that only consolidates when asked, fixed times."""

from __future__ import annotations

import pytest

from thermo_cli.engine import ConsolidationPolicy, ThermalConfig, Thermogram
from thermo_cli.model import NS_PER_SECOND, Entry, Layer

T0 = 1_700_000_000 * NS_PER_SECOND
"""A fixed instant (2023-11-14T22:13:20Z) so plasticity sees exact time differences."""


def manual(**kw) -> Thermogram:
    kw.setdefault("policy", ConsolidationPolicy.manual())
    return Thermogram(**kw)


def put(
    tg: Thermogram,
    layer: Layer,
    key: str,
    strength: float,
    count: int = 1,
    value: bytes | None = None,
    ternary=None,
    at: int = T0,
) -> Entry:
    """Place an entry straight into a layer (as a loader would)."""
    from thermo_cli.engine.plasticity import f32

    e = Entry(
        key=key,
        value=value if value is not None else f"{layer.label}:{key}".encode(),
        strength=f32(strength),
        updated_at_ns=at,
        update_count=count,
        ternary=ternary,
    )
    tg.layers[layer][key] = e
    return e


@pytest.fixture
def tg() -> Thermogram:
    return manual()


@pytest.fixture
def organic() -> Thermogram:
    return manual(thermal=ThermalConfig.organic())
