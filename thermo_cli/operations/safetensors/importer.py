"""Import safetensors checkpoints into a new thermogram: one entry and one audit event per tensor.

Memory stays bounded by the largest tensor, not by the checkpoint, with the container's
whole-thermogram writer: raw entries are :class:`StreamedEntry` objects whose ``value``
is read from the checkpoint each time the writer asks for it (one tensor cached at a
time), so the writer streams them into its chunks without the checkpoint ever being
resident. The writer learns each size from ``value_size`` and reads each value once,
letting go of it before the next is read; when the raw tensors total at most
:data:`HOLD_FACTOR` times the largest tensor the bytes read by the first pass are simply
kept instead (no second read at all, for about the memory the streamed path peaks at).
Ternary entries are quantized once, in the first pass, and kept packed (1/16 of
float32). The first pass hashes every tensor for the audit events and the state digest,
which therefore never re-read the values.

The log gets, per tensor, ``Event(kind="import")`` with the key, dtype, shape, byte count
and SHA-256 of the checkpoint bytes (never the bytes themselves), then one
``Event(kind="checkpoint")`` binding the resulting state digest and log root, so the
imported layer is covered by the hash chain from the start.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thermo_cli import store
from thermo_cli.codec.leaves import entry_leaf
from thermo_cli.codec.tensors import ternary_encode_tensor, to_float32, value_to_array
from thermo_cli.codec.ternary.quantize import (
    DEFAULT_METHOD,
    DEFAULT_MIN_RANK,
    DEFAULT_PER_ROW,
    Quality,
    check_method,
    check_threshold,
    combined_quality,
)
from thermo_cli.config.clock import now_ns
from thermo_cli.config.remote import RemoteSettings, current_remote
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import CorruptError, RefusedError, TruncatedError, ValidationError
from thermo_cli.formats.safetensors.format import (
    SafetensorsFile,
    TensorInfo,
    check_metadata,
    iter_tensor_bytes,
    stat_key,
)
from thermo_cli.formats.safetensors.sources import ImportPlan, IndexFile, PlannedTensor, plan_import
from thermo_cli.integrity.state import digest_of_leaves
from thermo_cli.model import Entry, Layer, TensorSpec, check_strength
from thermo_cli.operations.safetensors.fetch import FetchedInputs
from thermo_cli.operations.workers import DEFAULT_DASK_TIMEOUT

EXTRAS_KEY = "safetensors"
"""``Thermogram.extras`` key holding the checkpoint's metadata and provenance."""

SOURCE = "import-safetensors"
"""``source`` field of the import events."""

DEFAULT_STRENGTH = 0.9

HOLD_FACTOR = 2
"""Keep raw tensor bytes in memory when they total at most this many times the largest
tensor (see the module docstring); otherwise stream them."""

PhaseProgress = Callable[[str, int], None]
"""``progress(phase, nbytes)``: "start" gives the total tensor bytes once validation
passed, "read" advances by one tensor's bytes, "commit" (0) announces the container write."""


# --- entries read on demand ---------------------------------------------------------------


class _CheckpointFile:
    """One open checkpoint that hands out one tensor's bytes at a time (the last one cached).

    The file must stay the one that was validated: inode, size and mtime are checked on
    every read, so a checkpoint rewritten during the import is reported, not mixed in.
    """

    def __init__(self, sf: SafetensorsFile) -> None:
        self.sf = sf
        self._fh = open(sf.path, "rb")  # noqa: SIM115 - closed by close()
        self._cached: tuple[TensorInfo, bytes] | None = None
        self._check()

    def _check(self) -> None:
        if stat_key(os.fstat(self._fh.fileno())) != self.sf.stat_key:
            raise CorruptError(f"{self.sf.path}: file changed while it was being imported")

    def read(self, info: TensorInfo) -> bytes:
        cached = self._cached
        if cached is not None and cached[0] is info:
            return cached[1]
        self._cached = None  # release the previous tensor before reading the next
        self._fh.seek(info.offset)
        data = self._fh.read(info.nbytes)
        if len(data) != info.nbytes:
            raise TruncatedError(f"{self.sf.path}: file ends inside tensor {info.name!r}")
        self._check()
        self._cached = (info, data)
        return data

    def close(self) -> None:
        self._cached = None
        self._fh.close()


