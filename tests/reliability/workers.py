"""Processes for the concurrency tests (``python -m tests.reliability.workers ...``).

``append PATH WORKER COUNT BATCH MODE`` appends COUNT deltas in batches of BATCH, each
batch one commit, through ``thermo apply`` run in this process (MODE ``cli``) or through
the store directly (``lib``: lock, load, apply, commit). Every batch opens with a delta
setting ``w<WORKER>/marker`` to ``open-<b>`` and closes with one setting it to
``closed-<b>``; every delta carries ``{"batch": "w<W>-b<b>", "n": BATCH}`` in its meta.
A reader that ever sees an ``open-`` marker or part of a batch saw a partial commit.

``read PATH WORKERS STOPFILE`` loops until STOPFILE exists: reads every marker, checks
that every batch in the log is whole and contiguous, and verifies the file; prints a JSON
summary and exits 1 at the first violation.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import orjson


def batch_lines(worker: int, batch: int, size: int) -> list[dict[str, Any]]:
    tag = {"batch": f"w{worker}-b{batch}", "n": size}
    lines: list[dict[str, Any]] = [
        {
            "op": "update",
            "key": f"w{worker}/marker",
            "value": f"open-{batch}",
            "meta": tag,
            "source": f"w{worker}",
        }
    ]
    for i in range(size - 2):
        lines.append(
            {
                "op": "update",
                "key": f"w{worker}/k{(batch * size + i) % 97}",
                "meta": tag,
                "value": f"w{worker} b{batch} i{i}",
                "strength": 0.5,
                "source": f"w{worker}",
            }
        )
    lines.append(
        {
            "op": "update",
            "key": f"w{worker}/marker",
            "value": f"closed-{batch}",
            "meta": tag,
            "source": f"w{worker}",
        }
    )
    return lines


def append(path: str, worker: int, count: int, size: int, mode: str) -> int:
    from thermo_cli import store
    from thermo_cli.formats.jsonl import DeltaParser

    assert count % size == 0 and size >= 2
    parser = DeltaParser(source="worker")
    fd, scratch = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    try:
        for b in range(count // size):
            lines = batch_lines(worker, b, size)
            if mode == "cli":
                from thermo_cli.cli import run_app

                with open(scratch, "wb") as f:
                    f.write(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
                code = run_app(["apply", path, scratch, "--no-auto-consolidate"])
                if code != 0:
                    print(f"worker {worker}: thermo apply exited {code}", file=sys.stderr)
                    return 1
            else:
                with store.locked(path):
                    tg = store.load(path)
                    tg.apply_many(parser.from_obj(i, x) for i, x in enumerate(lines, 1))
                    store.commit(path, tg)
    finally:
        os.unlink(scratch)
    return 0


def check_once(path: str, workers: int) -> dict[str, int]:
    """One observation of the file; raises AssertionError describing a partial state."""
    from thermo_cli import store
    from thermo_cli.model import Delta
    from thermo_cli.operations.audit.verify import verify_file

    for w in range(workers):
        got = store.read(path, f"w{w}/marker")
        if got is not None and not got.value.startswith(b"closed-"):
            raise AssertionError(f"marker of worker {w} reads {got.value!r}: a batch was seen half-applied")
    sizes: Counter[str] = Counter()
    expected: dict[str, int] = {}
    current = None
    closed: set[str] = set()
    records = 0
    for rec in store.iter_log(path):
        records += 1
        if not isinstance(rec, Delta) or not isinstance(rec.custom, dict) or "batch" not in rec.custom:
            continue
        tag = rec.custom["batch"]
        if tag != current:
            if tag in closed or (current is not None and sizes[current] != expected[current]):
                raise AssertionError(f"batch {current or tag} is not contiguous or not whole in the log")
            if current is not None:
                closed.add(current)
            current = tag
        sizes[tag] += 1
        expected[tag] = rec.custom["n"]
    if current is not None and sizes[current] != expected[current]:
        raise AssertionError(f"the log ends inside batch {current} ({sizes[current]} of {expected[current]})")
    report = verify_file(path)
    if not report.ok:
        raise AssertionError(f"verify failed while writers ran: {report.failure}")
    if report.torn_tail_bytes:
        raise AssertionError(f"a reader saw a torn tail of {report.torn_tail_bytes} bytes mid-commit")
    return {"records": records, "batches": len(sizes)}


def read(path: str, workers: int, stopfile: str) -> int:
    observations = 0
    sizes: list[int] = []
    while True:
        stop = os.path.exists(stopfile)
        try:
            seen = check_once(path, workers)
        except AssertionError as exc:
            print(orjson.dumps({"ok": False, "error": str(exc), "observations": observations}).decode())
            return 1
        observations += 1
        sizes.append(seen["records"])
        if stop:
            break
        time.sleep(0.01)
    summary = {"ok": True, "observations": observations, "distinct_sizes": len(set(sizes))}
    print(orjson.dumps(summary).decode())
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "append":
        return append(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
    if argv[0] == "read":
        return read(argv[1], int(argv[2]), argv[3])
    raise SystemExit(f"unknown worker {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
