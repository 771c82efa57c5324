"""Which tensors an import reads: input files, sharded checkpoints, globs, keys.

An input argument is a ``.safetensors`` file, a sharded checkpoint's index JSON
(``model.safetensors.index.json``: its ``weight_map`` names the shard of every tensor), or
a model directory. Everything is opened and checked here — every header by the
safetensors library, the index against the shards, every key against the thermogram's
key rules, tensor names unique across files — so an import fails before it writes a byte.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thermo_cli.codec.tensors import DTYPES
from thermo_cli.errors import CorruptError, LimitExceededError, NotFoundError, ValidationError, quote
from thermo_cli.formats.safetensors.format import (
    SafetensorsFile,
    TensorInfo,
    open_safetensors,
    reject_duplicates,
)
from thermo_cli.model import check_key

MAX_INDEX_BYTES = 64 * 1024 * 1024
"""Largest ``*.safetensors.index.json`` read (real ones are well under 1 MB)."""


# --- several inputs: shards, index files, directories --------------------------------------


@dataclass(frozen=True, slots=True)
class IndexFile:
    """A ``model.safetensors.index.json``: which shard holds which tensor."""

    path: Path
    metadata: dict[str, Any]
    weight_map: dict[str, str]

    @property
    def shard_names(self) -> list[str]:
        return sorted(set(self.weight_map.values()))


def read_index(path: str | os.PathLike[str]) -> IndexFile:
    """Parse and check an index JSON (shard names must be plain files beside it)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_INDEX_BYTES:
            raise LimitExceededError(f"{p}: index file of {size:,} bytes exceeds {MAX_INDEX_BYTES:,}")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ValidationError(f"{p}: is a directory") from None
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=reject_duplicates(str(p)))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptError(f"{p}: not a valid index JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("weight_map"), dict):
        raise CorruptError(f'{p}: index JSON needs a "weight_map" object')
    meta = doc.get("metadata", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise CorruptError(f'{p}: index "metadata" must be an object')
    weight_map: dict[str, str] = doc["weight_map"]
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise CorruptError(f"{p}: weight_map[{name!r}] must be a shard file name")
        if Path(shard).name != shard or shard in (".", ".."):
            raise CorruptError(
                f"{p}: weight_map[{name!r}] = {shard!r} is not a plain file name beside the index"
            )
    return IndexFile(path=p, metadata=meta, weight_map=weight_map)


def _is_index(path: Path) -> bool:
    return path.name.endswith(".json")


def expand_inputs(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[IndexFile]]:
    """Input arguments → the safetensors files to read, in order, and the index files seen.

    An argument is a ``.safetensors`` file, an index ``*.json`` (its shards, sorted), a
    model directory (its ``*.safetensors.index.json`` when there is exactly one, else all
    ``*.safetensors`` files in name order), or a glob (``ckpt/model-*.safetensors``: the
    files it matches, sorted; a glob matching nothing is an error).
    """
    if not paths:
        raise ValidationError("no input files given")
    files: list[Path] = []
    indexes: list[IndexFile] = []
    for raw in _globbed(paths):
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.glob("*.safetensors.index.json"))
            if len(found) > 1:
                raise ValidationError(f"{p}: {len(found)} index files; name the one to import")
            if found:
                p = found[0]
            else:
                shards = sorted(q for q in p.glob("*.safetensors") if q.is_file())
                if not shards:
                    raise NotFoundError(f"{p}: no *.safetensors files in this directory")
                files.extend(shards)
                continue
        if _is_index(p):
            idx = read_index(p)
            indexes.append(idx)
            files.extend(p.parent / name for name in idx.shard_names)
        else:
            files.append(p)
    seen: set[Path] = set()
    for f in files:
        real = f.resolve()
        if real in seen:
            raise ValidationError(f"{f}: given more than once")
        seen.add(real)
    return files, indexes


def _globbed(paths: Sequence[str | os.PathLike[str]]) -> Iterator[str | os.PathLike[str]]:
    """Each argument, a glob (one that names no existing file) replaced by its matches."""
    for raw in paths:
        text = os.fspath(raw)
        if not any(c in text for c in "*?[") or os.path.lexists(text):
            yield raw
            continue
        found = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not found:
            raise NotFoundError(f"{text}: matches no file")
        yield from found


def _check_index(idx: IndexFile, by_file: dict[Path, SafetensorsFile]) -> None:
    """Each tensor is where the index says, and the shards hold nothing the index omits."""
    shard_of: dict[str, str] = {}
    for name in idx.shard_names:
        sf = by_file[(idx.path.parent / name).resolve()]
        for t in sf.tensors:
            shard_of[t.name] = name
    for tensor, shard in idx.weight_map.items():
        found = shard_of.get(tensor)
        if found is None:
            raise CorruptError(f"{idx.path}: tensor {tensor!r} is listed in {shard} but no shard holds it")
        if found != shard:
            raise CorruptError(f"{idx.path}: tensor {tensor!r} is listed in {shard} but found in {found}")
    extra = sorted(set(shard_of) - set(idx.weight_map))
    if extra:
        raise CorruptError(
            f"{idx.path}: shard {shard_of[extra[0]]} holds tensor {extra[0]!r} that the index does not list"
        )


def ternary_capable(dtype: str) -> bool:
    """Float dtypes with whole-byte elements (F64 … F8_*): those ``--ternary`` can quantize.

    F4 and F6 (packed sub-byte floats) and every integer or bool dtype are stored raw.
    """
    info = DTYPES.get(dtype)
    return info is not None and info.is_float


# --- selection --------------------------------------------------------------------------------


def selected(name: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Shell-style globs on the tensor name: any include (if given) and no exclude must match."""
    if include and not any(fnmatch.fnmatchcase(name, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(name, g) for g in exclude)


@dataclass(frozen=True, slots=True)
class PlannedTensor:
    """One tensor to import: its source, its key, and whether it will be ternary-packed."""

    source: SafetensorsFile
    info: TensorInfo
    key: str
    ternary: bool


@dataclass(slots=True)
class ImportPlan:
    """Everything an import will do, decided and validated before any byte is written."""

    sources: list[SafetensorsFile]
    indexes: list[IndexFile]
    items: list[PlannedTensor]
    skipped: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(it.info.nbytes for it in self.items)

    @property
    def largest_bytes(self) -> int:
        return max((it.info.nbytes for it in self.items), default=0)

    def by_source(self) -> Iterator[tuple[SafetensorsFile, list[PlannedTensor]]]:
        """Planned tensors grouped per file, in file offset order (sequential reads)."""
        for sf in self.sources:
            items = [it for it in self.items if it.source is sf]
            items.sort(key=lambda it: it.info.offset)
            yield sf, items


def plan_import(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    prefix: str = "",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ternary: bool = False,
    ternary_min_rank: int = 2,
) -> ImportPlan:
    """Validate every input and decide every key; raises before anything is written.

    ``ternary`` marks float tensors (:func:`ternary_capable`) of rank >= ``ternary_min_rank``
    with at least one element for packing; all other tensors are stored raw.
    """
    if ternary_min_rank < 0:
        raise ValidationError("ternary_min_rank: must be >= 0")
    files, indexes = expand_inputs(inputs)
    sources = [open_safetensors(f) for f in files]
    by_file = {sf.path.resolve(): sf for sf in sources}
    for idx in indexes:
        _check_index(idx, by_file)
    items: list[PlannedTensor] = []
    origin: dict[str, Path] = {}
    skipped = 0
    for sf in sources:
        for info in sf.tensors:
            if info.name in origin:
                raise CorruptError(f"tensor {info.name!r} appears in both {origin[info.name]} and {sf.path}")
            origin[info.name] = sf.path
            if not selected(info.name, include, exclude):
                skipped += 1
                continue
            key = prefix + info.name
            try:
                check_key(key)
            except ValidationError as exc:
                raise ValidationError(f"{sf.path}: tensor {quote(info.name)}: {exc}") from None
            quantize = (
                ternary
                and ternary_capable(info.dtype)
                and len(info.shape) >= ternary_min_rank
                and math.prod(info.shape) > 0
            )
            items.append(PlannedTensor(source=sf, info=info, key=key, ternary=quantize))
    if (include or exclude) and not items and origin:
        raise ValidationError(f"include/exclude selected none of the {len(origin)} tensors")
    return ImportPlan(sources=sources, indexes=indexes, items=items, skipped=skipped)
