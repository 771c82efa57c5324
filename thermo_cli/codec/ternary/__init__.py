"""Ternary (-1/0/+1) weights: 2-bit packing, quantization methods and ternary layers.

Submodules: ``weight`` (single-weight and element-wise semantics), ``packing`` (the 2-bit
layout and :class:`PackedTernary`), ``quantize`` (``reference`` and ``absmean`` methods,
reconstruction quality), ``layer`` (:class:`TernaryLayer`). The function
``thermo_cli.codec.ternary.quantize.quantize`` is not re-exported here so that the submodule
name keeps meaning the submodule.
"""

from thermo_cli.codec.ternary.layer import TernaryLayer
from thermo_cli.codec.ternary.packing import PackedTernary, pack, packed_size, unpack
from thermo_cli.codec.ternary.quantize import METHODS, Quality, QuantizedTensor, reconstruction_quality
from thermo_cli.codec.ternary.weight import TernaryWeight

__all__ = [
    "METHODS",
    "PackedTernary",
    "Quality",
    "QuantizedTensor",
    "TernaryLayer",
    "TernaryWeight",
    "pack",
    "packed_size",
    "reconstruction_quality",
    "unpack",
]
