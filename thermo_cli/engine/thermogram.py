"""The Thermogram: four thermal layers, a hash-chained log, and the rules that move entries.

State invariants (shared with the container codec and the legacy readers):

* ``layers[L]`` maps key → Entry for each Layer; a container may supply lazy mappings.
* ``records`` are the log records held in memory, oldest first; ``records[i]`` has log
  index ``log_base + i``. A file opened for appending may load only its tail
  (``log_base > 0``); ``log_length`` is then ``log_base + len(records)``. Every dirty
  delta must be in memory (``dirty_start >= log_base``).
* ``head_hash`` is the hash of the last record (None for an empty log).
* ``dirty_start`` is the log index of the first record after the last consolidation
  point; the uncommitted ("dirty") deltas are the Delta records at or after it.
* ``persisted`` is how many log records the backing file already holds; records after
  it are pending appends. ``layers_modified`` says the layers changed since loading, so a
  writer must rewrite the file instead of appending.
* ``log_range`` is an RFC 9162 compact range over the leaf hashes (``leaf_hash(record
  bytes)``) of log records ``[0, log_range.size)``. A loader that keeps only the log tail
  sets it to cover at least the first ``log_base`` records; otherwise the engine builds
  it from ``records`` when a log root is first needed.
* ``extras`` holds extension state (e.g. ``"snn"``) as CBOR-encodable data with text keys.

Every operation that changes the layers (consolidate, transitions, decay, prune,
crystallize, reinforce, weaken, warm) appends an Event saying what it did. Binding the
state — ``log_size`` and ``log_root`` of the log before a record and the ``state_digest``
of the layers — costs a pass over every entry, so it happens once per commit, not per
operation: consolidation binds in its own event, and :meth:`Thermogram.bind_state` (which
``store.commit`` and ``store.create`` call) appends one ``Event(kind="bind")`` when
layer-changing events were appended since the last binding. So every committed layer
state is covered by a digest in the log, and a verifier checks the layers against it.

Operations keep a private index (key → newest dirty delta, dirty count and size) so a
read is O(1) whatever the log length. Loaders that fill ``records``/``dirty_start``
directly need do nothing: the index notices the log grew or changed shape and catches
up; after editing records *in place*, call :meth:`Thermogram.reindex`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, overload

from thermo_cli.codec import records as _records
from thermo_cli.codec.fastrecords import PlainDeltas, SealedRun, seal_plain
from thermo_cli.config.clock import Clock, current_clock
from thermo_cli.config.engine import ConsolidationPolicy, PlasticityRule, ThermalConfig
from thermo_cli.config.maps import plasticity_to_map, policy_to_map, thermal_to_map
from thermo_cli.engine import chain, transitions
from thermo_cli.engine.chain import ChainCheck
from thermo_cli.engine.consolidation import ConsolidationReport, fold, prune_hot
from thermo_cli.engine.readonly import ReadOnlyMap, SetOnce
from thermo_cli.engine.transitions import TransitionReport
from thermo_cli.errors import ChainError, NotFoundError, ValidationError
from thermo_cli.integrity import merkle
from thermo_cli.integrity.digest import StateDigester
from thermo_cli.integrity.metadigest import meta_digest, value_digest
from thermo_cli.integrity.state import (
    BIND_KIND,
    CONFIGURE_KIND,
    EXTENSION_KIND,
    NON_LAYER_KINDS,
    RENAME_KIND,
    is_binding,
)
from thermo_cli.model import (
    MAX_KEY_BYTES,
    Delta,
    DeltaType,
    Entry,
    Event,
    Layer,
    LogRecord,
    Metadata,
    ReadResult,
    TensorSpec,
    Ternary,
    datetime_to_ns,
    new_id,
)

if TYPE_CHECKING:
    import numpy as np

    Value = bytes | np.ndarray
    """What a delta's value may be given as: bytes, or an array stored as a tensor entry."""

_LAYERS = tuple(Layer)
_DELETE = DeltaType.DELETE
DIRTY_OVERHEAD_BYTES = 200
"""Per-delta overhead in the crate's dirty-size estimate (len(value) + len(key) + 200)."""


def _empty_layers() -> dict[Layer, MutableMapping[str, Entry]]:
    return {layer: {} for layer in Layer}


_UNSTAMPED = Metadata(created_at_ns=0, last_consolidation_ns=0)
"""What a new thermogram's metadata starts as: a default factory cannot see the ``clock``
field, so ``__post_init__`` replaces it with metadata stamped by the thermogram's clock."""


def _unstamped_meta() -> Metadata:
    return _UNSTAMPED


def _tensor_value(key: str, value: Any, tensor: TensorSpec | None) -> tuple[bytes, TensorSpec]:
    """An array given as a value → its bytes and raw TensorSpec (codec.tensors, imported here
    so a thermogram that only ever holds bytes never loads numpy)."""
    if tensor is not None:
        raise ValidationError(f"{key}: tensor: give a TensorSpec only with a bytes value, not with an array")
    if type(value).__module__.partition(".")[0] != "numpy" or not hasattr(value, "dtype"):
        raise ValidationError(f"{key}: value: expected bytes or a numpy array, got {type(value).__name__}")
    from thermo_cli.codec.tensors import array_to_value

    try:
        return array_to_value(value)
    except ValidationError as exc:
        raise ValidationError(f"{key}: {exc}") from None


def _timestamp(value: int | datetime | None, clock: Clock) -> int:
    if value is None:
        return clock()
    if isinstance(value, datetime):
        return datetime_to_ns(value)
    return value


def _layer(value: Layer | str | int) -> Layer:
    if isinstance(value, Layer):
        return value
    if isinstance(value, str):
        return Layer.parse(value)
    try:
        return Layer(value)
    except ValueError:
        raise ValidationError(f"layer: expected hot, warm, cool or cold, got {value!r}") from None


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < float("inf"):
        raise ValidationError(f"amount: expected a finite number >= 0, got {value!r}")
    return float(value)


