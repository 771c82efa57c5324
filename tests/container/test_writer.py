"""The writer reads each entry's value once and lets go of it before reading the next."""

from __future__ import annotations

import numpy as np
import pytest

from thermo_cli import store
from thermo_cli.container import writer
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import ValidationError
from thermo_cli.model import Entry, Layer, TensorSpec


class CountingEntry(Entry):
    """An entry whose value lives elsewhere (as a streamed import's does): reads are counted."""

    __slots__ = ("_data", "reads")

    def __init__(self, key: str, data: bytes, tensor: TensorSpec | None) -> None:
        self.key, self.strength, self.updated_at_ns, self.update_count = key, 0.5, 1, 1
        self.ternary, self.tensor = None, tensor
        self._data = data
        self.reads = 0

    @property  # type: ignore[override]
    def value(self) -> bytes:
        self.reads += 1
        return self._data

    @property
    def value_size(self) -> int:
        return len(self._data)


def _values(n: int, size: int) -> list[bytes]:
    rng = np.random.default_rng(1)
    return [rng.standard_normal(size // 4).astype("<f4").tobytes() for _ in range(n)]


def test_each_streamed_value_is_read_once(tmp_path):
    tg = Thermogram(name="reads")
    sizes = [3 * writer.DATA_CHUNK + 123, 100, writer.DATA_CHUNK, 40_000]
    entries = [
        CountingEntry(f"t{i}", v, TensorSpec("F32", (len(v) // 4,)))
        for i, v in enumerate(
            _values(1, sizes[0]) + _values(1, 100) + _values(1, sizes[2]) + _values(1, sizes[3])
        )
    ]
    entries.append(CountingEntry("text", b"plain bytes", None))
    tg.layers[Layer.COOL] = {e.key: e for e in entries}
    path = tmp_path / "reads.thermo"
    store.create(path, tg)
    assert [e.reads for e in entries] == [1] * len(entries)
    for e in entries:
        got = store.read(path, e.key)
        assert got is not None and got.value == e._data


def test_no_view_of_a_large_value_outlives_it():
    """Between two large values the consumer is told to release; leftovers are copies."""
    big = _values(2, 2 * writer.DATA_CHUNK + 1000)
    plan = writer._StreamPlan(
        4,
        [CountingEntry(f"b{i}", v, None) for i, v in enumerate(big)],
        [len(v) for v in big],
        sum(map(len, big)),
    )
    out = list(writer._stream_pieces(plan, writer.DATA_CHUNK))
    assert writer._RELEASE in out
    release_at = out.index(writer._RELEASE)
    before = [p for piece in out[:release_at] for p in piece]
    tail = [p for piece in out[release_at + 1 :] for p in piece]
    # the last part before the release is the first value's leftover: a copy, not a view
    assert type(tail[0]) is bytes and len(tail[0]) == 1000
    assert all(p.obj is big[0] for p in before if isinstance(p, memoryview))
    joined = b"".join(bytes(p) for piece in out if piece is not writer._RELEASE for p in piece)
    assert joined == b"".join(big)


def test_a_value_that_is_not_bytes_is_refused(tmp_path):
    tg = Thermogram(name="bad")
    tg.layers[Layer.HOT] = {"k": Entry("k", bytearray(b"x"), 0.5, 1)}  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="must be bytes"):
        store.create(tmp_path / "bad.thermo", tg)
    assert not (tmp_path / "bad.thermo").exists()


def test_a_writer_refuses_a_meta_block_readers_would_refuse(tmp_path):
    """The meta cap readers apply (max_meta_bytes) binds writers too, for rewrites and appends."""
    import hashlib

    from thermo_cli import store
    from thermo_cli.config.limits import Limits, use_limits
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.errors import LimitExceededError

    small = Limits(max_meta_bytes=4096)
    path = tmp_path / "meta.thermo"
    with use_limits(small):
        with pytest.raises(LimitExceededError, match="max_meta_bytes"):
            store.create(path, Thermogram(name="big", extras={"blob": "x" * 8192}))
        assert not path.exists()
        store.create(path, Thermogram(name="ok"))
        before = hashlib.sha256(path.read_bytes()).digest()
        with pytest.raises(LimitExceededError, match="max_meta_bytes"), store.edit(path) as tg:
            tg.set_extra("blob", "x" * 8192)
        assert hashlib.sha256(path.read_bytes()).digest() == before
