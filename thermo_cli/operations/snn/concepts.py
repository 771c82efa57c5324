"""Concept memory: which neuron holds which learnt concept, and the entries that show it.

With learned prototypes every allocated neuron holds one *concept* with a stable id that
is never reused (``next_id`` only grows). The thermogram sees concepts as tensor entries
``snn/concept/<id>`` (F32 ``[input_dim]``: the unit prototype in the network's centred
input space) and their associations as ``snn/assoc/<a>/<b>`` (a scalar tensor holding the
connection weight). :class:`ConceptBook` keeps, per neuron, the concept id, how many inputs
it won (``count``), the ticks it was first and last seen, and the prototype as last
written, so the network knows when an entry has drifted past ``concept_tolerance``; it
also keeps the running mean that centres the inputs. Everything here is whole-array NumPy
over neurons; the deltas it builds are few (one per recruit, drift, merge or flush).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermo_cli.errors import CorruptError
from thermo_cli.model import Delta, DeltaType, TensorSpec
from thermo_cli.model import new_id as fast_id
from thermo_cli.operations.snn.arrays import decode_array, encode_array

CONCEPT_PREFIX = "snn/concept/"
ASSOC_PREFIX = "snn/assoc/"
SOURCE_CONCEPT = "snn_concept"
MERGE_EVENT = "snn_concept_merged"
"""Event logged when two concepts merge to free a neuron (with the Delete of the absorbed one)."""
STRENGTH_HALF_COUNT = 10
"""A concept's strength is ``count / (count + STRENGTH_HALF_COUNT)``: 1 input 0.09, 10 inputs
0.5, 30 inputs 0.75 (the default crystallization threshold), 90 inputs 0.9."""

BOOK_FIELDS = ("ids", "counts", "first_seen", "last_seen", "written", "written_counts", "radius", "mean")


def concept_key(cid: int) -> str:
    return f"{CONCEPT_PREFIX}{cid}"


def assoc_key(a: int, b: int) -> str:
    """The key of the association from concept ``a`` to concept ``b``."""
    return f"{ASSOC_PREFIX}{a}/{b}"


def usage_strength(count: int) -> float:
    """Entry strength from usage: frequent concepts consolidate, rare ones decay and prune."""
    return count / (count + STRENGTH_HALF_COUNT)


class ConceptBook:
    """Per-neuron concept bookkeeping (``ids[i] == -1``: neuron i holds no concept)."""

    def __init__(self, n: int, dim: int) -> None:
        self.ids = np.full(n, -1, dtype=np.int64)
        self.counts = np.zeros(n, dtype=np.int64)
        self.first_seen = np.full(n, -1, dtype=np.int64)
        self.last_seen = np.full(n, -1, dtype=np.int64)
        self.written = np.zeros((n, dim), dtype=np.float32)
        """Each concept's prototype as its entry holds it (what was last written)."""
        self.written_counts = np.zeros(n, dtype=np.int64)
        """Each concept's count when its entry was last written."""
        self.radius = np.ones(n, dtype=np.float64)
        """Length of each concept's mean of unit inputs (``prototype_rate`` "1/n"): the
        prototype is the unit direction, ``radius * prototype`` the exact mean."""
        self.next_id = 0
        self.mean = np.zeros(dim, dtype=np.float32)
        """Running mean of every input seen (the centring). float32, like the inputs: float64
        doubled the cost of a tick; the Welford-style update keeps the error near float32
        rounding times the square root of the count."""
        self.mean_count = 0

    @property
    def allocated(self) -> np.ndarray:
        return self.ids >= 0

    def centre(self, batch: np.ndarray, *, learn: bool) -> np.ndarray:
        """Rows minus the running mean as of each row (the mean includes that row).

        With ``learn`` the mean advances past the batch; otherwise the current mean is used
        for every row (``assign``). Vectorised with a cumulative sum.
        """
        if not learn:
            return (batch - self.mean).astype(np.float32)
        m = batch.shape[0]
        total = self.mean.astype(np.float64) * self.mean_count
        sums = np.empty((m, batch.shape[1]), dtype=np.float64)
        for row in range(m):  # a row at a time: 10x faster than np.cumsum along axis 0 here
            np.add(total, batch[row], out=total)
            sums[row] = total
        sums /= (self.mean_count + np.arange(1, m + 1, dtype=np.float64))[:, None]
        self.mean = sums[-1].astype(np.float32)
        self.mean_count += m
        return (batch - sums).astype(np.float32)

    def centre_one(self, x: np.ndarray) -> np.ndarray:
        """One input minus the running mean including it (the mean advances)."""
        self.mean_count += 1
        step = x - self.mean
        centred = step * np.float32(1.0 - 1.0 / self.mean_count)  # x - new mean
        step *= np.float32(1.0 / self.mean_count)
        self.mean += step
        return centred

    def allocate(self, neuron: int, tick: int) -> int:
        cid = self.next_id
        self.next_id += 1
        self.ids[neuron] = cid
        self.counts[neuron] = 1
        self.radius[neuron] = 1.0
        self.first_seen[neuron] = tick
        self.last_seen[neuron] = tick
        return cid

    def release(self, neuron: int) -> None:
        self.ids[neuron] = -1
        self.counts[neuron] = 0
        self.first_seen[neuron] = -1
        self.last_seen[neuron] = -1
        self.written[neuron] = 0.0
        self.written_counts[neuron] = 0

    def info(self, neuron: int) -> dict[str, int]:
        """What a concept entry's delta carries in ``custom`` (CBOR, so in the hash chain)."""
        return {
            "concept": int(self.ids[neuron]),
            "neuron": int(neuron),
            "count": int(self.counts[neuron]),
            "first_seen": int(self.first_seen[neuron]),
            "last_seen": int(self.last_seen[neuron]),
        }

    def write(self, neuron: int, proto: np.ndarray, op: DeltaType, ts: int) -> Delta:
        """The Create/Update delta that makes concept ``neuron``'s entry equal ``proto``."""
        self.written[neuron] = proto
        self.written_counts[neuron] = self.counts[neuron]
        value = np.ascontiguousarray(proto, dtype="<f4").tobytes()
        return Delta(
            op,
            concept_key(int(self.ids[neuron])),
            value,
            usage_strength(int(self.counts[neuron])),
            ts,
            source=SOURCE_CONCEPT,
            id=fast_id(),
            custom=self.info(neuron),
            tensor=TensorSpec("F32", (proto.shape[0],)),
        )

    def write_current(self, neuron: int, proto: np.ndarray, ts: int) -> Delta:
        """Create the entry of a concept never written, else Update it."""
        op = DeltaType.CREATE if self.written_counts[neuron] == 0 else DeltaType.UPDATE
        return self.write(neuron, proto, op, ts)

    def stale(self, protos: np.ndarray) -> np.ndarray:
        """Neurons whose entry differs from the network: count or prototype changed."""
        alloc = self.allocated
        moved = (protos != self.written).any(axis=1)
        return np.flatnonzero(alloc & (moved | (self.counts != self.written_counts)))

    def summary(self) -> list[dict[str, Any]]:
        """Every concept with its key, neuron and usage, most used first."""
        neurons = np.flatnonzero(self.allocated)
        order = neurons[np.lexsort((self.ids[neurons], -self.counts[neurons]))]
        return [{"key": concept_key(int(self.ids[i])), **self.info(int(i))} for i in order]

    # --- state ------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "ids": encode_array(self.ids, "int64"),
            "counts": encode_array(self.counts, "int64"),
            "first_seen": encode_array(self.first_seen, "int64"),
            "last_seen": encode_array(self.last_seen, "int64"),
            "written": encode_array(self.written, "float32"),
            "written_counts": encode_array(self.written_counts, "int64"),
            "radius": encode_array(self.radius, "float64"),
            "mean": encode_array(self.mean, "float32"),
            "mean_count": self.mean_count,
            "next_id": self.next_id,
        }

    @classmethod
    def from_state(cls, state: Any, n: int, dim: int, tick: int, what: str) -> ConceptBook:
        if not isinstance(state, dict) or set(state) != {*BOOK_FIELDS, "mean_count", "next_id"}:
            raise CorruptError(f"{what}: expected a map with {', '.join(BOOK_FIELDS)}, mean_count, next_id")
        book = cls(n, dim)
        for name in ("mean_count", "next_id"):
            value = state[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CorruptError(f"{what}: {name} must be a non-negative integer, got {value!r}")
        book.mean_count, book.next_id = state["mean_count"], state["next_id"]
        for name in ("ids", "counts", "first_seen", "last_seen", "written_counts"):
            setattr(book, name, decode_array(state[name], f"{what}: {name}", dtype="int64", shape=(n,)))
        book.written = decode_array(state["written"], f"{what}: written", dtype="float32", shape=(n, dim))
        book.radius = decode_array(state["radius"], f"{what}: radius", dtype="float64", shape=(n,))
        book.mean = decode_array(state["mean"], f"{what}: mean", dtype="float32", shape=(dim,))
        alloc = book.ids >= 0
        used = book.ids[alloc]
        if (book.ids < -1).any() or (used >= book.next_id).any() or np.unique(used).size != used.size:
            raise CorruptError(f"{what}: ids must be distinct, below next_id, or -1 for a free neuron")
        if (
            (book.counts < 0).any()
            or (book.last_seen > tick).any()
            or (book.first_seen > book.last_seen).any()
        ):
            raise CorruptError(f"{what}: counts and first/last seen ticks are inconsistent")
        return book