def _key_size(d: Delta) -> int:
    """The key's UTF-8 size, refused above MAX_KEY_BYTES (the one check a parser's limits
    may have set differently)."""
    key = d.key
    n = len(key) if key.isascii() else len(key.encode("utf-8"))
    if n > MAX_KEY_BYTES:
        raise ValidationError(f"key: {n} bytes exceeds the maximum of {MAX_KEY_BYTES} bytes")
    return n


@dataclass(slots=True)
class ThermogramStats:
    """Counts that describe a thermogram without reading any value."""

    name: str
    id: str
    total_keys: int
    entries: dict[str, int]
    dirty_deltas: int
    dirty_bytes: int
    log_records: int
    total_deltas: int
    total_consolidations: int
    created_at_ns: int
    last_consolidation_ns: int
    head_hash: str | None

    @property
    def total_entries(self) -> int:
        return sum(self.entries.values())


@dataclass(slots=True)
class CrystallizationResult:
    crystallized: int = 0
    merged: int = 0


class _Log:
    """The ``records`` field: the log as a list, with runs of plain deltas kept sealed.

    :meth:`Thermogram.apply_plain` appends :class:`~thermo_cli.codec.fastrecords.SealedRun`
    columns to a pending list instead of a Delta object per record; reading ``records``
    turns them into Deltas first, so every reader sees the plain list it always did, while
    an apply that only commits (the writer reads :meth:`Thermogram.log_tail`) never builds
    them. Assigning ``records`` replaces the whole log, pending runs included.
    """

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Log: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> list[LogRecord]: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        if state["_pending"]:
            obj._materialize()  # type: ignore[attr-defined]
        return state["_records"]

    def __set__(self, obj: object, value: list[LogRecord]) -> None:
        state = obj.__dict__
        state["_pending"] = []
        state["_records"] = [] if isinstance(value, _Log) else value


def _pending_count(state: dict[str, Any]) -> int:
    """How many records the pending sealed runs of a thermogram's state hold."""
    return sum(map(len, state["_pending"]))


class LogTail:
    """The log records from one index on, as held in memory: Delta/Event objects first,
    then sealed runs of plain deltas (:meth:`Thermogram.log_tail`, for the writer)."""

    __slots__ = ("records", "runs")

    def __init__(self, records: list[LogRecord], runs: list[SealedRun]) -> None:
        self.records = records
        self.runs = runs

    def __len__(self) -> int:
        return len(self.records) + sum(map(len, self.runs))

    def encoded_runs(self) -> list[bytes]:
        """The record bytes of the runs, in order."""
        out: list[bytes] = []
        for run in self.runs:
            out += run.encoded
        return out

    def delta_keys(self) -> list[str | None]:
        """Each record's key (None for an event), in order."""
        keys: list[str | None] = [r.key if type(r) is Delta else None for r in self.records]
        for run in self.runs:
            keys += run.keys
        return keys


_NAME: SetOnce[str] = SetOnce(lambda: "thermogram", "rename()")
_ID: SetOnce[str] = SetOnce(new_id, "a new thermogram (the id never changes)")
_THERMAL: SetOnce[ThermalConfig] = SetOnce(ThermalConfig, "set_thermal()")
_PLASTICITY: SetOnce[PlasticityRule] = SetOnce(PlasticityRule, "set_plasticity()")
_POLICY: SetOnce[ConsolidationPolicy] = SetOnce(ConsolidationPolicy, "set_policy()")
_EXTRAS = ReadOnlyMap(dict, "set_extra() / remove_extra()")
"""Field descriptors (:mod:`thermo_cli.engine.readonly`): settable by ``__init__`` only."""


