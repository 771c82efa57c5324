"""Safetensors checkpoints in and out of thermograms.

* :mod:`.format` — the file format: validation through the ``safetensors`` library plus
  the checks it lacks, one-tensor-at-a-time reads (every thermo reader of safetensors
  files goes through them), and an atomic streaming writer whose output is
  byte-identical to the library's.
* :mod:`.sources` — what an import reads: files, sharded checkpoints (index JSON),
  directories, include/exclude globs, keys; all validated before anything is written.
* :mod:`.importer` — ``import_safetensors``: one entry per tensor in one layer, one audit
  event per tensor, memory bounded by the largest tensor.
* :mod:`.exporter` — ``export_safetensors``: entries back to a safetensors file,
  bit-identical for raw entries, with the original metadata.
"""

from thermo_cli.container.fileops import atomic_output
from thermo_cli.formats.safetensors.format import (
    DTYPE_BITS,
    MAX_HEADER_BYTES,
    METADATA_KEY,
    OutTensor,
    SafetensorsFile,
    TensorInfo,
    build_header,
    iter_tensor_bytes,
    library_order,
    open_safetensors,
    read_array,
    read_tensor,
    tensor_nbytes,
    write_safetensors,
)
from thermo_cli.formats.safetensors.sources import (
    ImportPlan,
    IndexFile,
    PlannedTensor,
    expand_inputs,
    plan_import,
    read_index,
    selected,
    ternary_capable,
)
from thermo_cli.operations.safetensors.exporter import ExportReport, export_safetensors
from thermo_cli.operations.safetensors.importer import (
    EXTRAS_KEY,
    SOURCE,
    ImportReport,
    StreamedEntry,
    TernaryOptions,
    import_safetensors,
    provenance,
    saved_metadata,
)

__all__ = [
    "DTYPE_BITS",
    "EXTRAS_KEY",
    "MAX_HEADER_BYTES",
    "METADATA_KEY",
    "SOURCE",
    "ExportReport",
    "ImportPlan",
    "ImportReport",
    "IndexFile",
    "OutTensor",
    "PlannedTensor",
    "SafetensorsFile",
    "StreamedEntry",
    "TensorInfo",
    "TernaryOptions",
    "atomic_output",
    "build_header",
    "expand_inputs",
    "export_safetensors",
    "import_safetensors",
    "iter_tensor_bytes",
    "library_order",
    "open_safetensors",
    "plan_import",
    "provenance",
    "read_array",
    "read_index",
    "read_tensor",
    "saved_metadata",
    "selected",
    "tensor_nbytes",
    "ternary_capable",
    "write_safetensors",
]