class StreamedEntry(Entry):
    """An Entry whose raw value lives in a checkpoint file and is read when asked for.

    Writers read ``entry.value`` as usual; the bytes are not kept by the entry, so a
    layer of these costs memory for one tensor at a time. Not meant to be modified: it
    exists only between an import's first pass and the container write.
    """

    __slots__ = ("_file", "_info")

    def __init__(
        self,
        key: str,
        strength: float,
        updated_at_ns: int,
        tensor: TensorSpec,
        file: _CheckpointFile,
        info: TensorInfo,
    ) -> None:
        self.key = key
        self.strength = strength
        self.updated_at_ns = updated_at_ns
        self.update_count = 1
        self.ternary = None
        self.tensor = tensor
        self._file = file
        self._info = info

    @property
    def value(self) -> bytes:  # type: ignore[override]  # read-only on purpose (see the docstring)
        return self._file.read(self._info)

    @property
    def value_size(self) -> int:
        """The value's length, known without reading it: the container writer asks for
        this instead of ``len(value)``, so each tensor is read from the checkpoint once."""
        return self._info.nbytes


# --- the report ----------------------------------------------------------------------------


@dataclass(slots=True)
class TernaryQuality:
    """One packed tensor's reconstruction figures (norms: see :func:`combined_quality`)."""

    key: str
    rel_l2: float
    cosine: float
    norm: float = float("nan")
    norm_reconstructed: float = float("nan")

    @property
    def warning(self) -> str | None:
        """Set when the relative error exceeds 1 (worse than storing zeros)."""
        if not self.rel_l2 > 1.0:
            return None
        return (
            f"tensor {self.key!r}: relative L2 error {self.rel_l2:.3g} > 1, worse than storing zeros; "
            "keep it exact (exclude) or use another method"
        )


@dataclass(slots=True)
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    out: Path
    layer: Layer
    files: list[str]
    tensors: int
    ternary: int
    skipped: int
    tensor_bytes: int
    largest_tensor_bytes: int
    input_bytes: int
    stored_bytes: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)
    quality: list[TernaryQuality] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    def ternary_total(self) -> Quality | None:
        """The figures of every packed tensor taken as one (None when nothing was packed)."""
        return combined_quality(
            [Quality(q.rel_l2, q.cosine, float("nan"), q.norm, q.norm_reconstructed) for q in self.quality]
        )

    @property
    def warnings(self) -> list[str]:
        return [w for w in (q.warning for q in self.quality) if w is not None]

    def to_json(self) -> dict[str, Any]:
        total = self.ternary_total()
        return {
            "out": str(self.out),
            "layer": self.layer.label,
            "files": self.files,
            "tensors": self.tensors,
            "ternary": self.ternary,
            "skipped": self.skipped,
            "tensor_bytes": self.tensor_bytes,
            "largest_tensor_bytes": self.largest_tensor_bytes,
            "input_bytes": self.input_bytes,
            "stored_bytes": self.stored_bytes,
            "dtypes": dict(sorted(self.dtypes.items())),
            "ternary_quality": [
                {"key": q.key, "rel_l2": q.rel_l2, "cosine": q.cosine, "warning": q.warning}
                for q in self.quality
            ],
            "ternary_total": None if total is None else {"rel_l2": total.rel_l2, "cosine": total.cosine},
            "warnings": self.warnings,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 4),
        }


# --- the import ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TernaryOptions:
    """How ``import --ternary`` packs: the library defaults (absmean, a scale per row, rank >= 2)."""

    method: str = DEFAULT_METHOD
    per_row: bool = DEFAULT_PER_ROW
    threshold: float | None = None
    nan_as_zero: bool = False
    min_rank: int = DEFAULT_MIN_RANK


