"""Subprocess for the crash tests: commits forever until killed, printing each commit.

Iteration i (under the writer lock): load, apply one Create of key ``k{i}``, and every
third iteration also change a layer and consolidate (a rewrite), else append; after the
commit returns print ``i``. The parent kills it at a random moment and checks the file.
"""

from __future__ import annotations

import sys

from thermo_cli import store
from thermo_cli.model import Entry, Layer


def value(i: int) -> bytes:
    return (f"value-{i}-".encode() * (1 + i % 50))[: 40 + (i * 37) % 3000]


def main(path: str, start: int) -> None:
    i = start
    while True:
        with store.locked(path):
            tg = store.load(path)
            tg.create(f"k{i}", value(i), timestamp_ns=1_700_000_000_000_000_000 + i)
            if i % 3 == 2:
                tg.layers[Layer.COLD][f"c{i}"] = Entry(f"c{i}", value(i) * 20, 0.5, i, 1)
                tg.layers_modified = True
                tg.consolidate()
            store.commit(path, tg)
        print(i, flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
