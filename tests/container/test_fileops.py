"""The one atomic writer: nothing planted beside the target is written through, an existing
file is kept or refused as asked, its mode survives, a failure leaves no trace, and the
directory is fsynced after the rename."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import sync_kinds
from thermo_cli.container import fileops
from thermo_cli.container.fileops import atomic_output, atomic_write, leftover_temp_files
from thermo_cli.errors import RefusedError, ValidationError

_NAMES = ("a" * 12, "b" * 12, "c" * 12)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the output directory that a planted symlink points at."""
    p = tmp_path / "elsewhere" / "victim"
    p.parent.mkdir()
    p.write_bytes(b"precious")
    return p


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture
def predictable(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Make the random part of temp names known, so a test can plant links at them."""
    names = itertools.cycle(_NAMES)
    monkeypatch.setattr(fileops, "random_tag", lambda: next(names))
    return _NAMES


def _write(data: bytes):
    return lambda f: f.write(data)


def _listing(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


# --- symlinks ----------------------------------------------------------------------------------


def test_links_planted_at_the_temp_names_are_not_written_through(out_dir, victim, predictable):
    target = out_dir / "export.jsonl"
    planted = [f".{target.name}.{_NAMES[0]}.thermo-tmp", f".{target.name}.tmp-{os.getpid()}"]
    for name in planted:
        (out_dir / name).symlink_to(victim)
    atomic_write(target, _write(b"new"), overwrite=False)
    assert target.read_bytes() == b"new" and not target.is_symlink()
    assert victim.read_bytes() == b"precious"
    assert all(os.readlink(out_dir / name) == str(victim) for name in planted)
    assert _listing(out_dir) == {target.name, *planted}


def test_links_at_every_temp_name_make_the_write_fail_without_writing(out_dir, victim, predictable):
    target = out_dir / "export.jsonl"
    for name in _NAMES:
        (out_dir / f".{target.name}.{name}.thermo-tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        atomic_write(target, _write(b"new"), overwrite=True)
    assert victim.read_bytes() == b"precious" and not target.exists()


def test_a_symlinked_target_writes_the_file_it_points_to(out_dir, victim):
    link = out_dir / "link.thermo"
    link.symlink_to(victim)
    atomic_write(link, _write(b"rewritten"), overwrite=True)
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert victim.read_bytes() == b"rewritten"
    assert _listing(out_dir) == {"link.thermo"} and _listing(victim.parent) == {"victim"}


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlinked_target_is_refused_without_overwrite(out_dir, victim, dangling):
    link = out_dir / "link.thermo"
    link.symlink_to(victim.parent / "missing" if dangling else victim)
    with pytest.raises(RefusedError, match=r"link\.thermo: already exists"):
        atomic_write(link, _write(b"new"), overwrite=False)
    assert victim.read_bytes() == b"precious" and not (victim.parent / "missing").exists()


def test_temp_files_of_a_symlinked_target_are_found_beside_the_real_file(out_dir, victim):
    link = out_dir / "link.thermo"
    link.symlink_to(victim)
    with atomic_output(link, overwrite=True) as f:
        (temp,) = leftover_temp_files(link)
        assert os.path.dirname(temp) == str(victim.parent)
        f.write(b"x")
    assert leftover_temp_files(link) == []


# --- overwrite=False ---------------------------------------------------------------------------


def test_an_existing_target_is_refused_naming_it(out_dir):
    target = out_dir / "keys"
    target.write_bytes(b"old")
    with pytest.raises(RefusedError, match=rf"^{target}: already exists"):
        atomic_write(target, _write(b"new"), overwrite=False)
    assert target.read_bytes() == b"old" and _listing(out_dir) == {"keys"}


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_file_created_while_writing_is_not_clobbered(out_dir, monkeypatch, hard_links):
    if not hard_links:
        monkeypatch.setattr(fileops.os, "link", _no_link)
    target = out_dir / "race"
    with pytest.raises(RefusedError, match="already exists"), atomic_output(target, overwrite=False) as f:
        f.write(b"mine")
        target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs" and _listing(out_dir) == {"race"}


def test_without_hard_links_a_new_file_is_still_published(out_dir, monkeypatch):
    monkeypatch.setattr(fileops.os, "link", _no_link)
    target = out_dir / "new"
    atomic_write(target, _write(b"data"), overwrite=False)
    assert target.read_bytes() == b"data" and _listing(out_dir) == {"new"}


def _no_link(*args, **kwargs):
    raise PermissionError(1, "Operation not permitted")


def test_a_directory_target_is_refused(out_dir):
    with pytest.raises(ValidationError, match="is a directory"):
        atomic_write(out_dir, _write(b"x"), overwrite=True)
    assert _listing(out_dir) == set()


# --- modes -------------------------------------------------------------------------------------


def test_the_mode_of_a_replaced_file_is_kept(out_dir):
    target = out_dir / "f"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(target, _write(b"new"), overwrite=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() == b"new"


def test_a_new_file_gets_what_open_would_give_it(out_dir):
    old = os.umask(0o027)
    try:
        atomic_write(out_dir / "f", _write(b"x"), overwrite=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((out_dir / "f").stat().st_mode) == 0o640


@pytest.mark.parametrize("existing", [False, True])
def test_a_caller_given_mode_wins(out_dir, existing):
    target = out_dir / "id_ed25519"
    if existing:
        target.write_bytes(b"old")
        target.chmod(0o644)
    atomic_write(target, _write(b"secret"), overwrite=True, mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["body", "check"])
def test_a_failure_leaves_the_target_byte_identical_and_no_temp_file(out_dir, where):
    target = out_dir / "state.thermo"
    target.write_bytes(b"\x00old bytes\xff")

    def check(tmp: str) -> None:
        assert Path(tmp).read_bytes() == b"half"
        raise RuntimeError("check failed")

    with pytest.raises(RuntimeError), atomic_output(target, overwrite=True, check=check) as f:
        f.write(b"half")
        if where == "body":
            raise RuntimeError("body failed")
    assert target.read_bytes() == b"\x00old bytes\xff" and _listing(out_dir) == {"state.thermo"}


def test_a_failing_callback_leaves_nothing(out_dir):
    def boom(f) -> None:
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(out_dir / "new", boom, overwrite=False)
    assert _listing(out_dir) == set()


# --- durability --------------------------------------------------------------------------------


def test_the_file_then_after_the_rename_its_directory_are_fsynced(out_dir, monkeypatch):
    events: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        events.append(("fsync-dir" if stat.S_ISDIR(st.st_mode) else "fsync-file", st.st_ino))
        real_fsync(fd)

    def replace(src, dst, **kw) -> None:
        events.append(("replace", 0))
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = out_dir / "f"
    atomic_write(target, _write(b"data"), overwrite=True)
    assert events == [
        ("fsync-file", target.stat().st_ino),
        ("replace", 0),
        ("fsync-dir", out_dir.stat().st_ino),
    ]


def test_a_non_durable_write_syncs_nothing_and_writes_the_same_bytes(out_dir, syncs):
    with atomic_output(out_dir / "fast", overwrite=False, durable=False) as f:
        f.write(b"payload")
    assert syncs == []
    with atomic_output(out_dir / "safe", overwrite=False, durable=True) as f:
        f.write(b"payload")
    assert sync_kinds(syncs) == ["file", "dir"]
    assert (out_dir / "fast").read_bytes() == (out_dir / "safe").read_bytes() == b"payload"


def test_a_non_durable_write_is_still_atomic_when_it_fails_midway(out_dir, syncs):
    target = out_dir / "f"
    target.write_bytes(b"old complete file")
    with pytest.raises(OSError, match="No space"), atomic_output(target, overwrite=True, durable=False) as f:
        f.write(b"new but partial" * 100_000)  # past the buffer: bytes reach the temp file
        assert leftover_temp_files(target)  # the partial file exists, beside the target only
        raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"old complete file"
    assert _listing(out_dir) == {"f"}
    assert syncs == []


def test_a_source_is_never_an_output(tmp_path):
    from thermo_cli.container.fileops import refuse_overwriting_source
    from thermo_cli.errors import RefusedError

    src = tmp_path / "in.thermo"
    src.write_bytes(b"x")
    link = tmp_path / "link.thermo"
    link.symlink_to(src)
    for dst in (src, tmp_path / "." / "in.thermo", link):
        with pytest.raises(RefusedError, match="is the source file itself"):
            refuse_overwriting_source(src, dst)
    refuse_overwriting_source(src, tmp_path / "out.thermo")  # a new path is fine


def test_write_behind_flushes_while_writing_and_waits_at_close(tmp_path, monkeypatch):
    flushed: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        flushed.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    with open(tmp_path / "out.bin", "wb") as fh:
        behind = fileops.WriteBehind(fh, 1000)
        for _ in range(10):
            fh.write(b"x" * 600)
            behind.wrote(600)
            behind.close()  # one flush at a time: let each finish, so every threshold flushes
        behind.close()
    # a flush starts once 1,000 bytes wait, after the buffered bytes reached the file
    assert flushed == [1200, 2400, 3600, 4800, 6000]


def test_write_behind_raises_a_failed_background_flush_at_close(tmp_path, monkeypatch):
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with open(tmp_path / "out.bin", "wb") as fh:
        behind = fileops.WriteBehind(fh, 10)
        fh.write(b"y" * 20)
        behind.wrote(20)
        with pytest.raises(OSError, match="Input/output error"):
            behind.close()
