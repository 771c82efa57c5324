"""``thermo repair``: drops a torn tail after a backup, never a commit; refuses what it cannot fix."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import orjson
import pytest

from tests.reliability.conftest import LEGACY, Thermo, make_file
from thermo_cli import store
from thermo_cli.container.fileops import lock_path
from thermo_cli.container.reader import Reader
from thermo_cli.container.writer import plan_append
from thermo_cli.errors import (
    IntegrityError,
    LockError,
    NotFoundError,
    RefusedError,
    TruncatedError,
    ValidationError,
)
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.repair import default_backup_path, leftover_temp_files, repair


def _torn_append(path: Path, keep: int) -> tuple[bytes, bytes]:
    """Write the first ``keep`` bytes of a real append commit; returns (before, torn file bytes)."""
    before = path.read_bytes()
    tg = store.load(path)
    for i in range(30):
        tg.update(f"k{i % 7}", b"torn " * (i + 1), strength=0.3)
    with Reader(path) as r:
        planned = plan_append(tg, r)
    assert planned is not None
    data = planned[0]
    assert 0 < keep < len(data)
    path.write_bytes(before + data[:keep])
    return before, path.read_bytes()


@pytest.mark.parametrize("keep", [1, 100, -44, -1])
def test_repair_drops_a_torn_append_and_keeps_a_backup(container: Path, keep: int) -> None:
    before = container.read_bytes()
    tg = store.load(container)
    tg.update("k1", b"x" * 500)
    with Reader(container) as r:
        data = plan_append(tg, r)[0]  # type: ignore[index]
    cut = keep if keep > 0 else len(data) + keep
    container.write_bytes(before + data[:cut])
    torn = container.read_bytes()

    report = repair(container)

    assert report.torn_tail_bytes == cut
    assert report.committed_bytes == len(before)
    assert container.read_bytes() == before
    assert report.backup is not None and Path(report.backup).read_bytes() == torn
    assert Path(report.backup).name.startswith("r.thermo.bak-")
    assert report.tail_sha256 is not None
    assert verify_file(container).ok


def test_clean_file_is_left_alone_without_a_backup(container: Path) -> None:
    before = container.read_bytes()
    report = repair(container)
    assert not report.needed and not report.changed and report.backup is None
    assert container.read_bytes() == before
    assert list(container.parent.glob("*.bak-*")) == []


def test_dry_run_changes_nothing(container: Path) -> None:
    _, torn = _torn_append(container, 60)
    temp = container.parent / f".{container.name}.0123456789ab.thermo-tmp"
    temp.write_bytes(b"half a rewrite")
    report = repair(container, dry_run=True)
    assert report.needed and not report.changed and report.torn_tail_bytes == 60
    assert report.temp_files == [str(temp)]
    assert container.read_bytes() == torn and temp.exists()
    assert list(container.parent.glob("*.bak-*")) == []


def test_leftover_temp_files_of_this_file_only_are_removed(container: Path) -> None:
    mine = container.parent / f".{container.name}.00112233aabb.thermo-tmp"
    other = container.parent / ".other.thermo.00112233aabb.thermo-tmp"
    unrelated = container.parent / f".{container.name}.notatemp"
    for f in (mine, other, unrelated):
        f.write_bytes(b"x")
    before = container.read_bytes()
    report = repair(container)
    assert report.temp_files == [str(mine)] and report.backup is None
    assert not mine.exists() and other.exists() and unrelated.exists()
    assert container.read_bytes() == before
    assert leftover_temp_files(container) == []


def test_backup_path_is_never_overwritten(container: Path, tmp_path: Path) -> None:
    _, torn = _torn_append(container, 80)
    taken = tmp_path / "taken.bak"
    taken.write_bytes(b"precious")
    with pytest.raises(RefusedError, match="already exists"):
        repair(container, backup=taken)
    assert taken.read_bytes() == b"precious" and container.read_bytes() == torn
    report = repair(container, backup=tmp_path / "chosen.bak")
    assert Path(report.backup or "").read_bytes() == torn


def test_default_backup_name_skips_existing_names(tmp_path: Path) -> None:
    target = str(tmp_path / "f.thermo")
    first = default_backup_path(target, now=0)
    assert first.endswith(".bak-19700101T000000Z")
    Path(first).write_bytes(b"")
    assert default_backup_path(target, now=0) == first + "-1"


def test_damaged_last_commit_is_not_mistaken_for_a_torn_tail(tmp_path: Path) -> None:
    path = make_file(tmp_path / "d.thermo", commits=3)
    with Reader(path) as r:
        last = r.trailer
        assert last.seq == 2
    data = bytearray(path.read_bytes())
    data[last.off + last.len // 2] ^= 0x01  # a bit flip inside the last trailer
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="last commit is damaged"):
        Reader(path)  # damage, not a crash: never silently fall back to the previous commit
    with pytest.raises(IntegrityError, match="last commit is damaged"):
        store.load(path)
    report = verify_file(path)  # a failed verification (exit 1), naming the damage
    assert not report.ok and report.failure is not None
    assert "last commit is damaged" in report.failure.reason
    with Reader(path, allow_damaged_tail=True) as r:
        assert r.torn_tail_bytes > 0 and r.trailer.seq == 1  # what repair --force falls back to
    with pytest.raises(RefusedError, match="damaged commit"):
        repair(path)
    assert path.read_bytes() == bytes(data)
    report = repair(path, force=True, backup=tmp_path / "forced.bak")
    assert (tmp_path / "forced.bak").read_bytes() == bytes(data)
    assert report.commit_seq == 1 and verify_file(path).ok


def test_commit_refuses_to_append_over_a_damaged_last_commit(tmp_path: Path) -> None:
    path = make_file(tmp_path / "d.thermo", commits=3)
    tg = store.load(path)
    tg.update("k1", b"after the damage", strength=0.5)
    data = bytearray(path.read_bytes())
    data[-44 + 10] ^= 0x40  # a bit flip in the footer's trailer digest; the end magic is intact
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="last commit is damaged"):
        store.commit(path, tg)
    assert path.read_bytes() == bytes(data)  # the damaged commit was not cut away
    run = Thermo()("verify", path)
    assert run.code == 1 and "last commit is damaged" in run.out and run.out.rstrip().endswith("FAILED")


def test_legacy_and_missing_files_are_refused(tmp_path: Path) -> None:
    legacy = next(LEGACY.rglob("*.thermo"))
    with pytest.raises(ValidationError, match=r"repair works on \.thermo containers"):
        repair(legacy)
    with pytest.raises(NotFoundError):
        repair(tmp_path / "missing.thermo")
    with pytest.raises(ValidationError, match="directory"):
        repair(tmp_path)


def test_file_without_any_commit_is_refused_untouched(container: Path) -> None:
    with Reader(container) as r:
        first_trailer = next(t for t in r.trailers() if t.prev is None)
    cut = container.read_bytes()[: first_trailer.off + 10]
    container.write_bytes(cut)
    with pytest.raises(TruncatedError):
        repair(container)
    assert container.read_bytes() == cut
    assert list(container.parent.glob("*.bak-*")) == []


def test_repair_waits_for_the_writer_lock(container: Path) -> None:
    _torn_append(container, 50)
    fd = os.open(lock_path(container), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        pid = os.fork()
        if pid == 0:  # the child holds no lock: repair must give up after the timeout
            code = 0
            try:
                repair(container, lock_timeout=0.2)
                code = 1
            except LockError:
                code = 0
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
    assert repair(container).torn_tail_bytes == 50


# --- the command ---------------------------------------------------------------------------------


def test_cli_repair_reports_and_repairs(container: Path, thermo: Thermo) -> None:
    before, torn = _torn_append(container, 123)
    verify = thermo("verify", "--json", container)
    assert verify.code == 0
    assert orjson.loads(verify.out)["torn_tail_bytes"] == 123

    run = thermo("repair", container, "--json")
    assert run.code == 0, run.err
    doc = orjson.loads(run.out)
    assert doc["torn_tail_bytes"] == 123 and doc["changed"] and doc["committed_bytes"] == len(before)
    assert Path(doc["backup"]).read_bytes() == torn
    assert "dropped a torn tail of 123 bytes" in run.err
    assert container.read_bytes() == before

    again = thermo("repair", container)
    assert again.code == 0 and "nothing to repair" in again.err


def test_cli_repair_error_paths(container: Path, thermo: Thermo, tmp_path: Path) -> None:
    legacy = next(LEGACY.rglob("*.thermo"))
    run = thermo("repair", legacy)
    assert run.code == 3 and run.err.count("\n") == 1 and "repair works on .thermo" in run.err
    assert thermo("repair", tmp_path / "none.thermo").code == 6
    _, torn = _torn_append(container, 10)
    taken = tmp_path / "b"
    taken.write_bytes(b"")
    run = thermo("repair", container, "--backup", taken)
    assert run.code == 4 and "already exists" in run.err
    assert container.read_bytes() == torn
    dry = thermo("repair", container, "--dry-run")
    assert dry.code == 0 and "would drop a torn tail of 10 bytes" in dry.err
    assert container.read_bytes() == torn


@pytest.mark.clock
def test_default_backup_name_reads_the_clock(tmp_path: Path) -> None:
    from thermo_cli.config.clock import fixed_clock, use_clock

    with use_clock(fixed_clock(1_767_323_045 * 10**9 + 999_999_999)):  # 2026-01-02T03:04:05.999…Z
        name = default_backup_path(str(tmp_path / "f.thermo"))
    assert name.endswith("f.thermo.bak-20260102T030405Z")
