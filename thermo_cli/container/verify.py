"""Structural verification of a container: every digest, record hash, link and Merkle root.

This is the container's part of ``thermo verify``: it proves that the bytes are the ones
the commits vouched for. Checks stop at the first failure of each kind and name the
offending chunk, record index or commit. The audit layer adds state digests, signatures
and consistency proofs on top of the same :class:`~thermo_cli.audit.report.VerifyReport`.
"""

from __future__ import annotations

import os

from thermo_cli import records
from thermo_cli.audit.merkle import CompactRange, leaf_hash
from thermo_cli.audit.report import VerifyReport
from thermo_cli.container import chunks as ck
from thermo_cli.container.limits import Limits
from thermo_cli.container.reader import Reader
from thermo_cli.errors import FormatError
from thermo_cli.model import Delta, HashScheme, Layer


def verify_container(path: str | os.PathLike[str], *, limits: Limits | None = None,
                     reader: Reader | None = None) -> VerifyReport:
    p = os.fspath(path)
    report = VerifyReport(path=p, format="thermo container v2")
    own = reader is None
    if reader is None:
        from thermo_cli.store import open_reader

        try:
            reader = open_reader(p, limits=limits)
        except FormatError as exc:
            report.add("open", False, 0, str(exc))
            report.fail("open", str(exc))
            return report
    try:
        report.format = f"thermo container v{reader.prefix.major}.{reader.prefix.minor}"
        report.torn_tail_bytes = reader.torn_tail_bytes
        report.head_hash = reader.trailer.head_hex
        report.records = reader.trailer.log_size
        if reader.torn_tail_bytes:
            report.notes.append(
                f"{reader.torn_tail_bytes} bytes after the last commit belong to an interrupted write "
                "and were ignored (the next commit or `thermo repair` removes them)")
        _check_commits(reader, report)
        _check_chunks(reader, report)
        _check_log(reader, report)
    finally:
        if own:
            reader.close()
    return report


def _check_commits(reader: Reader, report: VerifyReport) -> None:
    n = 0
    seen: set[tuple[int, int]] = set()
    try:
        for t in reader.trailers():
            n += 1
            for name, ref in (("meta block", t.meta), ("index block", t.index)):
                if (ref.off, ref.len) not in seen:
                    seen.add((ref.off, ref.len))
                    reader.read_block(ref, f"{name} of commit {t.seq}")
            table = t.table
            while table is not None and (table.off, table.len) not in seen:
                seen.add((table.off, table.len))
                table = reader.table(table, t.off)[1]
        _ = reader.meta_fields()
        _ = reader.index
    except FormatError as exc:
        report.add("commits", False, n, str(exc))
        report.fail("commits", str(exc))
        return
    report.add("commits", True, n, f"{n} commit(s); trailers, meta and index blocks match their digests")


def _check_chunks(reader: Reader, report: VerifyReport) -> None:
    n = 0
    entries = 0
    try:
        for layer in Layer:
            li = reader.index[layer]
            for i in range(len(li.dirs)):
                entries += len(reader.dir_chunk(layer, i))
                n += 1
            for s, st in enumerate(li.streams):
                for i in range(len(st.chunks)):
                    reader.data_chunk(layer, s, i)
                    n += 1
    except FormatError as exc:
        report.add("chunks", False, n, str(exc))
        report.fail("chunks", str(exc))
        return
    report.add("chunks", True, n, f"{n} chunk(s) holding {entries} entries match their digests")


def _record_hash(rec: records.LogRecord) -> str | None:
    if isinstance(rec, Delta) and rec.scheme is HashScheme.LEGACY:
        return records.legacy_delta_hash(rec)
    return rec.hash


def _check_log(reader: Reader, report: VerifyReport) -> None:
    t = reader.trailer
    sizes = {tr.log_size: tr for tr in reader.trailers()}
    rng = CompactRange()
    head: str | None = None
    count = 0
    try:
        for raw in reader.iter_raw_records(0):
            rec = records.decode_record(raw.data, what=f"log record {raw.index}")
            legacy = isinstance(rec, Delta) and rec.scheme is HashScheme.LEGACY
            if legacy and records.legacy_delta_hash(rec) != rec.hash:  # type: ignore[arg-type]
                report.add("log", False, count, "legacy delta hash mismatch")
                report.fail("log", "legacy delta hash does not match its fields", index=raw.index,
                            key=rec.key)  # type: ignore[union-attr]
                return
            if rec.prev_hash != head:
                report.add("log", False, count, "broken link")
                report.fail("log", f"prev_hash {rec.prev_hash} does not link to {head}", index=raw.index)
                return
            head = rec.hash
            rng.append(leaf_hash(raw.data))
            count += 1
            tr = sizes.get(rng.size)
            if tr is not None and tr.range_nodes != rng.nodes:
                report.add("merkle", False, count, f"commit {tr.seq}")
                report.fail("merkle", f"compact range of commit {tr.seq} does not match its records",
                            index=raw.index)
                return
    except FormatError as exc:
        report.add("log", False, count, str(exc))
        report.fail("log", str(exc), index=count)
        return
    if count != t.log_size or head != t.head_hex:
        report.add("log", False, count, "head")
        report.fail("log", f"log ends with {count} records and head {head}, "
                    f"the trailer says {t.log_size} and {t.head_hex}")
        return
    report.add("log", True, count, "record hashes and links verified")
    root = rng.root()
    ok = root == t.compact_range().root()
    report.add("merkle", ok, count, f"log root {root.hex()}")
    if not ok:
        report.fail("merkle", "log root differs from the trailer's compact range")
    _ = ck
