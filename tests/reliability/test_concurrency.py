"""Concurrent writers and readers on one file: nothing lost, nothing seen half-done.

Writers are separate processes, half of them running ``thermo apply`` (in-process CLI)
and half the store API; each batch is one commit. Readers run meanwhile: reader processes
check markers, batch completeness and verification in a loop, and this test runs ``thermo
get`` and ``thermo verify`` subprocesses. See :mod:`tests.reliability.workers`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.reliability.harness import ROOT, child_env, thermo
from tests.reliability.workers import check_once
from thermo_cli import store
from thermo_cli.model import Delta
from thermo_cli.operations.audit.verify import verify_file


def _spawn(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.workers", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(),
    )


def _run(
    tmp_path: Path,
    *,
    writers: int,
    per_writer: int,
    batches: dict[str, int],
    readers: int,
    policy: str,
    cli_reads: int,
) -> dict[str, object]:
    path = tmp_path / "shared.thermo"
    thermo("init", path, "--policy", policy)
    thermo("apply", path, "-", input=b'{"op": "create", "key": "seed", "value": "before the writers"}\n')
    base = store.load(path, log="full").log_length
    stop = tmp_path / "stop"
    reader_procs = [_spawn("read", path, writers, stop) for _ in range(readers)]
    writer_procs = []
    for w in range(writers):
        mode = "cli" if w % 2 == 0 else "lib"
        writer_procs.append(_spawn("append", path, w, per_writer, batches[mode], mode))
    cli_seen: Counter[str] = Counter()
    deadline = time.monotonic() + 900
    while any(p.poll() is None for p in writer_procs) and time.monotonic() < deadline:
        if cli_seen["get"] < cli_reads:
            got = thermo("get", path, f"w{cli_seen['get'] % writers}/marker", check=False)
            assert got.returncode in (0, 6), got.stderr  # 6: the writer has not committed yet
            assert got.returncode == 6 or got.stdout.startswith(b"closed-"), got.stdout
            cli_seen["get"] += 1
            ver = thermo("verify", "--json", path, check=False)
            doc = orjson.loads(ver.stdout)
            assert ver.returncode == 0 and doc["ok"] and doc["torn_tail_bytes"] == 0, doc
            cli_seen["verify"] += 1
        else:
            time.sleep(0.05)
    for p in writer_procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode(errors="replace")
    stop.write_text("stop")
    summaries = []
    for p in reader_procs:
        out, err = p.communicate(timeout=300)
        summary = orjson.loads(out.splitlines()[-1]) if out.strip() else {"ok": False, "error": err.decode()}
        assert p.returncode == 0 and summary["ok"], summary
        summaries.append(summary)

    records = list(store.iter_log(path))
    deltas = [r for r in records if isinstance(r, Delta)]
    new_deltas = [d for d in deltas if d.key != "seed"]
    assert len(new_deltas) == writers * per_writer
    if policy == "manual":
        assert len(records) - base == writers * per_writer  # exactly the new records, nothing else
    report = verify_file(path)
    assert report.ok and report.torn_tail_bytes == 0, report.failure
    assert thermo("verify", path).returncode == 0
    check_once(str(path), writers)
    per_worker = Counter(d.source for d in new_deltas)
    assert per_worker == {f"w{w}": per_writer for w in range(writers)}
    for w in range(writers):
        last = per_writer // batches["cli" if w % 2 == 0 else "lib"] - 1
        assert store.read(path, f"w{w}/marker").value == f"closed-{last}".encode()  # type: ignore[union-attr]
        mine = [int(d.custom["batch"].split("-b")[1]) for d in new_deltas if d.source == f"w{w}"]
        assert mine == sorted(mine), f"worker {w}'s batches are out of order"
    return {"records": len(records), "readers": summaries, "cli": dict(cli_seen)}


def test_four_writers_and_readers_lose_nothing(tmp_path: Path) -> None:
    """Quick version, with auto-consolidation on so some commits are rewrites."""
    result = _run(
        tmp_path,
        writers=4,
        per_writer=400,
        batches={"cli": 200, "lib": 100},
        readers=1,
        policy="default",
        cli_reads=2,
    )
    assert sum(r["observations"] for r in result["readers"]) >= 1  # type: ignore[index, union-attr]


@pytest.mark.slow
def test_eight_writers_of_5000_deltas_and_readers(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        writers=8,
        per_writer=5000,
        batches={"cli": 1000, "lib": 500},
        readers=2,
        policy="manual",
        cli_reads=15,
    )
    print(f"\nconcurrency: {result}")