def import_safetensors(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    layer: Layer | str = Layer.COOL,
    strength: float = DEFAULT_STRENGTH,
    ternary: TernaryOptions | None = None,
    prefix: str = "",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    name: str | None = None,
    overwrite: bool = False,
    dry_run: bool = False,
    progress: PhaseProgress | None = None,
    jobs: int = 1,
    dask: str | None = None,
    dask_timeout: float = DEFAULT_DASK_TIMEOUT,
) -> ImportReport:
    """Import every selected tensor of ``inputs`` into a new thermogram at ``out``.

    Everything is validated (all headers, the index, keys, options, the output path)
    before anything is written; the file is then written atomically, so on any error
    ``out`` is exactly as it was. ``ternary`` packs float tensors of rank >= its
    ``min_rank`` (default 2: weight matrices and embeddings; biases and norms stay raw).

    ``inputs`` may be URLs (downloaded into a temporary directory beside ``out`` first,
    see :mod:`.fetch`) and local globs. With several shards, ``jobs`` > 1 local processes
    or the Dask cluster at ``dask`` read, hash and pack the shards in parallel (one job
    per shard, :func:`thermo_cli.operations.workers.run_jobs`); this process then writes
    the one thermogram in the same order as a serial import, so the file is
    byte-identical whatever ran the shards.
    """
    from thermo_cli.operations.safetensors.fetch import fetched_inputs

    if jobs < 1:
        raise ValidationError(f"jobs: must be at least 1, got {jobs}")
    target = Path(out)
    if target.parent.is_dir():
        _check_output(target, inputs, overwrite)  # before downloading anything
    with fetched_inputs(inputs, workdir=target.parent if target.parent.is_dir() else None) as fetched:
        return _import(
            fetched,
            target,
            layer=layer,
            strength=strength,
            ternary=ternary,
            prefix=prefix,
            include=include,
            exclude=exclude,
            name=name,
            overwrite=overwrite,
            dry_run=dry_run,
            progress=progress,
            engine=_Engine(jobs, dask, dask_timeout),
        )


@dataclass(frozen=True, slots=True)
class _Engine:
    """Where the shards of an import are scanned (see :func:`import_safetensors`)."""

    jobs: int = 1
    dask: str | None = None
    dask_timeout: float = DEFAULT_DASK_TIMEOUT

    def parallel(self, shards: int) -> bool:
        return self.dask is not None or (self.jobs > 1 and shards > 1)


def _import(
    fetched: FetchedInputs,
    target: Path,
    *,
    layer: Layer | str,
    strength: float,
    ternary: TernaryOptions | None,
    prefix: str,
    include: Sequence[str],
    exclude: Sequence[str],
    name: str | None,
    overwrite: bool,
    dry_run: bool,
    progress: PhaseProgress | None,
    engine: _Engine,
) -> ImportReport:
    t0 = time.perf_counter()
    inputs = fetched.inputs
    the_layer = layer if isinstance(layer, Layer) else Layer.parse(layer)
    strength = check_strength(strength)
    if ternary is not None:
        _check_ternary_options(ternary)
    _check_output(target, inputs, overwrite)
    plan = plan_import(
        inputs,
        prefix=prefix,
        include=include,
        exclude=exclude,
        ternary=ternary is not None,
        ternary_min_rank=ternary.min_rank if ternary is not None else 2,
    )
    _check_not_an_input(target, plan)
    report = ImportReport(
        out=target,
        layer=the_layer,
        files=[fetched.origin.get(str(sf.path.absolute()), str(sf.path)) for sf in plan.sources],
        tensors=len(plan.items),
        ternary=sum(it.ternary for it in plan.items),
        skipped=plan.skipped,
        tensor_bytes=plan.total_bytes,
        largest_tensor_bytes=plan.largest_bytes,
        input_bytes=sum(sf.size for sf in plan.sources),
        dtypes=dict(Counter(it.info.dtype for it in plan.items)),
        dry_run=dry_run,
    )
    if dry_run:
        report.seconds = time.perf_counter() - t0
        return report
    if progress is not None:
        progress("start", plan.total_bytes)
    files = {id(sf): _CheckpointFile(sf) for sf in plan.sources}
    try:
        if engine.parallel(len(plan.sources)):
            scanned = _scanned_in_workers(plan, files, ternary, fetched, engine)
        else:
            scanned = _scanned_here(plan, files, ternary, hold=_holds(plan, ternary))
        tg = _build_thermogram(plan, scanned, the_layer, strength, name or target.stem, report, progress)
        if progress is not None:
            progress("commit", 0)
        store.create(target, tg, overwrite=overwrite)
    finally:
        for f in files.values():
            f.close()
    report.stored_bytes = target.stat().st_size
    report.seconds = time.perf_counter() - t0
    return report


def _check_ternary_options(opts: TernaryOptions) -> None:
    check_threshold(opts.threshold)
    check_method(opts.method, opts.threshold)
    if opts.min_rank < 0:
        raise ValidationError(f"ternary min rank: must be >= 0, got {opts.min_rank}")


