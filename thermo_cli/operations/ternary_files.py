"""``thermo ternary pack`` / ``unpack``: float tensor files ⇄ packed ternary files.

Inputs and outputs are chosen by file name: ``.npy`` (one tensor), ``.safetensors``
(many), ``.thermo`` (a thermogram, through :mod:`thermo_cli.store`).

Packed safetensors layout (shared with ``export-safetensors --keep-ternary``): each packed
tensor ``NAME`` is stored as ``U8 [ceil(n/4)]`` 2-bit codes under its own name plus
``F32 [1 or rows]`` scales under ``NAME.ternary_scales``; the metadata key
``thermo.ternary`` holds a JSON object ``{NAME: {"dtype", "shape", "per_row", "method",
"scales", "rel_l2", "cosine"}}`` and ``thermo.ternary.layout`` names the bit layout, so
any safetensors reader can load the file and this module can restore the floats.
Tensors that are not float, are empty, or have fewer dimensions than ``min_rank`` (default
2: biases and norm gains) are copied unchanged, bit for bit, and the input's own metadata
is kept.

Every packed tensor's relative L2 error and cosine are reported, with the figures of all
packed tensors taken together; a tensor whose error exceeds 1 (worse than storing zeros)
gets a warning in the report. Ternarising a trained model after the fact is lossy
archival, not a runnable model: keep tensors exact with ``exclude``/``min_rank``.

Every output is written to a temporary file and renamed into place, so it is either
complete or absent; an existing output is replaced only with ``overwrite``. A ``.thermo``
output is always fsynced; a ``.npy`` or ``.safetensors`` output only with ``durable=True``
(as ``cp`` and ``np.save``, which leave flushing to the system): ask for it before deleting
the source.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from thermo_cli import store
from thermo_cli.codec.tensors import (
    DTYPES,
    check_spec,
    dense_nbytes,
    dtype_info,
    dtype_of,
    spec_nbytes,
    ternary_encode_tensor,
    ternary_value_chunks,
    to_float32,
    value_to_array,
)
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
from thermo_cli.container.fileops import WriteBehind, atomic_output, refuse_overwriting_source
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import CorruptError, FormatError, NotFoundError, RefusedError, ValidationError
from thermo_cli.formats.sniff import HEAD_BYTES, tensor_file_kind
from thermo_cli.model import Entry, Layer, TensorSpec, check_strength
from thermo_cli.operations.history import number_or_none, recorded_figures

if TYPE_CHECKING:
    from thermo_cli.formats.safetensors.format import OutTensor
    from thermo_cli.formats.safetensors.ternary_layout import PackedLayout

# The safetensors reader/writer and the importer (with the whole operations.safetensors
# package behind it) are imported where a safetensors file or a thermogram's saved
# metadata is handled: a .npy -> .thermo pack does not pay their start-up.

SOURCE = "ternary-pack"
DEFAULT_STRENGTH = 0.9
EXTENSIONS_IN = {"pack": (".npy", ".safetensors"), "unpack": (".thermo", ".safetensors")}
EXTENSIONS_OUT = {"pack": (".thermo", ".safetensors"), "unpack": (".npy", ".safetensors")}


# --- reports -----------------------------------------------------------------------------------


@dataclass(slots=True)
class TensorResult:
    """One tensor of a conversion: sizes before and after, and the reconstruction error."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    packed: bool
    bytes_before: int
    bytes_after: int
    method: str | None = None
    per_row: bool = False
    rel_l2: float | None = None
    cosine: float | None = None
    norm: float | None = None
    """||w|| and ||ŵ||, when known: they combine figures of several tensors into one."""
    norm_reconstructed: float | None = None

    @property
    def warning(self) -> str | None:
        """Why this tensor's figures are alarming (a relative error above 1), else None."""
        if self.rel_l2 is None or not self.rel_l2 > 1.0:
            return None
        return (
            f"tensor {self.name!r}: relative L2 error {self.rel_l2:.3g} > 1, worse than storing zeros "
            f"(method {self.method}{', per row' if self.per_row else ', per tensor'}); "
            "keep it exact or use another method"
        )

    def quality(self) -> Quality | None:
        if self.rel_l2 is None or self.cosine is None or self.norm is None or self.norm_reconstructed is None:
            return None
        return Quality(self.rel_l2, self.cosine, math.nan, self.norm, self.norm_reconstructed)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "packed": self.packed,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "method": self.method,
            "per_row": self.per_row,
            "rel_l2": self.rel_l2,
            "cosine": self.cosine,
            "warning": self.warning,
        }


