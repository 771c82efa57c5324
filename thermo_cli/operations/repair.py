"""Repair a container after a crash: drop its torn tail, clear leftover temporary files.

A writer killed in the middle of an append leaves bytes after the last valid commit (a
*torn tail*); one killed in the middle of a rewrite leaves a ``.<name>.<random>.thermo-tmp``
file beside the target. Readers already ignore both (the container reader finds the last
valid commit), so nothing is lost; repairing only makes the file end where its last
commit ends again, so that ``thermo verify`` stops noting the tail and tools that copy or
checksum the file see just the committed bytes.

Repair never drops committed data:

* it only cuts at the end of the last commit the container reader accepts, and only
  while holding the writer lock (an append in progress looks exactly like a torn tail);
* it refuses to cut a tail that the reader classifies as damage unless forced (spec §11):
  a complete commit that does not check out (an interrupted append never leaves a whole
  footer: it is written last), an older commit appended, bytes that no commit covers —
  cases for ``thermo verify``, not for truncation;
* it first copies the whole file, tail included, to a backup (atomically, never over an
  existing file), then truncates, syncs, and re-opens the file to check that the same
  commit is now its end.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from thermo_cli.config.clock import now_ns
from thermo_cli.container.fileops import (
    DEFAULT_LOCK_TIMEOUT,
    atomic_write,
    fsync_dir,
    leftover_temp_files,
    locked,
)
from thermo_cli.container.reader import Reader
from thermo_cli.errors import IntegrityError, NotFoundError, RefusedError, ValidationError
from thermo_cli.model import NS_PER_SECOND
from thermo_cli.store import sniff

_COPY_BLOCK = 1 << 20


@dataclass(slots=True)
class RepairReport:
    """What :func:`repair` found and did (or, with ``dry_run``, would do)."""

    path: str
    file_bytes: int
    """Size of the file before the repair."""
    committed_bytes: int
    """End of the last valid commit: the size after the repair."""
    torn_tail_bytes: int
    log_size: int
    head_hash: str | None
    commit_seq: int
    """Sequence number of the last valid commit (kept by the repair)."""
    tail_sha256: str | None = None
    """SHA-256 of the dropped bytes, so the backup can be matched to the repair."""
    backup: str | None = None
    temp_files: list[str] = field(default_factory=list)
    """Leftover temporary files of interrupted rewrites (removed unless dry run)."""
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return not self.dry_run and (self.torn_tail_bytes > 0 or bool(self.temp_files))

    @property
    def needed(self) -> bool:
        return self.torn_tail_bytes > 0 or bool(self.temp_files)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["needed"] = self.needed
        doc["changed"] = self.changed
        return doc


def default_backup_path(path: str, now: float | None = None) -> str:
    """``FILE.bak-<UTC time>``; a numeric suffix keeps it from naming an existing file.
    ``now`` is in seconds since the epoch; by default the context's clock tells the time."""
    secs = now_ns() // NS_PER_SECOND if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(secs))
    base = f"{path}.bak-{stamp}"
    candidate, n = base, 1
    while os.path.lexists(candidate):
        candidate = f"{base}-{n}"
        n += 1
    return candidate