def _check_output(target: Path, inputs: Sequence[Any], overwrite: bool) -> None:
    """Refuse early (before reading gigabytes) what the final write would refuse anyway."""
    if target.name.endswith((".safetensors", ".json")):
        raise ValidationError(
            f"{target}: the output must be a .thermo file (the LAST argument is the output; "
            "inputs come first)"
        )
    if target.is_dir():
        raise ValidationError(f"{target}: is a directory")
    if target.exists() and not overwrite:
        raise RefusedError(f"{target}: already exists (pass overwrite=True to replace it)")
    if not target.parent.exists():
        raise ValidationError(f"{target.parent}: no such directory")


def _check_not_an_input(target: Path, plan: ImportPlan) -> None:
    real = target.resolve()
    for sf in plan.sources:
        if sf.path.resolve() == real:
            raise ValidationError(f"{target}: is also an input")


@dataclass(frozen=True, slots=True)
class PackedTensor:
    """One float tensor quantized to ternary codes, with its figures (picklable: workers
    return it)."""

    value: bytes
    spec: TensorSpec
    value_sha: bytes
    rel_l2: float
    cosine: float
    norm: float
    norm_reconstructed: float


Scanned = tuple[PlannedTensor, "_CheckpointFile", bytes | None, bytes, PackedTensor | None]
"""(item, its open file, its bytes when held, SHA-256 of its checkpoint bytes, the packed
value when it is ternary-packed)."""


def _holds(plan: ImportPlan, ternary: TernaryOptions | None) -> bool:
    """Whether the raw tensors are few enough to keep in memory (see the module docstring)."""
    raw_bytes = sum(it.info.nbytes for it in plan.items if not (it.ternary and ternary is not None))
    return raw_bytes <= HOLD_FACTOR * plan.largest_bytes


def _scanned_here(
    plan: ImportPlan, files: dict[int, _CheckpointFile], ternary: TernaryOptions | None, *, hold: bool
) -> Iterator[Scanned]:
    """Every planned tensor read, hashed (and packed) in this process, in plan order."""
    for item, source, data, digest in _hashed(plan, files, window=8 if hold else 1):
        packed = None
        if item.ternary and ternary is not None:
            packed = pack_tensor(item.info, data, ternary, f"{item.source.path}: tensor {item.info.name!r}")
        yield item, source, data if hold and packed is None else None, digest, packed
        del data


def _build_thermogram(
    plan: ImportPlan,
    scanned: Iterator[Scanned],
    layer: Layer,
    strength: float,
    name: str,
    report: ImportReport,
    progress: PhaseProgress | None,
) -> Any:
    """Entries, events and the state digest from the scanned tensors (in plan order, so
    the thermogram is the same whatever scanned them)."""
    ts = now_ns()
    tg = Thermogram(name=name)
    entries: dict[str, Entry] = {}
    leaves: list[tuple[bytes, int, bytes]] = []
    fields_list: list[dict[str, Any]] = []
    for item, source, data, digest, packed in scanned:
        fields = _event_fields(item, layer, digest)
        if packed is not None:
            entry, value_sha = _ternary_entry(item, packed, strength, ts, fields, report), packed.value_sha
        else:
            spec = TensorSpec(dtype=item.info.dtype, shape=item.info.shape)
            if data is not None:
                entry = Entry(key=item.key, value=data, strength=strength, updated_at_ns=ts, tensor=spec)
            else:
                entry = StreamedEntry(item.key, strength, ts, spec, source, item.info)
            value_sha = digest
        entries[item.key] = entry
        leaves.append((item.key.encode("utf-8"), int(layer), entry_leaf(layer, entry, value_sha)))
        fields_list.append(fields)
        del data
        if progress is not None:
            progress("read", item.info.nbytes)
    tg.replace_layer(layer, entries)
    tg.set_extra(EXTRAS_KEY, provenance(plan.sources, plan.indexes))
    for fields in fields_list:
        # per-tensor events do not bind the state: the checkpoint event below binds it once
        tg.append_event("import", fields, bind=False, timestamp_ns=ts)
    # bound by hand: the state digest comes from the leaves hashed above, so streamed
    # tensors are not read a second time
    tg.append_event(
        "checkpoint",
        {
            "source": SOURCE,
            "entries": len(entries),
            "log_size": tg.log_length,
            "log_root": tg.log_root(),
            "state_digest": digest_of_leaves(leaves),
        },
        timestamp_ns=ts,
    )
    return tg