@dataclass(slots=True)
class FileReport:
    """What a pack or unpack did. ``file_*`` are whole-file sizes, ``tensor_*`` data only."""

    action: str
    src: Path
    out: Path
    tensors: list[TensorResult] = field(default_factory=list)
    file_before: int = 0
    file_after: int = 0
    seconds: float = 0.0

    @property
    def tensor_before(self) -> int:
        return sum(t.bytes_before for t in self.tensors)

    @property
    def tensor_after(self) -> int:
        return sum(t.bytes_after for t in self.tensors)

    def total_quality(self) -> tuple[float, float] | None:
        """(rel L2, cosine) of all packed tensors taken as one, when their norms are known."""
        rated = [t for t in self.tensors if t.rel_l2 is not None and t.cosine is not None]
        parts = [q for q in (t.quality() for t in rated) if q is not None]
        if not rated or len(parts) != len(rated):
            return None
        total = cast(Quality, combined_quality(parts))
        return total.rel_l2, total.cosine

    def mean_quality(self) -> tuple[float, float] | None:
        """Element-weighted mean (rel L2, cosine) over the packed tensors that have one
        (what is left to show when the norms were not recorded)."""
        rated = [t for t in self.tensors if t.rel_l2 is not None and t.cosine is not None]
        if not rated:
            return None
        weights = [math.prod(t.shape) or 1 for t in rated]
        total = sum(weights)
        return (
            sum(w * cast(float, t.rel_l2) for w, t in zip(weights, rated, strict=True)) / total,
            sum(w * cast(float, t.cosine) for w, t in zip(weights, rated, strict=True)) / total,
        )

    @property
    def warnings(self) -> list[str]:
        """One line per packed tensor whose relative error exceeds 1."""
        return [w for w in (t.warning for t in self.tensors) if w is not None]

    def to_json(self) -> dict[str, Any]:
        total = self.total_quality()
        q = total if total is not None else self.mean_quality()
        return {
            "action": self.action,
            "src": str(self.src),
            "out": str(self.out),
            "file_before": self.file_before,
            "file_after": self.file_after,
            "tensor_before": self.tensor_before,
            "tensor_after": self.tensor_after,
            "packed": sum(t.packed for t in self.tensors),
            "copied": sum(not t.packed for t in self.tensors),
            "rel_l2": None if q is None else q[0],
            "cosine": None if q is None else q[1],
            "quality_of": None if q is None else ("total" if total is not None else "mean"),
            "warnings": self.warnings,
            "tensors": [t.to_json() for t in self.tensors],
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True, slots=True)
class PackOptions:
    """How float tensors are packed: ``absmean`` with a scale per row by default, and only
    tensors of at least ``min_rank`` dimensions (the rest are kept exact)."""

    method: str = DEFAULT_METHOD
    threshold: float | None = None
    per_row: bool = DEFAULT_PER_ROW
    nan_as_zero: bool = False
    min_rank: int = DEFAULT_MIN_RANK

    def check(self) -> None:
        check_threshold(self.threshold)
        check_method(self.method, self.threshold)
        if isinstance(self.min_rank, bool) or not isinstance(self.min_rank, int) or self.min_rank < 0:
            raise ValidationError(f"min_rank: must be an integer >= 0, got {self.min_rank!r}")


# --- paths ------------------------------------------------------------------------------------


