"""Decode a whole layer at once (``load(..., layers="full")``, rewrites, verification).

Each data stream is decompressed chunk by chunk into one buffer (chunks in parallel:
zstd, SHA-256 and the numpy unshuffle release the GIL), then every value is a slice of it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from thermo_cli.config.limits import check_cap
from thermo_cli.container.reader import Reader
from thermo_cli.model import Entry, Layer


def stream_bytes(reader: Reader, layer: Layer, s: int, pool: ThreadPoolExecutor | None = None) -> bytearray:
    """A whole data stream, each chunk decompressed straight into its place."""
    st = reader.index[layer].streams[s]
    check_cap(st.size, reader.limits.max_value_bytes, "max_value_bytes", f"{layer.label} stream {s}")
    buf = bytearray(st.size)
    view = memoryview(buf)

    def fill(i: int) -> None:
        a = i * st.chunk
        reader.data_chunk(layer, s, i, out=view[a : a + st.chunk_raw_len(i)])

    n = len(st.chunks)
    if pool is None or n < 2:
        for i in range(n):
            fill(i)
    else:
        list(pool.map(fill, range(n)))
    return buf


def materialize_layer(reader: Reader, layer: Layer) -> dict[str, Entry]:
    li = reader.index[layer]
    out: dict[str, Entry] = {}
    if not li.count:
        return out
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        streams = [memoryview(stream_bytes(reader, layer, s, pool)) for s in range(len(li.streams))]
        for i in range(len(li.dirs)):
            for row in reader.dir_chunk(layer, i).rows():
                if row.length:
                    reader.check_value_size(row)
                    value = bytes(streams[row.stream][row.off : row.off + row.length])
                else:
                    value = b""
                out[row.key] = row.entry(value)
    return out
