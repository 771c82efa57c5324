"""A thermogram's own spiking network: attach one, run activations through it, read it back.

The network lives in ``tg.extras["snn"]`` (see :meth:`EmbeddedSNN.to_state`), so it is
saved inside the ``.thermo`` file with the thermogram it reshapes and restored exactly.
:func:`run` feeds activations through it and applies the resulting deltas through the
thermogram's normal log (``Thermogram.apply_many``: validated, hash-chained, subject to
auto-consolidation) — the concept entries, their associations and the Deletes and
``snn_concept_merged`` events of merged concepts in the order they happened (events through
``Thermogram.append_event``, so they are on the chain and bound at the next commit) — then
stores the network's new state; the caller commits the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from thermo_cli import store
from thermo_cli.errors import NotFoundError, RefusedError
from thermo_cli.operations.snn.concepts import concept_key
from thermo_cli.operations.snn.config import SNNConfig
from thermo_cli.operations.snn.network import COUNTERS, EmbeddedSNN
from thermo_cli.operations.snn.neuromod import NeuromodState

EXTRAS_KEY = "snn"
DOMINANT_SHARE = 0.9
"""A run warns when one concept took more than this share of its inputs."""
DOMINANT_MIN_INPUTS = 20
"""…and only when at least this many inputs went to a concept (a tiny run proves nothing)."""


def has_network(tg: Any) -> bool:
    return EXTRAS_KEY in tg.extras


def load_network(tg: Any) -> EmbeddedSNN:
    """The network stored in ``tg``; NotFoundError if it has none, CorruptError if damaged."""
    state = tg.extras.get(EXTRAS_KEY)
    if state is None:
        origin = store.info(tg)
        where = origin.path if origin is not None else "this thermogram"
        raise NotFoundError(f"{where}: has no spiking network (attach one with `snn init`)")
    return EmbeddedSNN.from_state(state)


def save_network(tg: Any, net: EmbeddedSNN) -> None:
    """Store the network's state; the thermogram logs an ``extension`` event with its SHA-256
    (the network changes what later runs do, so the change belongs in the log)."""
    tg.set_extra(EXTRAS_KEY, net.to_state())


def attach_network(
    tg: Any, config: SNNConfig | None = None, seed: int | None = None, *, replace: bool = False
) -> EmbeddedSNN:
    """Give ``tg`` a fresh network; refuses to replace an existing one unless ``replace``."""
    if has_network(tg) and not replace:
        raise RefusedError("this thermogram already has a spiking network (replace it with replace=True)")
    net = EmbeddedSNN(config, seed)
    save_network(tg, net)
    return net


@dataclass(slots=True)
class RunReport:
    """What one :func:`run` did (or, with ``dry_run``, would do)."""

    activations: int
    deltas: int
    by_kind: dict[str, int]
    """Delta counts by ``"<source> <type>"`` (e.g. ``"snn_stdp merge"``)."""
    tick_before: int
    tick_after: int
    counters: dict[str, int]
    """How much each lifetime counter grew during this run."""
    neuromod: dict[str, float]
    dry_run: bool
    consolidations: int = 0
    concepts: int = 0
    """Concepts the network holds after the run (0 for frozen prototypes)."""
    events: int = 0
    """Events logged (concept merges)."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "activations": self.activations,
            "deltas": self.deltas,
            "by_kind": dict(self.by_kind),
            "tick_before": self.tick_before,
            "tick_after": self.tick_after,
            "counters": dict(self.counters),
            "spiking_tick_fraction": self.counters["ticks_with_spikes"] / self.activations
            if self.activations
            else 0.0,
            "neuromod": dict(self.neuromod),
            "dry_run": self.dry_run,
            "consolidations": self.consolidations,
            "concepts": self.concepts,
            "events": self.events,
            "warnings": list(self.warnings),
        }


def adjusted_neuromod(
    base: NeuromodState,
    *,
    reward: float | None = None,
    stress: float | None = None,
    focus: float | None = None,
) -> NeuromodState:
    """A copy of ``base`` with the given signals applied in the order reward, stress, focus."""
    nm = base.copy()
    if reward is not None:
        nm.reward(reward)
    if stress is not None:
        nm.stress(stress)
    if focus is not None:
        nm.focus(focus)
    return nm


def run(
    tg: Any,
    activations: np.ndarray,
    *,
    reward: float | None = None,
    stress: float | None = None,
    focus: float | None = None,
    decay: float = 0.0,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RunReport:
    """Process ``activations`` (rows) with ``tg``'s network and apply the deltas to ``tg``.

    The signals adjust the stored neuromodulator levels once before the first activation;
    ``decay`` relaxes them toward baseline after every activation. With ``dry_run`` the
    thermogram is left exactly as it was (neither deltas nor network state are stored).
    Validation happens before anything changes.
    """
    net = load_network(tg)
    nm = adjusted_neuromod(net.neuromod, reward=reward, stress=stress, focus=focus)
    if decay:
        nm.copy().decay(decay)  # reject a bad rate before any work
    before = dict(net.counters)
    tick_before = net.tick
    deltas = net.process_batch(activations, nm, neuromod_decay=decay, progress=progress)
    winners = net.batch_winners
    deltas += net.flush_concepts()
    events = net.pop_events()
    consolidations = 0
    if not dry_run:
        done_before = tg.meta.total_consolidations
        _apply_in_order(tg, deltas, events)
        consolidations = tg.meta.total_consolidations - done_before
        save_network(tg, net)
    kinds = Counter(f"{d.source} {d.delta_type.label}" for d in deltas)
    return RunReport(
        activations=int(np.asarray(activations).shape[0]),
        deltas=len(deltas),
        by_kind=dict(sorted(kinds.items())),
        tick_before=tick_before,
        tick_after=net.tick,
        counters={name: net.counters[name] - before[name] for name in COUNTERS},
        neuromod=net.neuromod.to_dict(),
        dry_run=dry_run,
        consolidations=consolidations,
        concepts=0 if net.book is None else int((net.book.ids >= 0).sum()),
        events=len(events),
        warnings=_dominance_warning(winners),
    )


def _apply_in_order(tg: Any, deltas: list[Any], events: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Apply the deltas, logging each event after the deltas that came before it."""
    done = 0
    for position, kind, fields in events:
        tg.apply_many(deltas[done:position])
        tg.append_event(kind, fields)
        done = position
    tg.apply_many(deltas[done:])


def _dominance_warning(winners: np.ndarray) -> list[str]:
    """A warning when one concept took more than DOMINANT_SHARE of the run's inputs: the
    inputs probably share a large common component (centre them) or the spike threshold is
    too low for their spread."""
    won = winners[winners >= 0]
    if won.size < DOMINANT_MIN_INPUTS:
        return []
    ids, counts = np.unique(won, return_counts=True)
    top = int(counts.argmax())
    share = counts[top] / won.size
    if share <= DOMINANT_SHARE:
        return []
    return [
        f"one concept ({concept_key(int(ids[top]))}) took {share:.0%} of {won.size} inputs: "
        "centre the inputs (center 'running') or raise the spike threshold"
    ]


def assign(tg: Any, activations: np.ndarray) -> list[dict[str, Any]]:
    """For each row, the nearest concept's key (None if none) and the cosine: one dict per row
    (``row``, ``concept``, ``cosine``). Reads only; nothing in ``tg`` changes."""
    net = load_network(tg)
    ids, cosines = net.assign(activations)
    return [
        {"row": row, "concept": concept_key(cid) if cid >= 0 else None, "cosine": float(c)}
        for row, (cid, c) in enumerate(zip(ids.tolist(), cosines.tolist(), strict=True))
    ]