def repair(
    path: str | os.PathLike[str],
    *,
    backup: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    force: bool = False,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
) -> RepairReport:
    """Drop the torn tail of the container at ``path`` (after a backup) and stale temp files.

    ``backup`` names the copy of the original bytes (default ``FILE.bak-<UTC time>``); it
    must not exist. ``force`` allows dropping a tail that ends in a complete footer (a
    damaged commit rather than an interrupted one). Raises NotFoundError, ValidationError
    (not a container), RefusedError (backup exists, damaged last commit without
    ``force``), LockError, or the reader's FormatError when no committed state is left.
    """
    p = os.path.abspath(os.fspath(path))
    if not os.path.exists(p):
        if leftover_temp_files(p):
            return _clear_temp_files(p, dry_run=dry_run, lock_timeout=lock_timeout)
        raise NotFoundError(f"{p}: no such file")
    if os.path.isdir(p):
        raise ValidationError(f"{p}: is a directory, not a thermogram file")
    _check_container(p)
    with locked(p, timeout=lock_timeout):
        with Reader(p, allow_damaged_tail=True) as reader:
            report = RepairReport(
                path=p,
                file_bytes=reader.file_size,
                committed_bytes=reader.committed_end,
                torn_tail_bytes=reader.torn_tail_bytes,
                log_size=reader.trailer.log_size,
                head_hash=reader.trailer.head_hex,
                commit_seq=reader.trailer.seq,
                temp_files=leftover_temp_files(p),
                dry_run=dry_run,
            )
            commit_sha = reader.trailer.commit_sha256
            if report.torn_tail_bytes:
                tail_end = reader.pread(reader.committed_end, report.torn_tail_bytes)
                report.tail_sha256 = hashlib.sha256(tail_end).hexdigest()
                if reader.tail_fault is not None and not force:
                    raise RefusedError(
                        f"{p}: the {report.torn_tail_bytes} bytes after the last valid commit are a damaged "
                        "commit or bytes outside any commit, not an interrupted write "
                        f"({reader.tail_fault}); dropping them could lose committed data "
                        "(check with `thermo verify`; pass force=True to drop them anyway, after a backup)"
                    )
        if dry_run:
            if report.torn_tail_bytes:
                report.backup = os.fspath(backup) if backup is not None else default_backup_path(p)
            return report
        if report.torn_tail_bytes:
            report.backup = _write_backup(p, report.file_bytes, backup)
            _truncate(p, report.committed_bytes)
            _check_repaired(p, report, commit_sha)
        for temp in report.temp_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return report


def _clear_temp_files(p: str, *, dry_run: bool, lock_timeout: float | None) -> RepairReport:
    """A write to a new ``p`` that was killed (an import, a migrate) left only its temporary
    file: there is nothing to cut back, but the garbage beside the missing file goes."""
    with locked(p, timeout=lock_timeout):
        report = RepairReport(
            path=p,
            file_bytes=0,
            committed_bytes=0,
            torn_tail_bytes=0,
            log_size=0,
            head_hash=None,
            commit_seq=0,
            temp_files=leftover_temp_files(p),
            dry_run=dry_run,
        )
        if not dry_run:
            for temp in report.temp_files:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
    return report


def _check_container(p: str) -> None:
    kind = sniff(p)
    if kind != "thermo":
        raise ValidationError(
            f"{p}: is a Rust-crate {kind} JSON file; repair works on .thermo containers "
            "(a JSON file has no commits to cut back to: check it with `thermo verify`)"
        )


def _write_backup(p: str, size: int, backup: str | os.PathLike[str] | None) -> str:
    """Copy the first ``size`` bytes of ``p`` (the whole file, tail included) to a new file."""
    target = os.path.abspath(os.fspath(backup)) if backup is not None else default_backup_path(p)
    if os.path.lexists(target):
        raise RefusedError(f"{target}: backup file already exists (choose another path with backup=…)")
    if not os.path.isdir(os.path.dirname(target)):
        raise NotFoundError(f"{os.path.dirname(target)}: backup directory does not exist")

    def copy(out: Any) -> None:
        with open(p, "rb") as src:
            left = size
            while left:
                block = src.read(min(_COPY_BLOCK, left))
                if not block:
                    raise IntegrityError(f"{p}: shrank while being backed up")
                out.write(block)
                left -= len(block)

    atomic_write(target, copy, overwrite=False, mode=os.stat(p).st_mode & 0o7777)
    if os.path.getsize(target) != size:
        raise IntegrityError(f"{target}: backup holds {os.path.getsize(target)} bytes, expected {size}")
    return target


def _truncate(p: str, size: int) -> None:
    fd = os.open(p, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(p)


def _check_repaired(p: str, report: RepairReport, commit_sha: bytes) -> None:
    with Reader(p) as after:
        if after.torn_tail_bytes or after.trailer.commit_sha256 != commit_sha:
            raise IntegrityError(
                f"{p}: after truncation the file does not end in the commit it was cut back to "
                f"(the original bytes are in {report.backup})"
            )
