"""Apply a JSONL delta stream to a thermogram file, all-or-nothing.

The library half of ``thermo apply``: parse every line, apply it, commit once. Without
``skip_invalid`` the first bad line raises ``line N: <reason>`` and nothing is written;
with it, bad lines are collected as messages and the rest is applied. Nothing here
prints: callers get an :class:`ApplyReport`.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from thermo_cli import store
from thermo_cli.config.limits import Limits
from thermo_cli.errors import ThermoError
from thermo_cli.formats import dump, jsonl
from thermo_cli.formats.jsonl import ByteStream
from thermo_cli.model import Delta

if TYPE_CHECKING:
    from thermo_cli.codec.fastrecords import PlainDeltas
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.integrity.merkle_worker import RangeWorker

WORKER_MIN_DELTAS = 8192
"""With ``second_core``, a stream starts its Merkle worker once it has this many plain
deltas: below that starting a process costs about as much as the hashing it would move."""


@dataclass
class ApplyReport:
    """What one apply did; ``thermogram`` is the state after it (committed unless a dry run)."""

    applied: int
    skipped: list[str] = field(default_factory=list)
    consolidations: int = 0
    dry_run: bool = False
    thermogram: Any = None

    def to_json(self) -> dict[str, Any]:
        tg = self.thermogram
        return {
            "applied": self.applied,
            "skipped": len(self.skipped),
            "consolidations": self.consolidations,
            "log_length": tg.log_length,
            "head_hash": tg.head_hash,
            "dirty_deltas": tg.dirty_count,
            "dry_run": self.dry_run,
        }


def apply_file(
    path: str,
    stream: ByteStream,
    *,
    limits: Limits,
    source: str = "thermo",
    skip_invalid: bool = False,
    auto_consolidate: bool = True,
    dry_run: bool = False,
    upgrade: bool = False,
    second_core: bool = False,
) -> ApplyReport:
    """Apply the delta lines of ``stream`` to the file ``path`` under its writer lock.

    The whole stream is read and parsed first, then the lock is taken: a slow producer
    (``slow | thermo apply f -``) never holds up other writers or readers, and a bad
    line fails before the file is even locked. Under the lock the deltas are linked to
    the head the file has then, applied and committed. The file is committed only when
    something changed and ``dry_run`` is false, so an empty stream does not rewrite (or
    upgrade) a file.

    ``second_core``: a stream of at least :data:`WORKER_MIN_DELTAS` plain deltas has the
    Merkle hashing of its records done by a worker process on another core while this one
    seals them (:mod:`thermo_cli.integrity.merkle_worker`); the file is the same byte for
    byte. Off by default, because it starts a process; ``thermo apply`` turns it on. It
    does nothing on one core or where no worker can run
    (:func:`thermo_cli.codec.worker.available`).
    """
    worker: RangeWorker | None = None
    try:
        with no_gc():
            store.check_writable(path, upgrade=upgrade)
            blocks = jsonl.iter_line_blocks(stream, max_line_bytes=limits.max_line_bytes)
            parsed = _Parsed((), source=source, limits=limits, skip_invalid=skip_invalid)
            runs: list[_PlainRun | _Ready] = []
            plain = 0 if second_core and not dry_run and _cores() > 1 else None
            for numbers, lines in blocks:
                for run in parsed.runs(numbers, lines):
                    runs.append(run)
                    if plain is not None and isinstance(run, _PlainRun):
                        plain += len(run.batch)
                        if plain >= WORKER_MIN_DELTAS:
                            worker, plain = _start_worker(), None
            with store.edit(path, upgrade=upgrade, dry_run=dry_run, range_worker=worker) as tg:
                before = tg.meta.total_consolidations
                with _policy_suspended(tg, not auto_consolidate):
                    applied = 0
                    for run in _taking(runs):
                        applied += _apply_run(tg, run, skip_invalid=skip_invalid)
                        if worker is not None:
                            worker.sync(tg.log_tail(tg.persisted).runs, _encoded)
                report = ApplyReport(
                    applied, parsed.skipped, tg.meta.total_consolidations - before, dry_run, tg
                )
    finally:
        if worker is not None:
            worker.close()
    return report


_encoded = attrgetter("encoded")


def _cores() -> int:
    """The processors this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _start_worker() -> RangeWorker | None:
    from thermo_cli.integrity.merkle_worker import RangeWorker

    return RangeWorker.start()