def _suffix(path: Path, action: str, role: str, allowed: tuple[str, ...]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        names = " or ".join(allowed)
        raise ValidationError(f"{path}: {action} {role} must be a {names} file (chosen by extension)")
    return suffix


def _input_kind(src: Path, action: str) -> str:
    """An input's format: by its extension, or, when its name does not say (a file saved
    from stdin, ``weights.bin``), by its first bytes."""
    allowed = EXTENSIONS_IN[action]
    suffix = src.suffix.lower()
    if suffix in allowed:
        return suffix
    found = kind_by_content(src) if src.is_file() else None
    if found is None or found not in allowed:
        names = " or ".join(allowed)
        raise ValidationError(f"{src}: {action} input must be a {names} file (by extension or content)")
    return found


def kind_by_content(path: Path) -> str | None:
    """``.npy``, ``.thermo`` or ``.safetensors`` (or ``.npz``) from a file's first bytes
    (:func:`~thermo_cli.formats.sniff.tensor_file_kind`), None for anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return None
    kind = tensor_file_kind(head, size)
    return None if kind is None else f".{kind}"


def _check_paths(src: Path, out: Path, action: str, overwrite: bool) -> tuple[str, str]:
    kind_in = _input_kind(src, action)
    kind_out = _suffix(out, action, "output", EXTENSIONS_OUT[action])
    if not src.exists():
        raise NotFoundError(f"{src}: no such file")
    if src.is_dir():
        raise ValidationError(f"{src}: is a directory")
    if out.is_dir():
        raise ValidationError(f"{out}: is a directory")
    refuse_overwriting_source(src, out)
    if out.exists() and not overwrite:
        raise RefusedError(f"{out}: already exists (pass overwrite=True to replace it)")
    if not out.parent.exists():
        raise ValidationError(f"{out.parent}: no such directory")
    return kind_in, kind_out


# --- reading inputs ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Tensor:
    """A tensor read from an input: its dtype name, its shape, and its storage array
    (:func:`~thermo_cli.codec.tensors.value_to_array`: bits for BF16/F8, packed bytes for F4/F6)."""

    name: str
    dtype: str
    array: np.ndarray
    shape: tuple[int, ...]


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray):
        raise FormatError(f"{path}: not a single .npy array")
    return arr


def _npy_tensor(path: Path, name: str) -> _Tensor:
    arr = _load_npy(path)
    try:
        dtype = dtype_of(arr)
    except ValidationError:
        raise ValidationError(
            f"{path}: dtype {arr.dtype} cannot be stored (expected a numeric tensor)"
        ) from None
    return _Tensor(name, dtype, arr, tuple(arr.shape))


def _safetensors_tensors(sf: Any) -> Iterator[tuple[Any, _Tensor]]:
    from thermo_cli.formats.safetensors.format import iter_tensor_bytes

    for info, data in iter_tensor_bytes(sf):
        yield info, _Tensor(info.name, info.dtype, value_to_array(data, info.spec), info.shape)


def _packable(t: _Tensor, opts: PackOptions) -> bool:
    info = DTYPES.get(t.dtype)
    return info is not None and info.is_float and t.array.size > 0 and len(t.shape) >= opts.min_rank


def _quantize(t: _Tensor, opts: PackOptions, what: str) -> tuple[bytes, TensorSpec, TensorResult]:
    value, spec, q = ternary_encode_tensor(
        np.asarray(t.array),
        opts.method,
        opts.threshold,
        opts.per_row,
        dtype=t.dtype,
        nan_as_zero=opts.nan_as_zero,
        what=what,
        with_quality=True,
    )
    quality = q.fit if q.fit is not None else q.quality(to_float32(np.asarray(t.array), t.dtype))
    result = TensorResult(
        t.name,
        t.dtype,
        spec.shape,
        True,
        dense_nbytes(spec),
        spec_nbytes(spec),
        spec.method,
        spec.per_row,
        quality.rel_l2,
        quality.cosine,
        quality.norm,
        quality.norm_reconstructed,
    )
    return value, spec, result


def _figures(result: TensorResult) -> dict[str, float]:
    """The reconstruction figures a packed tensor's log event or description records."""
    return {
        "rel_l2": float(cast(float, result.rel_l2)),
        "cosine": float(cast(float, result.cosine)),
        "norm": float(cast(float, result.norm)),
        "norm_reconstructed": float(cast(float, result.norm_reconstructed)),
    }


# --- pack ------------------------------------------------------------------------------------


def pack_file(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    options: PackOptions = PackOptions(),
    name: str | None = None,
    layer: Layer | str = Layer.COOL,
    strength: float = DEFAULT_STRENGTH,
    overwrite: bool = False,
    durable: bool = False,
) -> FileReport:
    """Quantize every float tensor of ``src`` (.npy / .safetensors) into ``out``.

    ``out`` is a ``.thermo`` file (one packed ternary entry per tensor in ``layer``, with
    its scales, each logged with an audit event; always fsynced) or a packed
    ``.safetensors`` file (fsynced with ``durable``).
    ``name`` is the key/tensor name for a ``.npy`` input (default: the file's stem).
    """
    t0 = time.perf_counter()
    src_p, out_p = Path(src), Path(out)
    kind_in, kind_out = _check_paths(src_p, out_p, "pack", overwrite)
    options.check()
    the_layer = layer if isinstance(layer, Layer) else Layer.parse(layer)
    strength = check_strength(strength)
    report = FileReport("pack", src_p, out_p, file_before=src_p.stat().st_size)
    if kind_in == ".npy":
        tensor = _npy_tensor(src_p, name or src_p.stem)
        if not DTYPES[tensor.dtype].is_float:
            raise ValidationError(f"{src_p}: ternary packing needs a float tensor, got dtype {tensor.dtype}")
        if tensor.array.size == 0:
            raise ValidationError(
                f"{src_p}: tensor of shape {tuple(tensor.array.shape)} has no elements to pack"
            )
        tensors: Callable[[], Iterator[tuple[Any, _Tensor]]] = lambda: iter([(None, tensor)])  # noqa: E731
        sf = None
    else:
        from thermo_cli.formats.safetensors.format import open_safetensors
        from thermo_cli.formats.safetensors.ternary_layout import LAYOUT_KEY

        sf = open_safetensors(src_p)
        if not sf.tensors:
            raise ValidationError(f"{src_p}: holds no tensors")
        if sf.metadata and LAYOUT_KEY in sf.metadata:
            raise ValidationError(f"{src_p}: is already ternary-packed (use `thermo ternary unpack`)")
        tensors = lambda: _safetensors_tensors(sf)  # noqa: E731
    if kind_out == ".thermo":
        _pack_to_thermo(tensors, out_p, options, the_layer, strength, src_p.name, sf, report, overwrite)
    else:
        _pack_to_safetensors(tensors, out_p, options, report, src_p, sf, overwrite=overwrite, durable=durable)
    report.file_after = out_p.stat().st_size
    report.seconds = time.perf_counter() - t0
    return report


def _sha256_of(arr: np.ndarray) -> bytes:
    """SHA-256 of a C-contiguous array's bytes, read in place (no copy of a mapped file)."""
    return hashlib.sha256(arr.data.cast("B") if arr.size else b"").digest()


def _pack_to_thermo(
    tensors: Callable[[], Iterator[tuple[Any, _Tensor]]],
    out: Path,
    opts: PackOptions,
    layer: Layer,
    strength: float,
    source_name: str,
    sf: Any,
    report: FileReport,
    overwrite: bool,
) -> None:
    """One entry per tensor; a safetensors input's metadata and provenance are kept as an
    import keeps them, so ``export-safetensors`` writes the metadata back."""
    ts = now_ns()
    tg = Thermogram(name=out.stem)
    entries: dict[str, Entry] = {}
    events: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="thermo-sha256") as hasher:
        for _, t in tensors():
            contiguous = np.ascontiguousarray(t.array)
            # SHA-256 releases the GIL: the original is hashed while it is quantized
            digest = hasher.submit(_sha256_of, contiguous)
            fields: dict[str, Any] = {
                "op": "create",
                "key": t.name,
                "layer": layer.label,
                "dtype": t.dtype,
                "shape": list(t.shape),
                "bytes": contiguous.nbytes,
                "source": SOURCE,
                "file": source_name,
            }
            if _packable(t, opts):
                value, spec, result = _quantize(t, opts, f"{source_name}: tensor {t.name!r}")
                fields.update(
                    {
                        "encoding": "ternary",
                        "method": spec.method,
                        "per_row": spec.per_row,
                        "value_sha256": hashlib.sha256(value).digest(),
                        **_figures(result),
                    }
                )
            else:  # copied exactly: a safetensors tensor's little-endian bytes, whatever its dtype
                value, spec = contiguous.tobytes(), TensorSpec(dtype=t.dtype, shape=t.shape)
                check_spec(value, spec)
                fields["encoding"] = "raw"
                result = TensorResult(t.name, t.dtype, spec.shape, False, len(value), len(value))
            fields["sha256"] = digest.result()
            del contiguous
            entries[t.name] = Entry(key=t.name, value=value, strength=strength, updated_at_ns=ts, tensor=spec)
            events.append(fields)
            report.tensors.append(result)
    tg.replace_layer(layer, entries)
    if sf is not None:
        from thermo_cli.operations.safetensors.importer import EXTRAS_KEY, provenance

        tg.set_extra(EXTRAS_KEY, provenance([sf]))
    for fields in events:
        tg.append_event("import", fields, timestamp_ns=ts)
    tg.append_event("checkpoint", {"source": SOURCE, "entries": len(entries)}, bind=True, timestamp_ns=ts)
    store.create(out, tg, overwrite=overwrite)