def _hashed(
    plan: ImportPlan, files: dict[int, _CheckpointFile], window: int
) -> Iterator[tuple[PlannedTensor, _CheckpointFile, bytes, bytes]]:
    """(item, file, bytes, SHA-256) per planned tensor, in file order.

    SHA-256 releases the GIL, so tensors are hashed on a second thread while the next ones
    are read; at most ``window`` read tensors wait for their digest (1 when streaming, so
    at most two tensors are alive).
    """
    pending: deque[tuple[PlannedTensor, _CheckpointFile, bytes, Future[bytes]]] = deque()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for sf, items in plan.by_source():
            source = files[id(sf)]
            for item in items:
                data = source.read(item.info)
                pending.append((item, source, data, pool.submit(_sha256, data)))
                del data  # only ``pending`` may keep tensors alive
                while len(pending) > window:
                    yield _finished(pending)
        while pending:
            yield _finished(pending)


def _finished(
    pending: deque[tuple[PlannedTensor, _CheckpointFile, bytes, Future[bytes]]],
) -> tuple[PlannedTensor, _CheckpointFile, bytes, bytes]:
    item, source, data, digest = pending.popleft()
    return item, source, data, digest.result()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- shards scanned by workers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardJob:
    """One shard's share of an import, sent to a worker process or a Dask worker: which
    tensors to read, hash and pack. Reads the local file ``path`` (checked against
    ``stat_key``), or, when ``url`` is set, the object there (checked against ``size``
    and ``version``, the object's ETag or modification time when it was fetched)."""

    path: str
    stat_key: tuple[int, int, int]
    tensors: tuple[TensorInfo, ...]
    pack: tuple[bool, ...]
    ternary: TernaryOptions | None
    url: str | None = None
    size: int = 0
    version: object = None
    remote: RemoteSettings = field(default_factory=current_remote)


def scan_shard(job: ShardJob) -> list[tuple[bytes, PackedTensor | None]]:
    """(SHA-256, packed value or None) for each of the job's tensors, in the job's order.

    Runs in a worker: raw bytes stay there (the writing process streams them from the
    checkpoint itself); only digests and packed values (1/16 of float32) come back.
    """
    out: list[tuple[bytes, PackedTensor | None]] = []
    for info, pack, data in zip(job.tensors, job.pack, _job_bytes(job), strict=True):
        packed = None
        if pack and job.ternary is not None:
            packed = pack_tensor(info, data, job.ternary, f"{job.url or job.path}: tensor {info.name!r}")
        out.append((_sha256(data), packed))
        del data
    return out


def _job_bytes(job: ShardJob) -> Iterator[bytes]:
    """The job's tensors' bytes, one at a time, from the local file or the URL."""
    if job.url is None:
        sf = SafetensorsFile(Path(job.path), job.size, 0, None, job.tensors, job.stat_key)
        for _, data in iter_tensor_bytes(sf, job.tensors):
            yield data
        return
    from thermo_cli.container.remote import RemoteSource

    src = RemoteSource(job.url, job.remote)
    try:
        if src.size != job.size or src.identity[3] != job.version:
            raise CorruptError(f"{job.url}: the object changed since it was fetched for this import")
        for info in job.tensors:
            yield src.pread(info.offset, info.nbytes)
    finally:
        src.close()


def _scanned_in_workers(
    plan: ImportPlan,
    files: dict[int, _CheckpointFile],
    ternary: TernaryOptions | None,
    fetched: FetchedInputs,
    engine: _Engine,
) -> Iterator[Scanned]:
    """Every planned tensor scanned by ``engine``'s workers, one job per shard, yielded in
    plan order (the same order :func:`_scanned_here` gives)."""
    from thermo_cli.operations.workers import run_jobs

    groups = list(plan.by_source())
    jobs = [_shard_job(sf, items, ternary, fetched, on_dask=engine.dask is not None) for sf, items in groups]
    _, results = run_jobs(
        scan_shard, jobs, jobs=engine.jobs, dask=engine.dask, dask_timeout=engine.dask_timeout
    )
    for (sf, items), shard in zip(groups, results, strict=True):
        for item, (digest, packed) in zip(items, shard, strict=True):
            yield item, files[id(sf)], None, digest, packed


