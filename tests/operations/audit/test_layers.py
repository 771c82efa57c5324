"""The streaming layer pass agrees with the in-memory state digest."""

from __future__ import annotations

import numpy as np

from thermo_cli import store
from thermo_cli.integrity.state import state_digest
from thermo_cli.model import Entry, Layer, TensorSpec
from thermo_cli.operations.audit.layers import scan_layers

from .conftest import make_tg, write


def test_streamed_digest_equals_the_in_memory_digest(tmp_path, monkeypatch):
    from thermo_cli.container import writer

    monkeypatch.setattr(writer, "DATA_CHUNK", 1000)  # values spanning several chunks
    tg = make_tg()
    rng = np.random.default_rng(3)
    for i in range(5):
        v = rng.standard_normal(777 * (i + 1), dtype=np.float32).tobytes()
        spec = TensorSpec("F32", (777 * (i + 1),))
        tg.layers[Layer.WARM][f"t{i}"] = Entry(f"t{i}", v, 0.5, 1, 1, None, spec)
    tg.layers[Layer.COOL]["empty"] = Entry("empty", b"", 0.25, 2)
    path = write(tmp_path / "l.thermo", tg)
    reader = store.open_reader(path)
    try:
        scan = scan_layers(reader, workers=2)
    finally:
        reader.close()
    assert scan.ok and scan.entries == sum(len(m) for m in tg.layers.values())
    assert scan.digest() == state_digest(tg.layers)
    assert scan.chunks > 10
    assert scan.find("t3", Layer.WARM) is not None and scan.find("t3", Layer.HOT) is None