@dataclass(eq=False)
class Thermogram:
    # name, id, configuration and extension state: set once here, then only by the methods
    # that log the change (rename, set_thermal, set_plasticity, set_policy, set_extra)
    name: SetOnce[str] = _NAME
    id: SetOnce[str] = _ID
    thermal: SetOnce[ThermalConfig] = _THERMAL
    plasticity: SetOnce[PlasticityRule] = _PLASTICITY
    policy: SetOnce[ConsolidationPolicy] = _POLICY
    meta: Metadata = field(default_factory=_unstamped_meta)
    layers: dict[Layer, MutableMapping[str, Entry]] = field(default_factory=_empty_layers)
    records: _Log = _Log()
    """The log records held in memory, oldest first (a list; see :class:`_Log`)."""
    log_base: int = 0
    head_hash: str | None = None
    dirty_start: int = 0
    persisted: int = 0
    layers_modified: bool = False
    extras: ReadOnlyMap = _EXTRAS
    log_range: merkle.CompactRange | None = None
    clock: Clock | None = field(default=None, repr=False)
    """Where this thermogram reads the time; None: the context's clock at each read."""

    # private index of the dirty deltas (see the module docstring)
    _latest: dict[str, Delta] = field(default_factory=dict, init=False, repr=False)
    _dirty_count: int = field(default=0, init=False, repr=False)
    _dirty_bytes: int = field(default=0, init=False, repr=False)
    _idx_list: list[LogRecord] | None = field(default=None, init=False, repr=False)
    _idx_to: int = field(default=-1, init=False, repr=False)
    _idx_start: int = field(default=-1, init=False, repr=False)
    _idx_base: int = field(default=-1, init=False, repr=False)
    _trigger_policy: ConsolidationPolicy | None = field(default=None, init=False, repr=False)
    _triggers: tuple[int | None, int | None, int | None] = field(
        default=(None, None, None), init=False, repr=False
    )
    _digester: StateDigester = field(default_factory=StateDigester, init=False, repr=False)
    _unbound: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    """Kind → count of the layer-changing events appended since the last state binding."""
    _meta_events: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    """Kind → count of the meta-changing events appended since the last state binding."""
    _auto_suspended: int = field(default=0, init=False, repr=False)
    _meta_bound: bytes = field(default=b"", init=False, repr=False)
    """The meta digest as of the last binding (or as constructed/loaded): a commit whose
    meta digest differs ends with a binding record."""

    def __post_init__(self) -> None:
        if self.meta is _UNSTAMPED:
            t = self.now_ns()
            self.meta = Metadata(created_at_ns=t, last_consolidation_ns=t)
        self._meta_bound = self.meta_digest()

    def now_ns(self) -> int:
        """The current time by this thermogram's clock: every stamp it writes comes from here."""
        return (self.clock or current_clock())()

    @property
    def log_length(self) -> int:
        state = self.__dict__
        return self.log_base + len(state["_records"]) + _pending_count(state)

    def log_tail(self, start: int) -> LogTail:
        """Records ``start`` onwards (``log_base <= start <= log_length``) without building
        Delta objects for the sealed runs of :meth:`apply_plain` (the writer's view)."""
        state = self.__dict__
        held = state["_records"]
        at = start - self.log_base
        if not 0 <= at <= len(held) + _pending_count(state):
            raise ValidationError(f"log_tail: start {start} is outside the records held in memory")
        if at <= len(held):
            return LogTail(held[at:], list(state["_pending"]))
        return LogTail(self.records[at:], [])  # starts inside a run: as Delta objects

    def last_record_hash(self) -> str | None:
        """The hash of the newest record held in memory (None when none is)."""
        state = self.__dict__
        if state["_pending"]:
            head: str = state["_pending"][-1].head
            return head
        held = state["_records"]
        return held[-1].hash if held else None

    def _materialize(self) -> None:
        """Turn the pending sealed runs into Delta objects at the end of ``records``."""
        state = self.__dict__
        runs = state["_pending"]
        state["_pending"] = []
        held = state["_records"]
        latest = self._latest
        for run in runs:
            new = run.deltas()
            held += new
            latest.update(zip(run.keys, new, strict=True))

    # --- the dirty index ---------------------------------------------------------------

    def reindex(self) -> None:
        """Rebuild the dirty-delta index from ``records`` (after in-place edits)."""
        if self.dirty_start < self.log_base:
            raise ChainError(
                f"log: dirty deltas from index {self.dirty_start} are not loaded "
                f"(records start at {self.log_base})"
            )
        self._latest = {}
        self._dirty_count = 0
        self._dirty_bytes = 0
        self._idx_list = self.records
        self._idx_start = self.dirty_start
        self._idx_base = self.log_base
        self._idx_to = self.dirty_start
        self._index_tail()

    def _index_tail(self) -> None:
        latest = self._latest
        count = 0
        size = 0
        start = max(self._idx_to, self.dirty_start) - self.log_base
        for rec in self.records[start:]:
            if type(rec) is Delta:
                latest[rec.key] = rec
                count += 1
                size += len(rec.value) + len(rec.key.encode("utf-8")) + DIRTY_OVERHEAD_BYTES
        self._dirty_count += count
        self._dirty_bytes += size
        self._idx_to = self.log_base + len(self.records)

    def _index_in_step(self) -> bool:
        """The dirty index was built for this log list, consolidation point and base."""
        return (
            self.__dict__["_records"] is self._idx_list
            and self._idx_start == self.dirty_start
            and self._idx_base == self.log_base
        )

    def _sync(self) -> None:
        if self.__dict__["_pending"]:
            self._materialize()
        if self._index_in_step():
            to = self._idx_to
            n = self.log_base + len(self.records)
            if to == n:
                return
            if to < n:
                self._index_tail()
                return
        self.reindex()

    # --- applying deltas ---------------------------------------------------------------

    def apply(self, delta: Delta) -> Delta:
        """Validate, link, hash and append one delta; then check the auto-consolidation policy.

        A delta without ``prev_hash`` is linked to the current head; one whose
        ``prev_hash`` names anything else is refused with ChainError (so two writers
        cannot silently fork the chain). Fields are normalised in place (strength to
        float32). Raises ValidationError naming the bad field; nothing changes then.
        Returns the delta, sealed.
        """
        self._sync()
        key_bytes = chain.validate_delta(delta)
        chain.link(delta, self.head_hash)
        chain.seal_linked(delta)
        self._append_delta(delta, key_bytes)
        self._auto_consolidate()
        return delta

    def apply_many(self, deltas: Iterable[Delta], *, validated: bool = False) -> list[Delta]:
        """Apply deltas in order (like repeated :meth:`apply`, with less overhead).

        Stops at the first refused delta with its error; the ones before it stay applied.

        ``validated=True`` is for deltas built by a strict (non-lenient)
        :class:`thermo_cli.formats.jsonl.DeltaParser`, which calls the same model field checks
        as :func:`~thermo_cli.engine.chain.validate_delta` (tests/formats/test_jsonl_parity.py
        holds them to accepting the same deltas): re-checking would cost a third of an apply.
        Only the key's size cap is checked again, and linking and hashing are unchanged.
        Library callers with deltas from anywhere else keep the default.
        """
        self._sync()
        validate = _key_size if validated else chain.validate_delta
        link, seal = chain.link, chain.seal_linked
        append, auto = self._append_delta, self._auto_consolidate
        done: list[Delta] = []
        for delta in deltas:
            key_bytes = validate(delta)
            link(delta, self.head_hash)
            seal(delta)
            append(delta, key_bytes)
            done.append(delta)
            auto()
        return done

    def apply_plain(self, batch: PlainDeltas) -> int:
        """Apply a run of plain deltas parsed and encoded ahead (:class:`PlainDeltas`).

        The same records, hashes and state as :meth:`apply_many` of the equivalent
        Delta objects with ``validated=True`` (the batch comes from a strict parser),
        with the per-delta work cut to one join and one hash: runs between the points
        where the consolidation policy may fire are sealed and appended as a whole, and
        the policy is checked exactly where :meth:`apply_many` checks it (after every
        delta when a time or size trigger could fire, so a test clock is read as often).
        Stops at the first refused delta with its error (the ones before it stay
        applied). Returns the number of deltas applied.
        """
        if not self.__dict__["_pending"] or not self._index_in_step():
            self._sync()  # (pending runs extend an index that was in step when they were added)
        n = len(batch)
        sizes = batch.key_sizes
        refused = n
        if n and max(sizes) > MAX_KEY_BYTES:
            refused = next(i for i, size in enumerate(sizes) if size > MAX_KEY_BYTES)
        start = 0
        while start < refused:
            stop, due = self._plain_run_end(batch, start, refused)
            self._append_plain(batch, start, stop)
            start = stop
            if due:
                self.consolidate()
        if refused < n:  # as apply_many: the deltas before the refused one stay applied
            raise ValidationError(f"key: {sizes[refused]} bytes exceeds the maximum of {MAX_KEY_BYTES} bytes")
        return n

    def _plain_run_end(self, batch: PlainDeltas, start: int, n: int) -> tuple[int, bool]:
        """(end of the run from ``start``, whether the policy fires after its last delta).

        The policy's test is made for each delta in turn, as :meth:`_auto_consolidate`
        makes it after each applied delta — the clock is read exactly when it would be —
        but without applying them one by one; a count-only policy is plain arithmetic.
        """
        if self._auto_suspended:
            return n, False
        count, period, size = self._current_triggers()
        dirty = self._dirty_count
        if period is None and size is None:
            if count is None:
                return n, False
            stop = min(n, start + max(1, count - dirty))
            return stop, dirty + stop - start >= count
        dirty_bytes = self._dirty_bytes
        values, key_sizes = batch.values, batch.key_sizes
        for i in range(start, n):
            dirty += 1
            dirty_bytes += len(values[i]) + key_sizes[i] + DIRTY_OVERHEAD_BYTES
            if (
                (count is not None and dirty >= count)
                or (size is not None and dirty_bytes >= size)
                or (period is not None and self.now_ns() - self.meta.last_consolidation_ns >= period)
            ):
                return i + 1, True
        return n, False

    def _append_plain(self, batch: PlainDeltas, start: int, stop: int) -> None:
        """Seal deltas ``start:stop`` after the head and append them as one pending run
        (like ``_append_delta`` for each; see :class:`_Log`)."""
        run = seal_plain(batch, start, stop, self.head_hash)
        count = stop - start
        self.__dict__["_pending"].append(run)
        self.head_hash = run.head
        self._dirty_count += count
        self._dirty_bytes += (
            sum(map(len, batch.values[start:stop]))
            + sum(batch.key_sizes[start:stop])
            + DIRTY_OVERHEAD_BYTES * count
        )
        self._idx_to += count
        self.meta.total_deltas += count

    def _append_delta(self, d: Delta, key_bytes: int) -> None:
        self.records.append(d)
        self.head_hash = d.hash
        self._latest[d.key] = d
        self._dirty_count += 1
        self._dirty_bytes += len(d.value) + key_bytes + DIRTY_OVERHEAD_BYTES
        self._idx_to += 1
        self.meta.total_deltas += 1

    def append_event(
        self,
        kind: str,
        fields: dict[str, Any] | None = None,
        *,
        bind: bool = False,
        timestamp_ns: int | None = None,
    ) -> Event:
        """Append an event record linked to the head and return it (sealed).

        For whatever changes a thermogram outside the engine's own operations (imports,
        migrations, quantization, checkpoints, signatures), so every change is on the
        chain. With ``bind`` the event also binds the state like a consolidation does:
        ``log_size`` and ``log_root`` of the log before it and the ``state_digest`` of
        the layers now — what ``thermo verify`` checks the layers against. Without it, an
        event of any kind but ``checkpoint``/``signature`` counts as a layer change that
        the next :meth:`bind_state` (at commit) binds. Appending an event does not mark
        the layers modified: the caller that changed them does.
        """
        fields = dict(fields or {})
        if bind:
            fields.update(self._binding(self._log_point()))
        elif is_binding(fields):  # the caller bound the state itself (e.g. ``thermo checkpoint``)
            fields.setdefault("meta_digest", self.meta_digest())
            self._bound_now(fields["meta_digest"])
        elif kind not in NON_LAYER_KINDS:
            self._unbound[kind] = self._unbound.get(kind, 0) + 1
        ev = self._append_event(kind, self.now_ns() if timestamp_ns is None else timestamp_ns, fields)
        if is_binding(fields):
            self._close_clean_tail()
        return ev

    def _close_clean_tail(self) -> None:
        """After a binding record: with no uncommitted delta, the record is a consolidation
        point of nothing (spec §9.5), so the tail starts after it.

        An import or a run of reinforce/tick commits then leaves no uncommitted records
        behind for every later load to decode, and nothing is folded, pruned or moved.
        """
        self._sync()
        if self._dirty_count:
            return
        self.dirty_start = self.log_length
        self._latest = {}
        self._dirty_bytes = 0
        self._idx_start = self.dirty_start
        self._idx_to = self.dirty_start

    @property
    def state_unbound(self) -> bool:
        """Layer-changing events were appended since the last record that binds the state."""
        return bool(self._unbound)

    def bind_state(self) -> Event | None:
        """Bind the current layer state into the log if layer changes are not bound yet.

        Appends ``Event(kind="bind", fields={"events": n, "kinds": [...], "log_size",
        "log_root", "state_digest"})`` covering the ``n`` layer-changing events since the
        last binding, and returns it; returns None when nothing needs binding. Layer
        operations log themselves cheaply and leave binding to this one call per commit
        (``store.commit`` and ``store.create`` make it), so a run of operations costs one
        pass over the entries, not one each.
        """
        if not self._unbound and not self.meta_unbound:
            return None
        changes = {**self._unbound, **self._meta_events}
        fields: dict[str, Any] = {"events": sum(changes.values()), "kinds": sorted(changes)}
        fields.update(self._binding(self._log_point()))
        ev = self._append_event(BIND_KIND, self.now_ns(), fields)
        self._close_clean_tail()
        return ev

    def _append_event(self, kind: str, timestamp_ns: int, fields: dict[str, Any]) -> Event:
        self._sync()
        ev = chain.new_event(kind, timestamp_ns, fields, self.head_hash)
        self.records.append(ev)
        self.head_hash = ev.hash
        self._idx_to += 1
        return ev

    def _log_point(self) -> tuple[int, bytes]:
        """(size, Merkle root) of the log so far. Consolidation takes it *before* it changes
        anything: it is the one step that can fail (a tail-loaded log without its compact
        range)."""
        return self.log_length, self.log_root()

    def _binding(self, point: tuple[int, bytes]) -> dict[str, Any]:
        size, root = point
        meta = self.meta_digest()
        binding = {
            "log_size": size,
            "log_root": root,
            "state_digest": self.state_digest(),
            "meta_digest": meta,
        }
        self._bound_now(meta)
        return binding

    def _bound_now(self, meta: bytes) -> None:
        """A binding record was appended: nothing is pending any more."""
        self._unbound.clear()
        self._meta_events.clear()
        self._meta_bound = meta

    @contextlib.contextmanager
    def auto_consolidation_suspended(self) -> Iterator[None]:
        """Apply deltas without auto-consolidating for the length of the block (a batch
        that consolidates once at its end); the policy itself is unchanged and not logged."""
        self._auto_suspended += 1
        try:
            yield
        finally:
            self._auto_suspended -= 1

    def _current_triggers(self) -> tuple[int | None, int | None, int | None]:
        """The policy's (count, period, size) thresholds, recomputed when the policy changed."""
        policy = self.policy
        if policy is not self._trigger_policy:
            self._triggers = policy.thresholds()
            self._trigger_policy = policy
        return self._triggers

    def _auto_consolidate(self) -> None:
        if self._auto_suspended:
            return
        count, period, size = self._current_triggers()
        if (
            (count is not None and self._dirty_count >= count)
            or (size is not None and self._dirty_bytes >= size)
            or (period is not None and self.now_ns() - self.meta.last_consolidation_ns >= period)
        ):
            self.consolidate()

    def _delta(
        self,
        op: DeltaType,
        key: str,
        value: Value,
        strength: float | None,
        ternary: Ternary | int | None,
        source: str,
        observation_count: int | None,
        custom: Any,
        tensor: TensorSpec | None,
        timestamp_ns: int | datetime | None,
    ) -> Delta:
        if ternary is not None:
            ternary = Ternary.coerce(ternary, "ternary")
            if strength is None:
                strength = float(ternary)
        if not isinstance(value, bytes | bytearray | memoryview):
            value, tensor = _tensor_value(key, value, tensor)
        d = Delta(
            op,
            key,
            value,
            1.0 if strength is None else strength,
            _timestamp(timestamp_ns, self.now_ns),
            source,
            chain.fast_id(),
            ternary,
            observation_count,
            custom,
            tensor,
        )
        return self.apply(d)

    def create(
        self,
        key: str,
        value: Value,
        *,
        strength: float | None = None,
        ternary: Ternary | int | None = None,
        source: str = "thermo",
        observation_count: int | None = None,
        custom: Any = None,
        tensor: TensorSpec | None = None,
        timestamp_ns: int | datetime | None = None,
    ) -> Delta:
        """Apply a Create delta linked to the head (strength 1.0, or the ternary value)."""
        return self._delta(
            DeltaType.CREATE,
            key,
            value,
            strength,
            ternary,
            source,
            observation_count,
            custom,
            tensor,
            timestamp_ns,
        )

    def update(
        self,
        key: str,
        value: Value,
        *,
        strength: float | None = None,
        ternary: Ternary | int | None = None,
        source: str = "thermo",
        observation_count: int | None = None,
        custom: Any = None,
        tensor: TensorSpec | None = None,
        timestamp_ns: int | datetime | None = None,
    ) -> Delta:
        """Apply an Update delta linked to the head (strength 1.0 unless given)."""
        return self._delta(
            DeltaType.UPDATE,
            key,
            value,
            strength,
            ternary,
            source,
            observation_count,
            custom,
            tensor,
            timestamp_ns,
        )

    def merge(
        self,
        key: str,
        value: Value,
        *,
        strength: float | None = None,
        ternary: Ternary | int | None = None,
        source: str = "thermo",
        observation_count: int | None = None,
        custom: Any = None,
        tensor: TensorSpec | None = None,
        timestamp_ns: int | datetime | None = None,
    ) -> Delta:
        """Apply a Merge delta linked to the head (strength 1.0 unless given)."""
        return self._delta(
            DeltaType.MERGE,
            key,
            value,
            strength,
            ternary,
            source,
            observation_count,
            custom,
            tensor,
            timestamp_ns,
        )

    def delete(
        self,
        key: str,
        *,
        source: str = "thermo",
        custom: Any = None,
        timestamp_ns: int | datetime | None = None,
    ) -> Delta:
        """Apply a Delete delta (empty value, strength 1.0) linked to the head."""
        return self._delta(DeltaType.DELETE, key, b"", 1.0, None, source, None, custom, None, timestamp_ns)

    # --- reading -----------------------------------------------------------------------

    def read(self, key: str) -> bytes | None:
        """The key's value: newest uncommitted delta first (Delete → None), then hot→cold."""
        self._sync()
        d = self._latest.get(key)
        if d is not None:
            return None if d.delta_type is _DELETE else d.value
        layers = self.layers
        for layer in _LAYERS:
            e = layers[layer].get(key)
            if e is not None:
                return e.value
        return None

    def read_entry(self, key: str) -> ReadResult | None:
        """Like :meth:`read`, with strength, ternary, tensor spec and where it came from."""
        self._sync()
        d = self._latest.get(key)
        if d is not None:
            if d.delta_type is _DELETE:
                return None
            return ReadResult(key, d.value, d.strength, "dirty", d.ternary, d.tensor, None)
        for layer in _LAYERS:
            e = self.layers[layer].get(key)
            if e is not None:
                return ReadResult(key, e.value, e.strength, layer.label, e.ternary, e.tensor, e.update_count)
        return None

    def keys(self, layer: Layer | str | None = None) -> list[str]:
        """Sorted keys that :meth:`read` finds; with ``layer``, that layer's keys only."""
        if layer is not None:
            return sorted(self.layers[_layer(layer)].keys())
        self._sync()
        found: set[str] = set()
        for mapping in self.layers.values():
            found.update(mapping.keys())
        for key, d in self._latest.items():
            if d.delta_type is _DELETE:
                found.discard(key)
            else:
                found.add(key)
        return sorted(found)

    def __iter__(self) -> Iterator[str]:
        """Iterate over :meth:`keys` (sorted visible keys)."""
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        """``key in tg``: :meth:`read` finds it."""
        return isinstance(key, str) and self.read(key) is not None

    def __len__(self) -> int:
        """How many keys :meth:`read` finds (``len(tg.keys())``)."""
        return len(self.keys())

    def __bool__(self) -> bool:
        """Always true: an empty thermogram is still a state with a log and configuration,
        so ``if tg:`` keeps meaning "there is a thermogram", as before ``__len__`` existed."""
        return True

    def __getitem__(self, key: str) -> bytes | np.ndarray:
        """``tg[key]``: what :meth:`read` finds, a tensor entry as its numpy array (BF16/F8
        as ``ml_dtypes`` types when installed); KeyError (NotFoundError) when absent."""
        found = self.read_entry(key) if isinstance(key, str) else None
        if found is None:
            raise NotFoundError(f"{key!r}: no such key")
        if found.tensor is None:
            return found.value
        from thermo_cli.codec.tensors import value_to_array, with_element_type

        return with_element_type(value_to_array(found.value, found.tensor), found.tensor.dtype)

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release the files the layers read from (a thermogram loaded from a container keeps
        its file open for lazy reads). Idempotent; reading a lazy layer afterwards fails."""
        for mapping in self.layers.values():
            closer = getattr(mapping, "close", None)
            if callable(closer):
                closer()

    def __enter__(self) -> Thermogram:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        """``with store.load(path) as tg:`` closes the file when the block ends."""
        self.close()
        return False

    def history(self, key: str) -> list[Delta]:
        """Every loaded delta for ``key``, oldest first, consolidated ones included."""
        return [r for r in self.records if type(r) is Delta and r.key == key]

    def dirty_deltas(self) -> list[Delta]:
        """The uncommitted deltas (after the last consolidation point), oldest first."""
        self._sync()
        start = self.dirty_start - self.log_base
        return [r for r in self.records[start:] if type(r) is Delta]

    @property
    def dirty_count(self) -> int:
        self._sync()
        return self._dirty_count

    @property
    def dirty_bytes(self) -> int:
        """The crate's estimate of the dirty size: sum of len(value) + len(key) + 200."""
        self._sync()
        return self._dirty_bytes

    # --- consolidation -----------------------------------------------------------------

    def consolidate(self) -> ConsolidationReport:
        """Fold the dirty deltas into the hot layer, prune, crystallize, and log the point.

        The deltas stay in the log; an ``Event(kind="consolidate")`` records the counts,
        the log size and Merkle root up to this point, and the digest of the resulting
        layer state, and becomes the new consolidation point.
        """
        self._sync()
        now = self.now_ns()
        report = ConsolidationReport(timestamp_ns=now)
        point = self._log_point()
        fold(self.dirty_deltas(), self.layers, self.plasticity, report)
        if self.policy.enable_pruning:
            report.pruned_keys = prune_hot(self.layers[Layer.HOT], self.plasticity)
            report.pruned = len(report.pruned_keys)
        report.crystallized, report.crystal_merged = transitions.crystallize(self.layers, self.thermal)
        report.entries_after = sum(len(m) for m in self.layers.values())
        binding = self._binding(point)
        report.log_size, report.log_root, report.state_digest = (
            binding["log_size"],
            binding["log_root"],
            binding["state_digest"],
        )
        self.meta.last_consolidation_ns = now
        self.meta.total_consolidations += 1
        self._append_event(
            "consolidate",
            now,
            {
                "processed": report.processed,
                "created": report.created,
                "updated": report.updated,
                "merged": report.merged,
                "deleted": report.deleted,
                "pruned": report.pruned,
                "crystallized": report.crystallized,
                "crystal_merged": report.crystal_merged,
                "entries": report.entries_after,
                **binding,
            },
        )
        self.dirty_start = self.log_length
        self._latest = {}
        self._dirty_count = 0
        self._dirty_bytes = 0
        self._idx_start = self.dirty_start
        self._idx_to = self.dirty_start
        self.layers_modified = True
        return report

    def state_digest(self) -> bytes:
        """Merkle root over every entry of the four layers (``audit.state.state_digest``),
        reusing the leaf hashes of entries unchanged since the last call."""
        return self._digester.digest(self.layers)

    def log_root(self) -> bytes:
        """RFC 9162 Merkle root over the bytes of every log record so far (32 bytes)."""
        rng = self.log_range
        n = self.log_length
        if rng is None or rng.size > n:
            if self.log_base:
                raise ChainError(
                    f"log: records before index {self.log_base} are not loaded and no "
                    f"compact range covers them"
                )
            rng = self.log_range = merkle.CompactRange()
        if rng.size < self.log_base:
            raise ChainError(
                f"log: compact range covers {rng.size} records but records start at {self.log_base}"
            )
        leaf = merkle.leaf_hash
        encode = _records.encode_record
        rng.extend(
            [
                leaf(rec.encoded if rec.encoded is not None else encode(rec))
                for rec in self.records[rng.size - self.log_base :]
            ]
        )
        return rng.root()

    def crystallize(self) -> CrystallizationResult:
        """Legacy hot→cold step (also run at the end of every consolidation)."""
        created, merged = transitions.crystallize(self.layers, self.thermal)
        if created or merged:
            self._changed("crystallize", {"crystallized": created, "merged": merged})
        return CrystallizationResult(created, merged)

    # --- thermal operations --------------------------------------------------------------

    def _changed(self, kind: str, fields: dict[str, Any], now: int | None = None) -> None:
        """Log a layer change (unbound: :meth:`bind_state` binds the state once per commit)."""
        self._append_event(kind, self.now_ns() if now is None else now, fields)
        self._unbound[kind] = self._unbound.get(kind, 0) + 1
        self.layers_modified = True

    def run_thermal_transitions(self) -> TransitionReport:
        """Promote, demote and prune across the four layers (ENGINE.md order)."""
        now = self.now_ns()
        report = transitions.run_transitions(self.layers, self.thermal, now)
        if report.total_promoted or report.total_demoted or report.pruned:
            self._changed(
                "transitions",
                {"promoted": list(report.promoted), "demoted": list(report.demoted), "pruned": report.pruned},
                now,
            )
        return report

    def apply_decay(self) -> int:
        """Decay every entry by its layer's rate; returns how many entries were decayed."""
        count = transitions.apply_decay(self.layers, self.thermal)
        if count:
            self._changed("decay", {"entries": count, "rates": list(self.thermal.decay_rates)})
        return count

    def prune(self) -> int:
        """Remove entries below the thermal prune threshold from every layer."""
        removed = transitions.prune(self.layers, self.thermal.prune_threshold)
        if removed:
            self._changed("prune", {"threshold": float(self.thermal.prune_threshold), "pruned": len(removed)})
        return len(removed)

    def _find(self, key: str) -> tuple[Layer, Entry]:
        found = transitions.find(self.layers, key)
        if found is None:
            self._sync()
            hint = " (it has only uncommitted deltas: consolidate first)" if key in self._latest else ""
            raise NotFoundError(f"key {key!r} is in no layer{hint}")
        return found

    def reinforce(self, key: str, amount: float) -> tuple[Layer, Entry]:
        """Strengthen the hottest entry for ``key``: min(1, s + amount), one more update."""
        amount = _amount(amount)
        self._sync()
        layer, entry = self._find(key)
        now = self.now_ns()
        transitions.reinforce(entry, amount, now)
        self._changed(
            "reinforce", {"key": key, "amount": amount, "layer": layer.label, "strength": entry.strength}, now
        )
        return layer, entry

    def weaken(self, key: str, amount: float) -> tuple[Layer, Entry]:
        """Weaken the hottest entry for ``key``: max(0, s − amount)."""
        amount = _amount(amount)
        self._sync()
        layer, entry = self._find(key)
        now = self.now_ns()
        transitions.weaken(entry, amount, now)
        self._changed(
            "weaken", {"key": key, "amount": amount, "layer": layer.label, "strength": entry.strength}, now
        )
        return layer, entry

    def warm(self, key: str) -> bool:
        """Bring a cold entry back to hot (legacy); False if disabled or not in cold."""
        now = self.now_ns()
        if not transitions.warm(self.layers, key, self.thermal, now):
            return False
        entry = self.layers[Layer.HOT][key]
        self._changed("warm", {"keys": [key], "strength": entry.strength}, now)
        return True

    def warm_matching(self, pattern: str, *, regex: bool = False) -> list[str]:
        """Warm every cold key matching ``pattern``; returns the warmed keys, sorted.

        By default ``pattern`` is a shell glob matched against the whole key, case
        sensitive (``*`` and ``?`` also match ``/``); with ``regex=True`` it is a Python
        regular expression searched anywhere in the key (anchor it with ``^…$``).
        """
        if not isinstance(pattern, str):
            raise ValidationError(f"pattern: expected text, got {type(pattern).__name__}")
        if regex:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValidationError(f"pattern: invalid regular expression ({exc})") from None
            match = compiled.search
        else:
            compiled = re.compile(fnmatch.translate(pattern))
            match = compiled.match
        if not self.thermal.allow_warming:
            return []
        now = self.now_ns()
        chosen = sorted(k for k in self.layers[Layer.COLD] if match(k))
        warmed = [k for k in chosen if transitions.warm(self.layers, k, self.thermal, now)]
        if warmed:
            self._changed("warm", {"pattern": pattern, "regex": regex, "keys": warmed}, now)
        return warmed

    # --- inspection --------------------------------------------------------------------

    def stats(self) -> ThermogramStats:
        self._sync()
        return ThermogramStats(
            name=self.name,
            id=self.id,
            total_keys=len(self.keys()),
            entries={layer.label: len(self.layers[layer]) for layer in Layer},
            dirty_deltas=self._dirty_count,
            dirty_bytes=self._dirty_bytes,
            log_records=self.log_length,
            total_deltas=self.meta.total_deltas,
            total_consolidations=self.meta.total_consolidations,
            created_at_ns=self.meta.created_at_ns,
            last_consolidation_ns=self.meta.last_consolidation_ns,
            head_hash=self.head_hash,
        )

    def verify_chain(self) -> ChainCheck:
        """Recompute every in-memory record's hash from its fields and check every link."""
        return chain.verify_records(self.records, base=self.log_base, head_hash=self.head_hash)

    # --- changes made from outside the engine ----------------------------------------------
    # Importers, converters and the store change a thermogram through these methods rather
    # than by assigning its fields, so the bookkeeping a writer relies on (``layers_modified``
    # forces a rewrite, ``persisted`` says what the file holds) cannot be forgotten.

    def put_entry(self, layer: Layer | str | int, entry: Entry) -> None:
        """Store ``entry`` under its key in ``layer``; the next commit rewrites the layers.

        For importers and converters; the caller logs the change (:meth:`append_event`).
        """
        self.layers[_layer(layer)][entry.key] = entry
        self.layers_modified = True

    def replace_layer(self, layer: Layer | str | int, entries: MutableMapping[str, Entry]) -> None:
        """Make ``entries`` the whole of ``layer``; the next commit rewrites the layers."""
        self.layers[_layer(layer)] = entries
        self.layers_modified = True

    def mark_layers_changed(self) -> None:
        """Say that a layer mapping was changed in place, so a commit cannot just append."""
        self.layers_modified = True

    def set_policy(self, policy: ConsolidationPolicy) -> Event | None:
        """Use ``policy`` for auto-consolidation from now on; logs a ``configure`` event
        (None when it equals the current policy, then nothing is logged)."""
        if not isinstance(policy, ConsolidationPolicy):
            raise ValidationError(f"policy: expected a ConsolidationPolicy, got {type(policy).__name__}")
        return self._configure("policy", policy, policy_to_map(policy), policy_to_map(self.policy))

    def set_thermal(self, thermal: ThermalConfig) -> Event | None:
        """Use ``thermal`` (decay, promotion, demotion, pruning) from now on; logs ``configure``."""
        if not isinstance(thermal, ThermalConfig):
            raise ValidationError(f"thermal: expected a ThermalConfig, got {type(thermal).__name__}")
        return self._configure("thermal", thermal, thermal_to_map(thermal), thermal_to_map(self.thermal))

    def set_plasticity(self, plasticity: PlasticityRule) -> Event | None:
        """Use ``plasticity`` when folding deltas from now on; logs ``configure``."""
        if not isinstance(plasticity, PlasticityRule):
            raise ValidationError(f"plasticity: expected a PlasticityRule, got {type(plasticity).__name__}")
        new, old = plasticity_to_map(plasticity), plasticity_to_map(self.plasticity)
        return self._configure("plasticity", plasticity, new, old)

    def _configure(self, attr: str, value: Any, new: dict[str, Any], old: dict[str, Any]) -> Event | None:
        """Set a configuration and log it with its new map, so the log says what the
        thermogram was told to do and the meta digest of the next binding covers it."""
        if new == old:
            return None
        self.__dict__["_" + attr] = value
        return self._meta_event(CONFIGURE_KIND, {attr: new})

    def rename(self, name: str) -> Event | None:
        """Give the thermogram a new name; logs ``rename`` (None if the name is the same)."""
        if not isinstance(name, str) or not name:
            raise ValidationError(f"name: expected non-empty text, got {name!r}")
        previous = self.name
        if name == previous:
            return None
        self.__dict__["_name"] = name
        return self._meta_event(RENAME_KIND, {"name": name, "previous": previous})

    def set_extra(self, key: str, value: Any) -> Event:
        """Store extension state (e.g. the spiking network under ``"snn"``); logs
        ``extension`` with the SHA-256 of the value's CBOR, not the value, which may be large."""
        if not isinstance(key, str) or not key:
            raise ValidationError(f"key: expected non-empty text, got {key!r}")
        digest = value_digest(value)  # refuses what the meta block could not store, before any change
        self.__dict__["_extras"][key] = value
        return self._meta_event(EXTENSION_KIND, {"key": key, "sha256": digest})

    def remove_extra(self, key: str, *, log: bool = True) -> Any:
        """Remove and return extension state ``key`` (None if absent). ``log=False`` is for
        loader state that never reached a container (a crate file's ``"legacy"`` info,
        which the ``migrate`` event records itself)."""
        extras = self.__dict__["_extras"]
        if key not in extras:
            return None
        value = extras.pop(key)
        if log:
            self._meta_event(EXTENSION_KIND, {"key": key, "sha256": None})
        return value

    def _meta_event(self, kind: str, fields: dict[str, Any]) -> Event:
        self._meta_events[kind] = self._meta_events.get(kind, 0) + 1
        return self._append_event(kind, self.now_ns(), fields)

    def meta_digest(self) -> bytes:
        """The meta digest of the current name, id, configuration, custom metadata and
        extension state (:func:`thermo_cli.integrity.metadigest.meta_digest`)."""
        return meta_digest(
            {
                "name": self.name,
                "id": self.id,
                "thermal": thermal_to_map(self.thermal),
                "plasticity": plasticity_to_map(self.plasticity),
                "policy": policy_to_map(self.policy),
                "meta": {"custom": self.meta.custom},
                "extras": self.__dict__["_extras"],
            }
        )

    @property
    def meta_unbound(self) -> bool:
        """The bound meta changed since the last binding record (or since loading)."""
        return bool(self._meta_events) or self.meta_digest() != self._meta_bound

    def restore_log(self, records: list[LogRecord], *, dirty_start: int) -> None:
        """Adopt a complete, already sealed log (a dump being imported) into an empty thermogram.

        The records must link one to the next from the start; ``dirty_start`` is the index
        of the first record after the last consolidation. No file holds any of it yet, so
        the next commit writes the thermogram whole.
        """
        if self.log_length:
            raise ChainError(f"log: already holds {self.log_length} records; restore into an empty log")
        if type(dirty_start) is not int or not 0 <= dirty_start <= len(records):
            raise ValidationError(f"dirty_start: expected 0 … {len(records)}, got {dirty_start!r}")
        head = None
        for i, rec in enumerate(records):
            if rec.prev_hash != head or rec.hash is None:
                raise ChainError(f"log: record {i} does not link to the record before it")
            head = rec.hash
        self.records = list(records)
        self.head_hash = head
        self.dirty_start = dirty_start
        self.persisted = 0
        self.layers_modified = True

    def mark_persisted(self) -> None:
        """Record that the backing file now holds exactly this state (the store, after a commit)."""
        self.persisted = self.log_length
        self.layers_modified = False