def _pack_to_safetensors(
    tensors: Callable[[], Iterator[tuple[Any, _Tensor]]],
    out: Path,
    opts: PackOptions,
    report: FileReport,
    src: Path,
    sf: Any,
    *,
    overwrite: bool,
    durable: bool,
) -> None:
    """Packed tensors are kept in memory (1/16 of float32); copied ones are re-read when written."""
    from thermo_cli.formats.safetensors.format import OutTensor, read_tensor, write_safetensors
    from thermo_cli.formats.safetensors.ternary_layout import PackedLayout

    outputs: list[tuple[OutTensor, Callable[[], bytes]]] = []
    layout = PackedLayout()
    names: list[str] = []
    for info, t in tensors():
        names.append(t.name)
        if _packable(t, opts):
            value, spec, result = _quantize(t, opts, f"{src.name}: tensor {t.name!r}")
            outputs += layout.add(t.name, spec, lambda v=value: v, **_figures(result))  # type: ignore[misc]  # python/mypy#15459
        else:
            result = TensorResult(t.name, t.dtype, t.shape, False, t.array.nbytes, t.array.nbytes)
            fetch = (
                (lambda i=info: read_tensor(sf, i))
                if info is not None
                else (lambda a=t.array: np.ascontiguousarray(a).tobytes())
            )
            outputs.append((OutTensor(t.name, t.dtype, t.shape), fetch))
        report.tensors.append(result)
    meta = layout.metadata(names, sf.metadata if sf is not None else None, where=f"{src}: ")
    fetchers = {o.name: fetch for o, fetch in outputs}
    write_safetensors(
        out, [o for o, _ in outputs], lambda o: fetchers[o.name](), meta, overwrite=overwrite, durable=durable
    )