def _shard_job(
    sf: SafetensorsFile,
    items: list[PlannedTensor],
    ternary: TernaryOptions | None,
    fetched: FetchedInputs,
    *,
    on_dask: bool,
) -> ShardJob:
    """A shard's job; Dask workers (perhaps other machines) read a fetched shard's URL."""
    local = str(sf.path.absolute())
    url = fetched.origin.get(local) if on_dask else None
    return ShardJob(
        path=local,
        stat_key=sf.stat_key,
        tensors=tuple(it.info for it in items),
        pack=tuple(it.ternary for it in items),
        ternary=ternary,
        url=url,
        size=sf.size,
        version=fetched.version.get(local),
    )


# --- ternary packing -------------------------------------------------------------------------


def _event_fields(item: PlannedTensor, layer: Layer, digest: bytes) -> dict[str, Any]:
    info = item.info
    return {
        "op": "create",
        "key": item.key,
        "layer": layer.label,
        "dtype": info.dtype,
        "shape": list(info.shape),
        "bytes": info.nbytes,
        "sha256": digest,
        "encoding": "raw",
        "source": SOURCE,
        "file": item.source.path.name,
        "tensor": info.name,
    }


def pack_tensor(info: TensorInfo, data: bytes, opts: TernaryOptions, what: str) -> PackedTensor:
    """Quantize one float tensor's checkpoint bytes to ternary, with its reconstruction figures."""
    arr = value_to_array(data, info.spec)
    value, spec, q = ternary_encode_tensor(
        arr,
        opts.method,
        opts.threshold,
        opts.per_row,
        dtype=info.dtype,
        nan_as_zero=opts.nan_as_zero,
        what=what,
        with_quality=True,
    )
    quality = q.fit if q.fit is not None else q.quality(to_float32(arr, info.dtype))
    return PackedTensor(
        value=value,
        spec=spec,
        value_sha=hashlib.sha256(value).digest(),
        rel_l2=float(quality.rel_l2),
        cosine=float(quality.cosine),
        norm=float(quality.norm),
        norm_reconstructed=float(quality.norm_reconstructed),
    )


def _ternary_entry(
    item: PlannedTensor,
    packed: PackedTensor,
    strength: float,
    ts: int,
    fields: dict[str, Any],
    report: ImportReport,
) -> Entry:
    """The packed tensor's entry; its event also records the packed value's digest and quality."""
    fields.update(
        {
            "encoding": "ternary",
            "method": packed.spec.method,
            "per_row": packed.spec.per_row,
            "value_sha256": packed.value_sha,
            "rel_l2": packed.rel_l2,
            "cosine": packed.cosine,
            "norm": packed.norm,
            "norm_reconstructed": packed.norm_reconstructed,
        }
    )
    report.quality.append(
        TernaryQuality(item.key, packed.rel_l2, packed.cosine, packed.norm, packed.norm_reconstructed)
    )
    return Entry(key=item.key, value=packed.value, strength=strength, updated_at_ns=ts, tensor=packed.spec)


def provenance(sources: Sequence[SafetensorsFile], indexes: Sequence[IndexFile] = ()) -> dict[str, Any]:
    """The ``extras[EXTRAS_KEY]`` record of a thermogram made from safetensors files: what
    export needs to restore the checkpoint's metadata, and where the tensors came from.
    (``thermo ternary pack`` to a .thermo file records the same.)"""
    merged: dict[str, str] | None = None
    for sf in sources:
        if sf.metadata is not None:
            merged = {**sf.metadata, **(merged or {})}
    return {
        "metadata": merged,
        "files": [
            {"file": sf.path.name, "metadata": sf.metadata, "tensors": len(sf.tensors), "bytes": sf.size}
            for sf in sources
        ],
        "index_metadata": [idx.metadata for idx in indexes] or None,
    }


def saved_metadata(tg: Any) -> dict[str, str] | None:
    """The checkpoint ``__metadata__`` kept by :func:`provenance`, to write back out
    (ValidationError when a crafted file holds anything but text to text)."""
    return check_metadata((tg.extras.get(EXTRAS_KEY) or {}).get("metadata"))