def _taking(runs: list[_PlainRun | _Ready]) -> Iterator[_PlainRun | _Ready]:
    """The runs in order, each let go of once applied (its columns are not needed then)."""
    runs.reverse()
    while runs:
        yield runs.pop()


def _apply_run(tg: Thermogram, run: _PlainRun | _Ready, *, skip_invalid: bool) -> int:
    """Apply one run read ahead: plain deltas as a batch, any others one by one."""
    if isinstance(run, _PlainRun):
        before = tg.meta.total_deltas
        try:  # strictly parsed plain deltas: the engine's checks are the parser's
            return tg.apply_plain(run.batch)
        except ThermoError as exc:  # refused all the same: name the line it came from
            done = tg.meta.total_deltas - before
            raise jsonl.LineError(run.numbers[min(done, len(run.numbers) - 1)], str(exc)) from None
        finally:
            run.batch.drop_pieces()  # (applied or refused, it is not sealed again)
    return _apply_parsed(tg, run, skip_invalid=skip_invalid, auto=True)


def apply_stream(
    tg: Thermogram,
    lines: Iterable[tuple[int, bytes]],
    *,
    source: str,
    limits: Limits,
    skip_invalid: bool = False,
    auto: bool = True,
) -> tuple[int, list[str]]:
    """Parse and apply every ``(line number, line)``; returns (applied, skipped line messages).

    ``auto=False`` suspends the thermogram's consolidation triggers for the batch (the
    policy is restored afterwards, whatever happens).
    """
    parsed = _Parsed(lines, source=source, limits=limits, skip_invalid=skip_invalid)
    return _apply_parsed(tg, parsed, skip_invalid=skip_invalid, auto=auto), parsed.skipped


def _apply_parsed(tg: Thermogram, parsed: _Parsed | _Ready, *, skip_invalid: bool, auto: bool) -> int:
    """Apply parsed deltas (streamed or read ahead); an engine refusal names its line."""
    with _policy_suspended(tg, not auto):
        if skip_invalid:
            return _apply_each(tg, parsed)
        try:
            # a strict parser already checked every field the engine would
            return len(tg.apply_many(parsed, validated=True))
        except (jsonl.LineError, jsonl.LineLimitError):
            raise
        except ThermoError as exc:  # refused by the engine: name the line it came from
            raise jsonl.LineError(parsed.lineno, str(exc)) from None


_CHUNK_LINES = 4096
"""Lines parsed as one batch when they are all plain deltas (memory: a few MB per batch)."""


@dataclass
class _PlainRun:
    """A chunk of lines that were all plain deltas, encoded ahead of the lock."""

    batch: PlainDeltas
    numbers: Sequence[int]
    """The line number of each delta."""


class _Ready:
    """Deltas parsed ahead of the lock, with their line numbers; iterating keeps
    ``lineno`` at the current delta's line, as :class:`_Parsed` does while streaming."""

    def __init__(self, numbered: list[tuple[int, Delta]], skipped: list[str]) -> None:
        self._numbered = numbered
        self.skipped = skipped
        self.lineno = 0

    def __iter__(self) -> Iterator[Delta]:
        for lineno, d in self._numbered:
            self.lineno = lineno
            yield d


def _apply_each(tg: Thermogram, parsed: _Parsed | _Ready) -> int:
    """One delta at a time, so a delta the engine refuses is skipped, not fatal."""
    applied = 0
    for d in parsed:
        try:
            tg.apply(d)
            applied += 1
        except ThermoError as exc:
            parsed.skipped.append(f"line {parsed.lineno}: {exc}")
    return applied