# --- unpack ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Restored:
    """A tensor to write out: storage array in ``dtype`` and its report row; a packed one
    also as consecutive pieces (``pieces``), so a .npy output is written without building
    the whole float tensor in memory."""

    name: str
    dtype: str
    array: Callable[[], np.ndarray]
    result: TensorResult
    pieces: Callable[[], Iterator[np.ndarray]] | None = None


def unpack_file(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key: str | None = None,
    layers: list[str] | None = None,
    overwrite: bool = False,
    durable: bool = False,
) -> FileReport:
    """Restore float tensors from a packed ``.safetensors`` or a ``.thermo`` file.

    ``out`` is a ``.npy`` (exactly one tensor: the only one, or ``key``) or a
    ``.safetensors`` file (every tensor; packed ones dequantized to their original dtype,
    the others copied). The reconstruction error shown is the one recorded at pack time.
    ``out`` appears atomically; ``durable`` also fsyncs it (do so before deleting ``src``).
    """
    t0 = time.perf_counter()
    src_p, out_p = Path(src), Path(out)
    kind_in, kind_out = _check_paths(src_p, out_p, "unpack", overwrite)
    report = FileReport("unpack", src_p, out_p, file_before=src_p.stat().st_size)
    if kind_in == ".thermo":
        restored, metadata = _from_thermo(src_p, layers, with_metadata=kind_out == ".safetensors")
    else:
        if layers:
            raise ValidationError("layers=… applies to .thermo inputs only")
        restored, metadata = _from_packed_safetensors(src_p)
    if key is not None:
        restored = [r for r in restored if r.name == key]
        if not restored:
            raise NotFoundError(f"{src_p}: no tensor named {key!r}")
    if not restored:
        raise ValidationError(f"{src_p}: holds no tensors to unpack")
    if kind_out == ".npy":
        if len(restored) != 1:
            raise ValidationError(
                f"{src_p}: holds {len(restored)} tensors; a .npy output takes one "
                "(choose it with key=…, or write .safetensors)"
            )
        _write_npy(restored[0], out_p, overwrite, durable)
    else:
        _write_safetensors(restored, metadata, out_p, overwrite, durable)
    report.tensors = [r.result for r in restored]
    report.file_after = out_p.stat().st_size
    report.seconds = time.perf_counter() - t0
    return report


def _from_packed_safetensors(src: Path) -> tuple[list[_Restored], dict[str, str] | None]:
    from thermo_cli.formats.safetensors.format import open_safetensors, read_array
    from thermo_cli.formats.safetensors.ternary_layout import LAYOUT_KEY, LAYOUT_NAME_KEY

    sf = open_safetensors(src)
    meta = dict(sf.metadata or {})
    if LAYOUT_KEY not in meta:
        raise ValidationError(f"{src}: is not ternary-packed (no {LAYOUT_KEY!r} metadata); nothing to unpack")
    layout = _parse_layout(src, meta.pop(LAYOUT_KEY))
    meta.pop(LAYOUT_NAME_KEY, None)
    by_name = {t.name: t for t in sf.tensors}
    scales_names = {d["scales"] for d in layout.values()}
    out: list[_Restored] = []
    for info in sf.tensors:
        if info.name in scales_names:
            continue
        if info.name in layout:
            out.append(_restored_packed(src, sf, info, by_name, layout[info.name]))
        else:
            copied = TensorResult(info.name, info.dtype, info.shape, False, info.nbytes, info.nbytes)
            out.append(_Restored(info.name, info.dtype, lambda i=info: read_array(sf, i), copied))  # type: ignore[misc]  # python/mypy#15459
    return out, (meta or None)


