"""Benchmark of ``thermo verify`` and signing.

Builds a container with float32 tensor entries (64 MiB by default, 1 GiB with ``--full``)
and many small log records (200,000 by default, 1,000,000 with ``--full``), consolidated so
the state digest is bound, then measures in one run:

* entry verification (chunk digests + decompression + value SHA-256 + state digest) in
  MB/s of entry bytes, against plain ``hashlib.sha256`` over the same value bytes
  (issue 14: >= 0.5 of hashlib);
* the log pass (segment digests, record hashes, links, Merkle root) in records/s
  (goal >= 500,000/s) — in worker processes as ``thermo verify`` runs it, in one
  process, per CPU second, and over records already in memory;
* the whole ``verify_file`` and the ``thermo verify`` command;
* Ed25519 sign and verify of a checkpoint note, and ``thermo sign`` end to end.

Run: ``python -m bench.bench_audit`` (``--full`` for the 1 GiB / 1,000,000 case).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._report import report, timed

MiB = 1 << 20
GiB = 1 << 30


def build(path: Path, entry_bytes: int, n_records: int, tensor_mib: int = 1) -> tuple[int, list[bytes]]:
    """Write the benchmark file; returns (log records, the entry values)."""
    from thermo_cli import store
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import Entry, Layer, TensorSpec

    rng = np.random.default_rng(7)
    tg = Thermogram(name="bench-audit")
    per = tensor_mib * MiB
    values = []
    cold = tg.layers[Layer.COLD]
    for i in range(max(1, entry_bytes // per)):
        v = (rng.standard_normal(per // 4, dtype=np.float32) * 0.02).tobytes()
        values.append(v)
        cold[f"weights/{i:05d}"] = Entry(
            f"weights/{i:05d}", v, 0.9, 1_700_000_000_000_000_000, 5, tensor=TensorSpec("F32", (per // 4,))
        )
    t0 = time.perf_counter()
    small = b"\x00\x01\x02\x03\x04\x05\x06\x07"
    for i in range(n_records - 1):
        tg.update(f"k{i % 1000}", small, strength=0.5, timestamp_ns=1_700_000_000_000_000_000 + i)
    t1 = time.perf_counter()
    tg.consolidate()  # binds log root and state digest (hashes the entries once)
    t2 = time.perf_counter()
    store.create(path, tg, overwrite=True)
    t3 = time.perf_counter()
    print(
        f"built: {n_records} records in {t1 - t0:.1f}s, consolidate {t2 - t1:.1f}s, "
        f"write {t3 - t2:.1f}s, {path.stat().st_size / MiB:.0f} MiB"
    )
    small_values = [e.value for m in tg.layers.values() for e in m.values() if len(e.value) < per]
    return tg.log_length, values + small_values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the 1 GiB / 1,000,000-record case")
    ap.add_argument("--entries-mib", type=int, default=None)
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--dir", default=None, help="where to write the benchmark file")
    args = ap.parse_args()
    entry_mib = args.entries_mib or (1024 if args.full else 64)
    n_records = args.records or (1_000_000 if args.full else 200_000)

    from thermo_cli import store
    from thermo_cli.integrity import logscan as chain
    from thermo_cli.integrity import note
    from thermo_cli.operations.audit import checkpoints, keys, logpass
    from thermo_cli.operations.audit.layers import scan_layers
    from thermo_cli.operations.audit.verify import verify_file

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.thermo"
        size, values = build(path, entry_mib * MiB, n_records)
        value_bytes = sum(map(len, values))
        file_mib = path.stat().st_size / MiB
        t_sha = timed(lambda: plain_sha(values), repeat=3)  # the same bytes through hashlib
        c_sha = cpu_time(lambda: plain_sha(values))
        values.clear()

        def layers_pass() -> None:
            reader = store.open_reader(path)
            try:
                scan = scan_layers(reader)
                assert scan.ok
                scan.digest()
            finally:
                reader.close()

        t_layers = timed(layers_pass, repeat=3)
        c_layers = cpu_time(layers_pass)

        def log_pass(workers: int | None) -> None:
            reader = store.open_reader(path)
            try:
                scan, state = logpass.scan_file_log(reader, workers=workers)
                assert scan.failure is None and not state.bad_segments and scan.size == size
            finally:
                reader.close()

        t_log = timed(lambda: log_pass(None), repeat=3)
        t_log_seq = timed(lambda: log_pass(1), repeat=3)
        c_log = cpu_time(lambda: log_pass(1))
        reader = store.open_reader(path)
        recs = [r for seg in logpass.batches(reader, logpass.LogRead()) for r in seg]
        reader.close()
        t_scan_mem = timed(lambda: chain.scan_log(recs), repeat=3)
        log_mib = sum(map(len, recs)) / MiB
        recs.clear()

        t_verify = timed(lambda: verify_file(path), repeat=1, warmup=0)
        thermo = str(Path(sys.executable).parent / "thermo")
        t0 = time.perf_counter()
        done = subprocess.run([thermo, "verify", str(path)], capture_output=True)
        t_cli = time.perf_counter() - t0
        assert done.returncode == 0, done.stdout[-500:]

        key_path = Path(tmp) / "bench-key"
        keys.generate(key_path)
        private = keys.load_private(key_path)
        body = note.Checkpoint("thermo/bench", size, os.urandom(32), os.urandom(32)).body()
        pub = note.public_key_bytes(private.public_key())
        t_sign = timed(lambda: note.sign_body(body, "bench", private), repeat=200)
        sig = note.sign_body(body, "bench", private)
        t_vsig = timed(lambda: note.verify_signature(body, sig, pub), repeat=200)
        t0 = time.perf_counter()
        checkpoints.sign(path, private, "bench")
        t_sign_file = time.perf_counter() - t0

    sha_mbs = value_bytes / MiB / t_sha
    ver_mbs = value_bytes / MiB / t_layers
    rows = [
        {"metric": "entry bytes", "value": value_bytes / MiB, "unit": "MiB"},
        {"metric": "log records", "value": size, "unit": "records", "target": "1,000,000 (--full)"},
        {"metric": "file size", "value": file_mib, "unit": "MiB"},
        {"metric": "hashlib sha256 on the entry bytes", "value": sha_mbs, "unit": "MiB/s"},
        {
            "metric": "verify entries (chunk digests, zstd, value sha256, state digest)",
            "value": ver_mbs,
            "unit": "MiB/s",
        },
        {
            "metric": "verify entries / hashlib",
            "value": ver_mbs / sha_mbs,
            "unit": "ratio",
            "target": ">= 0.5",
            "ok": ver_mbs / sha_mbs >= 0.5,
        },
        {
            "metric": "hashlib CPU time per GiB of entries",
            "value": c_sha * GiB / value_bytes,
            "unit": "cpu-s",
        },
        {
            "metric": "verify entries CPU time per GiB (all threads)",
            "value": c_layers * GiB / value_bytes,
            "unit": "cpu-s",
        },
        {
            "metric": "verify log from file (segments, hashes, links, Merkle root)",
            "value": size / t_log,
            "unit": "records/s",
            "target": ">= 500,000",
            "ok": size / t_log >= 500_000,
        },
        {"metric": "verify log from file, one process", "value": size / t_log_seq, "unit": "records/s"},
        {
            "metric": "verify log from file, one process, per CPU second",
            "value": size / c_log,
            "unit": "records/cpu-s",
        },
        {"metric": "verify log, records in memory", "value": size / t_scan_mem, "unit": "records/s"},
        {"metric": "log bytes", "value": log_mib, "unit": "MiB"},
        {"metric": "verify_file total", "value": t_verify, "unit": "s"},
        {
            "metric": "verify_file (framing, log, layers) / hashlib over the entry bytes",
            "value": (value_bytes / MiB / t_verify) / sha_mbs,
            "unit": "ratio",
        },
        {"metric": "thermo verify (process, total)", "value": t_cli, "unit": "s"},
        {"metric": "Ed25519 sign checkpoint note", "value": t_sign * 1e6, "unit": "us"},
        {"metric": "Ed25519 verify checkpoint signature", "value": t_vsig * 1e6, "unit": "us"},
        {"metric": "sign file (verify + checkpoint + signature append)", "value": t_sign_file, "unit": "s"},
    ]
    report("audit" + ("_full" if args.full else ""), rows)


def cpu_time(fn) -> float:
    """CPU seconds of one run of ``fn`` (all threads): the rate a free core would give."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def plain_sha(values: list[bytes]) -> None:
    for v in values:
        hashlib.sha256(v).digest()


if __name__ == "__main__":
    main()
