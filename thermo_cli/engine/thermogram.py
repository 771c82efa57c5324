"""The Thermogram: four thermal layers, a hash-chained log, and the rules that move entries.

State invariants (shared with the container codec and the legacy readers):

* ``layers[L]`` maps key → Entry for each Layer; a container may supply lazy mappings.
* ``records`` are the log records held in memory, oldest first; ``records[i]`` has log
  index ``log_base + i``. A file opened for appending may load only its tail
  (``log_base > 0``); ``log_length`` is then ``log_base + len(records)``.
* ``head_hash`` is the hash of the last record (None for an empty log).
* ``dirty_start`` is the log index of the first record after the last consolidation
  point; the uncommitted ("dirty") deltas are the Delta records at or after it.
* ``persisted`` is how many log records the backing file already holds; records after
  it are pending appends. ``layers_modified`` says the layers changed since loading, so a
  writer must rewrite the file instead of appending.
* ``extras`` holds extension state (e.g. ``"snn"``) as CBOR-encodable data with text keys.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from thermo_cli.engine.config import ConsolidationPolicy, PlasticityRule, ThermalConfig
from thermo_cli.model import Entry, Layer, LogRecord, Metadata, new_id, now_ns


def _empty_layers() -> dict[Layer, MutableMapping[str, Entry]]:
    return {layer: {} for layer in Layer}


def _new_meta() -> Metadata:
    t = now_ns()
    return Metadata(created_at_ns=t, last_consolidation_ns=t)


@dataclass(eq=False)
class Thermogram:
    name: str = "thermogram"
    id: str = field(default_factory=new_id)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    plasticity: PlasticityRule = field(default_factory=PlasticityRule)
    policy: ConsolidationPolicy = field(default_factory=ConsolidationPolicy)
    meta: Metadata = field(default_factory=_new_meta)
    layers: dict[Layer, MutableMapping[str, Entry]] = field(default_factory=_empty_layers)
    records: list[LogRecord] = field(default_factory=list)
    log_base: int = 0
    head_hash: str | None = None
    dirty_start: int = 0
    persisted: int = 0
    layers_modified: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def log_length(self) -> int:
        return self.log_base + len(self.records)