def _parse_layout(src: Path, text: str) -> dict[str, dict[str, Any]]:
    from thermo_cli.formats.safetensors.ternary_layout import LAYOUT_KEY

    try:
        layout = json.loads(text)
    except json.JSONDecodeError:
        raise FormatError(f"{src}: {LAYOUT_KEY!r} metadata is not valid JSON") from None
    if not isinstance(layout, dict) or not all(isinstance(v, dict) for v in layout.values()):
        raise FormatError(f"{src}: {LAYOUT_KEY!r} metadata must map tensor names to descriptions")
    for name, d in layout.items():
        shape = d.get("shape")
        ok = (
            isinstance(d.get("dtype"), str)
            and d["dtype"] in DTYPES
            and DTYPES[d["dtype"]].is_float
            and isinstance(shape, list)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape)
            and isinstance(d.get("per_row"), bool)
            and isinstance(d.get("scales"), str)
        )
        if not ok:
            raise FormatError(f"{src}: {LAYOUT_KEY!r} entry for {name!r} is malformed")
    return layout


def _restored_packed(src: Path, sf: Any, info: Any, by_name: dict[str, Any], d: dict[str, Any]) -> _Restored:
    from thermo_cli.formats.safetensors.format import read_tensor

    name = info.name
    scales_info = by_name.get(d["scales"])
    if scales_info is None or scales_info.dtype != "F32":
        raise FormatError(f"{src}: packed tensor {name!r} has no F32 scales tensor {d['scales']!r}")
    if info.dtype != "U8":
        raise FormatError(f"{src}: packed tensor {name!r} must be U8, is {info.dtype}")
    spec = TensorSpec(
        dtype=d["dtype"],
        shape=tuple(d["shape"]),
        encoding="ternary",
        per_row=d["per_row"],
        method=d.get("method") if isinstance(d.get("method"), str) else None,
        scales=b"\0" * scales_info.nbytes,
    )
    _check_packed_spec(src, name, info.nbytes, spec)

    def stored() -> tuple[bytes, TensorSpec]:
        scales = read_tensor(sf, scales_info)
        return read_tensor(sf, info), TensorSpec(
            spec.dtype, spec.shape, "ternary", scales, spec.per_row, spec.method
        )

    def load() -> np.ndarray:
        return value_to_array(*stored())

    def pieces() -> Iterator[np.ndarray]:
        return ternary_value_chunks(*stored())

    result = TensorResult(
        name,
        spec.dtype,
        spec.shape,
        True,
        info.nbytes + scales_info.nbytes,
        dense_nbytes(spec),
        spec.method,
        spec.per_row,
        number_or_none(d.get("rel_l2")),
        number_or_none(d.get("cosine")),
        number_or_none(d.get("norm")),
        number_or_none(d.get("norm_reconstructed")),
    )
    return _Restored(name, spec.dtype, load, result, pieces)


def _check_packed_spec(src: Path, name: str, nbytes: int, spec: TensorSpec) -> None:
    try:
        check_spec(b"\0" * nbytes, spec)
    except CorruptError as exc:
        raise CorruptError(f"{src}: packed tensor {name!r}: {exc}") from None


def _from_thermo(
    src: Path, layers: list[str] | None, *, with_metadata: bool
) -> tuple[list[_Restored], dict[str, str] | None]:
    """The tensor entries of a thermogram, ready to restore; with the safetensors metadata an
    import saved only when ``with_metadata`` (a .safetensors output): reading it loads the
    importer, whose start-up a .npy output does not need to pay."""
    chosen = [Layer.parse(x) for x in layers] if layers else list(Layer)
    tg = store.load(src, layers="lazy", log="tail")
    recorded = recorded_figures(src)
    found: dict[str, _Restored] = {}
    for layer in chosen:
        mapping = tg.layers[layer]
        for k in mapping:
            entry = mapping[k]
            spec = entry.tensor
            if spec is None:
                continue
            if k in found:
                raise ValidationError(
                    f"{src}: key {k!r} is in more than one layer (choose one with layers=…)"
                )
            packed = spec.encoding == "ternary"
            q = recorded.get(k, (None, None, None, None)) if packed else (None, None, None, None)
            result = TensorResult(
                k,
                spec.dtype,
                spec.shape,
                packed,
                spec_nbytes(spec),
                dense_nbytes(spec),
                spec.method,
                spec.per_row,
                *q,
            )
            found[k] = _Restored(
                k,
                spec.dtype,
                lambda m=mapping, key=k: _entry_array(m[key]),  # type: ignore[misc]  # python/mypy#15459
                result,
                (lambda m=mapping, key=k: _entry_pieces(m[key])) if packed else None,  # type: ignore[misc]  # python/mypy#15459
            )

    if not with_metadata:
        return list(found.values()), None
    from thermo_cli.operations.safetensors.importer import saved_metadata

    return list(found.values()), saved_metadata(tg)


