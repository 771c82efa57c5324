"""Export tensor entries of a thermogram as a safetensors file.

Raw entries are written byte for byte as stored, so a checkpoint that went through
``import-safetensors`` comes back bit-identical, with its ``__metadata__``. Ternary
entries are dequantized to the dtype they were imported from (``scale * code``), or kept
packed (``keep_ternary``) in the layout ``thermo ternary pack`` writes
(:mod:`thermo_cli.operations.ternary_files`: ``U8`` codes under the tensor's name, ``F32`` scales
under ``NAME.ternary_scales``, a JSON description in the ``thermo.ternary`` metadata), so
any safetensors reader can load them and ``thermo ternary unpack`` restores the floats.

Only the directory of each layer is read up front (names, dtypes, shapes); values are
decompressed one at a time while the file is written, so memory grows with the largest
tensor, not with the thermogram.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thermo_cli import store
from thermo_cli.codec.tensors import value_to_array
from thermo_cli.config.remote import refuse_url
from thermo_cli.container.lazy import LazyLayer
from thermo_cli.container.reader import ChunkCache, read_value
from thermo_cli.errors import ValidationError
from thermo_cli.formats.safetensors.format import OutTensor, tensor_nbytes, write_safetensors
from thermo_cli.formats.safetensors.sources import selected
from thermo_cli.formats.safetensors.ternary_layout import PackedLayout
from thermo_cli.model import Entry, Layer, TensorSpec
from thermo_cli.operations.history import Figures, recorded_figures
from thermo_cli.operations.safetensors.importer import saved_metadata

PhaseProgress = Callable[[str, int], None]
"""``progress(phase, nbytes)``: "start" gives the total bytes to write, "write" advances."""


@dataclass(frozen=True, slots=True)
class _Item:
    """One tensor entry to export: where it is, what it is, how to get its bytes."""

    key: str
    layer: Layer
    spec: TensorSpec
    fetch: Callable[[], bytes]


@dataclass(slots=True)
class ExportReport:
    out: Path
    tensors: int
    ternary_dequantized: int = 0
    ternary_kept: int = 0
    skipped_non_tensor: int = 0
    pending_deltas: int = 0
    tensor_bytes: int = 0
    file_bytes: int = 0
    layers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "tensors": self.tensors,
            "ternary_dequantized": self.ternary_dequantized,
            "ternary_kept": self.ternary_kept,
            "skipped_non_tensor": self.skipped_non_tensor,
            "pending_deltas": self.pending_deltas,
            "tensor_bytes": self.tensor_bytes,
            "file_bytes": self.file_bytes,
            "layers": self.layers,
            "seconds": round(self.seconds, 4),
        }


def export_safetensors(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    layers: Sequence[Layer | str] | None = None,
    keep_ternary: bool = False,
    prefix: str = "",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    overwrite: bool = False,
    progress: PhaseProgress | None = None,
    durable: bool = False,
) -> ExportReport:
    """Write the tensor entries of ``layers`` (default: all four) of ``path`` to ``out``.

    ``prefix`` selects keys starting with it and strips it from the tensor names (the
    inverse of ``import --prefix``); ``include``/``exclude`` globs then match those names.
    Entries without a tensor spec are skipped and counted. A key held by two of the
    selected layers is refused (choose one with ``layers``). Nothing is written on error.
    The file appears atomically; ``durable`` also fsyncs it (do so before deleting the
    source).
    """
    t0 = time.perf_counter()
    refuse_url(out)  # before Path() folds the URL's '//' into a local-looking path
    target = Path(out)
    chosen = _parse_layers(layers)
    if Path(path).resolve() == target.resolve():
        raise ValidationError(f"{target}: is also the input")
    tg = store.load(path, layers="lazy", log="tail")
    report = ExportReport(out=target, tensors=0, layers=[layer.label for layer in chosen])
    report.pending_deltas = len(tg.dirty_deltas())
    items = _select(_iter_items(tg, chosen), prefix, include, exclude, report)
    metadata = saved_metadata(tg)
    specs: list[OutTensor] = []
    fetchers: dict[str, Callable[[], bytes]] = {}
    layout = PackedLayout()
    quality = _packed_quality(path, items) if keep_ternary else {}
    for name, item in items.items():
        for out_tensor, fetch in _outputs(name, item, keep_ternary, layout, report, quality.get(item.key)):
            specs.append(out_tensor)
            fetchers[out_tensor.name] = fetch
    if layout.tensors:
        metadata = layout.metadata(items, metadata, hint=" (export with keep_ternary=False, or exclude it)")
    report.tensors = len(items)
    report.tensor_bytes = sum(t.nbytes for t in specs)
    if progress is not None:
        progress("start", report.tensor_bytes)
    write_safetensors(
        target,
        specs,
        lambda t: fetchers[t.name](),
        metadata,
        overwrite=overwrite,
        progress=None if progress is None else (lambda n: progress("write", n)),
        durable=durable,
    )
    report.file_bytes = target.stat().st_size
    report.seconds = time.perf_counter() - t0
    return report


def _parse_layers(layers: Sequence[Layer | str] | None) -> list[Layer]:
    if not layers:
        return list(Layer)
    out = []
    for layer in layers:
        parsed = layer if isinstance(layer, Layer) else Layer.parse(layer)
        if parsed not in out:
            out.append(parsed)
    return out


def _iter_items(tg: Any, chosen: list[Layer]) -> Iterator[_Item | tuple[str, Layer, None]]:
    """Every entry of the chosen layers; container layers are listed from their directory
    chunks and their values read only when fetched (nothing is cached)."""
    for layer in chosen:
        mapping = tg.layers[layer]
        if isinstance(mapping, LazyLayer) and mapping.pristine():
            cache = ChunkCache(4)
            for row in mapping.base_rows():
                if row.tensor is None:
                    yield (row.key, layer, None)
                    continue
                yield _Item(
                    row.key,
                    layer,
                    row.tensor,
                    lambda r=row, m=mapping, c=cache: read_value(m.reader, m.layer, r, c),  # type: ignore[misc]  # python/mypy#15459
                )
        else:
            for key in mapping:
                entry: Entry = mapping[key]
                if entry.tensor is None:
                    yield (key, layer, None)
                    continue
                yield _Item(key, layer, entry.tensor, lambda e=entry: e.value)  # type: ignore[misc]  # python/mypy#15459


def _select(
    found: Iterator[_Item | tuple[str, Layer, None]],
    prefix: str,
    include: Sequence[str],
    exclude: Sequence[str],
    report: ExportReport,
) -> dict[str, _Item]:
    items: dict[str, _Item] = {}
    for item in found:
        key = item[0] if isinstance(item, tuple) else item.key
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if not name or not selected(name, include, exclude):
            continue
        if isinstance(item, tuple):
            report.skipped_non_tensor += 1
            continue
        if name in items:
            other = items[name].layer.label
            raise ValidationError(
                f"key {key!r} is in both the {other} and the {item.layer.label} layer "
                "(choose one with layers=…)"
            )
        items[name] = item
    if not items:
        raise ValidationError("no tensor entries to export (check layers, prefix, include, exclude)")
    return items


def _packed_quality(path: str | os.PathLike[str], items: dict[str, _Item]) -> dict[str, Figures]:
    """Reconstruction errors (and norms) the log recorded for the ternary entries being kept packed,
    so the file says what ``thermo ternary pack`` would (the log is read only when needed)."""
    if not any(item.spec.encoding == "ternary" for item in items.values()):
        return {}
    return recorded_figures(path)


def _outputs(
    name: str,
    item: _Item,
    keep_ternary: bool,
    layout: PackedLayout,
    report: ExportReport,
    quality: Figures | None = None,
) -> list[tuple[OutTensor, Callable[[], bytes]]]:
    spec = item.spec
    if spec.encoding == "raw":  # every dtype, F4/F6 too: the stored bytes as they are
        try:
            tensor_nbytes(spec.dtype, spec.shape)
        except ValidationError as exc:
            raise ValidationError(f"entry {item.key!r}: {exc}") from None
        return [(OutTensor(name, spec.dtype, spec.shape), item.fetch)]
    if spec.encoding != "ternary":
        raise ValidationError(f"entry {item.key!r}: unknown tensor encoding {spec.encoding!r}")
    if not keep_ternary:
        report.ternary_dequantized += 1
        return [(OutTensor(name, spec.dtype, spec.shape), lambda: _dequantized(item))]
    report.ternary_kept += 1
    rel_l2, cosine, norm, norm_hat = quality or (None, None, None, None)
    figures: dict[str, float] = {}
    if rel_l2 is not None and cosine is not None:
        figures = {"rel_l2": rel_l2, "cosine": cosine}
        if norm is not None and norm_hat is not None:
            figures.update(norm=norm, norm_reconstructed=norm_hat)
    return layout.add(name, spec, item.fetch, **figures)


def _dequantized(item: _Item) -> bytes:
    import numpy as np

    arr = value_to_array(item.fetch(), item.spec, dequantize=True)
    return np.ascontiguousarray(arr).tobytes()