class _Parsed:
    """The deltas of a line stream, remembering the current line number for error messages."""

    def __init__(
        self, lines: Iterable[tuple[int, bytes]], *, source: str, limits: Limits, skip_invalid: bool
    ) -> None:
        self._lines = lines
        self._parser = jsonl.DeltaParser(source=source, limits=limits)
        self._skip_invalid = skip_invalid
        self.lineno = 0
        self.skipped: list[str] = []

    def __iter__(self) -> Iterator[Any]:
        return self._deltas(self._lines)

    def runs(self, numbers: Sequence[int], lines: list[bytes]) -> Iterator[_PlainRun | _Ready]:
        """A block of lines read ahead, in chunks: a chunk of plain deltas as one batch
        (:meth:`~thermo_cli.formats.jsonl.DeltaParser.plain_batch`), any other chunk
        parsed line by line, with the same checks and errors as streaming."""
        for at in range(0, len(lines), _CHUNK_LINES):
            chunk = lines[at : at + _CHUNK_LINES]
            batch = self._parser.plain_batch(chunk)
            if batch is not None:
                self.lineno = numbers[at + len(chunk) - 1]
                yield _PlainRun(batch, numbers[at : at + _CHUNK_LINES])
            else:
                numbered = zip(numbers[at : at + _CHUNK_LINES], chunk, strict=True)
                yield _Ready([(self.lineno, d) for d in self._deltas(numbered)], self.skipped)

    def _deltas(self, lines: Iterable[tuple[int, bytes]]) -> Iterator[Any]:
        import orjson

        loads, build, decode_error = orjson.loads, self._parser.from_obj, orjson.JSONDecodeError
        names = jsonl.refuse_repeated_names
        for lineno, line in lines:
            self.lineno = lineno
            try:
                try:
                    obj = loads(line)
                    names(lineno, line, obj)
                    d = build(lineno, obj)
                except decode_error:
                    jsonl.load_line(lineno, line)  # raises with orjson's reason
                    raise
                except jsonl.LineError:
                    _refuse_export_line(lineno, line)
                    raise
            except ThermoError as exc:
                if not self._skip_invalid:
                    raise
                self.skipped.append(str(exc))
                continue
            yield d


@contextlib.contextmanager
def _policy_suspended(tg: Thermogram, suspend: bool) -> Iterator[None]:
    """No auto-consolidation for the length of the block (the stored policy is unchanged,
    so nothing is logged)."""
    if not suspend:
        yield
        return
    with tg.auto_consolidation_suspended():
        yield


def _refuse_export_line(lineno: int, line: bytes) -> None:
    """A line of a JSONL export gets a hint instead of 'unknown field'."""
    import orjson

    obj = orjson.loads(line)
    if isinstance(obj, dict) and "kind" in obj and "op" not in obj:
        raise jsonl.LineError(
            lineno, "this is a thermo JSONL export, not a delta stream: use `thermo import-jsonl`"
        )


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cycle collector: a big batch makes 100,000s of small acyclic objects and
    each collection pass would only walk them again (~15 % of an apply).

    On the way out the survivors are frozen (``gc.freeze``) before collection resumes;
    otherwise the first collection after re-enabling would walk every one of them once
    (~70 ms). Frozen objects are still freed by reference counting.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


@dataclass
class JsonlImport:
    """A thermogram built from JSONL input: a dump read back, or a delta stream applied."""

    thermogram: Any
    kind: str
    """"dump" or "delta stream"."""
    deltas: int


def build_from_jsonl(stream: ByteStream, fresh: Thermogram, *, source: str, limits: Limits) -> JsonlImport:
    """Read a JSONL export exactly, or apply a delta stream to ``fresh``; writes nothing.

    The first line decides: a dump header means the whole input is a dump (same layers,
    log and head hash); anything else is a delta stream, applied all-or-nothing.
    """
    import orjson

    lines = jsonl.iter_lines(stream, max_line_bytes=limits.max_line_bytes)
    first = next(lines, None)
    rest = _chain_first(first, lines)
    header = None
    if first is not None:
        with contextlib.suppress(orjson.JSONDecodeError):
            header = orjson.loads(first[1])
    if dump.is_dump_header(header):
        tg = dump.import_dump(rest, limits=limits)
        return JsonlImport(tg, "dump", sum(1 for r in tg.records if isinstance(r, Delta)))
    applied, _ = apply_stream(fresh, rest, source=source, limits=limits)
    return JsonlImport(fresh, "delta stream", applied)


def _chain_first(
    first: tuple[int, bytes] | None, rest: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, bytes]]:
    if first is not None:
        yield first
    yield from rest