def _entry_array(entry: Entry) -> np.ndarray:
    assert entry.tensor is not None
    return value_to_array(entry.value, entry.tensor)


def _entry_pieces(entry: Entry) -> Iterator[np.ndarray]:
    assert entry.tensor is not None
    return ternary_value_chunks(entry.value, entry.tensor)


def _write_npy(r: _Restored, out: Path, overwrite: bool, durable: bool) -> None:
    """Like ``thermo get --as-npy``: BF16/F8 as float32 values, F4/F6 as their packed bytes.

    A packed tensor is dequantized piece by piece straight into the file (the bytes
    ``np.save`` of the whole array would write), in one pass and with no tensor-sized
    array."""
    info = dtype_info(r.dtype)
    if r.pieces is not None:
        npy_dtype = np.dtype(info.storage).newbyteorder("<") if info.native else np.dtype("<f4")
        with atomic_output(out, overwrite=overwrite, durable=durable) as fh:
            _write_npy_pieces(
                fh, npy_dtype, tuple(r.result.shape), _npy_values(r.pieces(), r.dtype), durable=durable
            )
        return
    arr = r.array()
    if info.is_float and not info.native:  # numpy has no bfloat16/float8: write the values
        arr = to_float32(arr, r.dtype)
    with atomic_output(out, overwrite=overwrite, durable=durable) as fh:
        if durable:
            _save_npy_flushing(fh, np.ascontiguousarray(arr))
        else:
            np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)


def _npy_values(pieces: Iterator[np.ndarray], dtype: str) -> Iterator[np.ndarray]:
    """Pieces in a .npy file's dtype: BF16/F8 (raw bits) as their float32 values."""
    info = dtype_info(dtype)
    for piece in pieces:
        yield piece if info.native else to_float32(piece, dtype)


WRITEBACK_BYTES = 32 << 20
"""A large durable .npy is written in slices of this size; the disk writes of each start
on a helper thread while the next is computed (:class:`WriteBehind`), so the final fsync
waits for the last slice rather than for the whole file."""


