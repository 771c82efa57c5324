"""The packed-ternary safetensors layout: how ternary tensors travel in a safetensors file.

A packed tensor becomes two safetensors tensors — its 2-bit codes as U8 and its float32
scales as ``<name>.ternary_scales`` — and the file's metadata says which tensors are
packed (``thermo.ternary``: JSON of dtype, shape, per_row, method, scales name per tensor)
and which bit layout they use (``thermo.ternary.layout``). ``thermo ternary pack`` and
``export-safetensors --keep-ternary`` write it; ``thermo ternary unpack`` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from thermo_cli.codec.ternary.packing import packed_size
from thermo_cli.errors import ValidationError
from thermo_cli.formats.safetensors.format import OutTensor
from thermo_cli.model import TensorSpec

LAYOUT_KEY = "thermo.ternary"
"""Metadata key of the per-tensor description (same key ``export-safetensors`` uses)."""
LAYOUT_NAME_KEY = "thermo.ternary.layout"
LAYOUT_NAME = "2bit-le-v1: 4 weights/byte, weight i in bits 2*(i%4) of byte i//4; 00=0 01=+1 10=-1 11=0"
SCALES_SUFFIX = ".ternary_scales"


@dataclass(slots=True)
class PackedLayout:
    """The packed-ternary safetensors layout (see the module docstring) of a file being
    written, shared by ``thermo ternary pack`` and ``export-safetensors --keep-ternary``:
    :meth:`add` gives a packed tensor's two output tensors, :meth:`metadata` the
    description that lets ``thermo ternary unpack`` restore them."""

    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, spec: TensorSpec, codes: Callable[[], bytes], **extra: Any) -> list[Any]:
        """``[(OutTensor, fetch)]`` of the U8 codes and the F32 scales; ``extra`` joins the
        tensor's description (recorded rel_l2 / cosine)."""
        scales = spec.scales or b""
        scales_name = name + SCALES_SUFFIX
        self.tensors[name] = {
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "per_row": spec.per_row,
            "method": spec.method,
            "scales": scales_name,
            **extra,
        }
        return [
            (OutTensor(name, "U8", (packed_size(spec.numel),)), codes),
            (OutTensor(scales_name, "F32", (len(scales) // 4,)), lambda: scales),
        ]

    def metadata(
        self, names: Iterable[str], metadata: dict[str, str] | None, *, where: str = "", hint: str = ""
    ) -> dict[str, str]:
        """``metadata`` plus the layout keys. Refuses an output tensor (``names``) that has
        the name of a packed tensor's scales."""
        scales_of = {d["scales"]: name for name, d in self.tensors.items()}
        clash = sorted(set(names) & set(scales_of))
        if clash:
            raise ValidationError(
                f"{where}tensor {clash[0]!r} would collide with the scales of packed "
                f"tensor {scales_of[clash[0]]!r}{hint}"
            )
        meta = dict(metadata or {})
        meta[LAYOUT_KEY] = json.dumps(self.tensors, sort_keys=True, separators=(",", ":"))
        meta[LAYOUT_NAME_KEY] = LAYOUT_NAME
        return meta