def _save_npy_flushing(fh: Any, arr: np.ndarray) -> None:
    """``np.save`` of a C-contiguous array to a durable output, the disk writing while later
    slices are copied (see :func:`_write_npy_pieces`)."""
    if arr.nbytes < 2 * WRITEBACK_BYTES or arr.dtype.hasobject:
        np.save(fh, arr, allow_pickle=False)
        return
    data = arr.reshape(-1)
    step = max(1, WRITEBACK_BYTES // max(arr.itemsize, 1))
    slices = (data[start : start + step] for start in range(0, data.size, step))
    _write_npy_pieces(fh, arr.dtype, tuple(arr.shape), slices, durable=True)


def _write_npy_pieces(
    fh: Any,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    pieces: Iterator[np.ndarray],
    *,
    durable: bool,
) -> None:
    """The bytes ``np.save`` writes for a C-order array of ``dtype`` and ``shape`` whose
    elements come as consecutive flat ``pieces``. For a ``durable`` output (fsynced at the
    end) they are flushed to disk behind the writing every ``WRITEBACK_BYTES``
    (:class:`WriteBehind`); otherwise the system flushes them when it likes."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    try:
        np.lib.format.write_array_header_1_0(fh, header)  # what np.save writes
    except ValueError:  # a header over 64 KiB
        np.lib.format.write_array_header_2_0(fh, header)
    behind = WriteBehind(fh, WRITEBACK_BYTES) if durable else None
    try:
        for piece in pieces:
            fh.write(np.ascontiguousarray(piece, dtype=dtype).data.cast("B"))
            if behind is not None:
                behind.wrote(piece.nbytes)
    finally:
        if behind is not None:
            behind.close()


def _write_safetensors(
    restored: list[_Restored], metadata: dict[str, str] | None, out: Path, overwrite: bool, durable: bool
) -> None:
    from thermo_cli.formats.safetensors.format import OutTensor, write_safetensors

    specs = [OutTensor(r.name, r.dtype, tuple(r.result.shape)) for r in restored]
    by_name = {r.name: r for r in restored}

    def fetch(t: OutTensor) -> bytes:
        return np.ascontiguousarray(by_name[t.name].array()).tobytes()

    write_safetensors(out, specs, fetch, metadata, overwrite=overwrite, durable=durable)


# --- quantize in place ---------------------------------------------------------------------------


def quantize_file(
    path: str | os.PathLike[str],
    *,
    layer: Layer | str = Layer.COOL,
    options: PackOptions = PackOptions(),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    dry_run: bool = False,
    force: bool = False,
) -> FileReport:
    """Convert the float tensor entries of one layer of a ``.thermo`` file to ternary, in place.

    The conversion is lossy and cannot be undone, so it needs ``force`` (without it, and
    without ``dry_run``, RefusedError and the file is untouched). Under the file's writer
    lock: every selected entry (raw float tensor of rank >= ``options.min_rank``, at least
    one element, key matching ``include`` and not ``exclude`` globs) is replaced by its
    packed form with scales, one ``Event(kind="quantize")`` per entry records the key, method,
    SHA-256 of the old and new value ("before", "digest") and the reconstruction error;
    then the thermogram is consolidated (binding the new state digest into the log) and
    the file rewritten atomically. Entries already ternary, and entries without a tensor,
    are left alone. With nothing to convert, or ``dry_run``, the file is not touched.
    """
    from thermo_cli.formats.safetensors.sources import selected

    t0 = time.perf_counter()
    p = Path(path)
    the_layer = layer if isinstance(layer, Layer) else Layer.parse(layer)
    options.check()
    if not p.exists():
        raise NotFoundError(f"{p}: no such file")
    kind = store.sniff(p)
    if kind != "thermo":
        raise RefusedError(f"{p}: is a Rust-crate {kind} file; convert it with `thermo migrate` first")
    if not (force or dry_run):
        raise RefusedError(
            f"{p}: quantizing in place replaces float tensors irreversibly; "
            "pass force=True to convert in place (or dry_run=True to see what would change)"
        )
    report = FileReport("quantize", p, p, file_before=p.stat().st_size)
    with store.edit(p) as tg:
        mapping = tg.layers[the_layer]
        chosen = [
            k
            for k in sorted(mapping)
            if _quantizable(mapping[k], options.min_rank) and selected(k, include, exclude)
        ]
        if dry_run or not chosen:
            for k in chosen:
                spec = cast(TensorSpec, mapping[k].tensor)  # _quantizable: it has one
                report.tensors.append(
                    TensorResult(
                        k,
                        spec.dtype,
                        spec.shape,
                        True,
                        dense_nbytes(spec),
                        0,
                        options.method,
                        options.per_row,
                    )
                )
            report.file_after = report.file_before
            report.seconds = time.perf_counter() - t0
            return report
        now = now_ns()
        for k in chosen:
            old = mapping[k]
            assert old.tensor is not None
            t = _Tensor(k, old.tensor.dtype, value_to_array(old.value, old.tensor), old.tensor.shape)
            value, spec, result = _quantize(t, options, f"{p}: entry {k!r}")
            tg.put_entry(
                the_layer,
                Entry(
                    key=k,
                    value=value,
                    strength=old.strength,
                    updated_at_ns=now,
                    update_count=old.update_count,
                    ternary=old.ternary,
                    tensor=spec,
                ),
            )
            tg.append_event(
                "quantize",
                {
                    "key": k,
                    "layer": the_layer.label,
                    "method": spec.method,
                    "per_row": spec.per_row,
                    "threshold": options.threshold,
                    "dtype": spec.dtype,
                    "shape": list(spec.shape),
                    "before": hashlib.sha256(old.value).digest(),
                    "digest": hashlib.sha256(value).digest(),
                    "bytes_before": len(old.value),
                    "bytes_after": len(value),
                    **_figures(result),
                },
                timestamp_ns=now,
            )
            report.tensors.append(result)
        tg.consolidate()
    report.file_after = p.stat().st_size
    report.seconds = time.perf_counter() - t0
    return report


def _quantizable(entry: Entry, min_rank: int) -> bool:
    spec = entry.tensor
    return (
        spec is not None
        and spec.encoding == "raw"
        and spec.dtype in DTYPES
        and DTYPES[spec.dtype].is_float
        and spec.numel > 0
        and len(spec.shape) >= min_rank
    )


def __getattr__(name: str) -> Any:
    if name == "PackedLayout":  # re-exported, imported on first use (see the imports above)
        from thermo_cli.formats.safetensors.ternary_layout import PackedLayout

        return PackedLayout
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FileReport",
    "PackOptions",
    "PackedLayout",
    "TensorResult",
    "pack_file",
    "quantize_file",
    "unpack_file",
]
