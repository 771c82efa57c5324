"""Disk full, file-size limits and read-only directories: writers fail cleanly, files stay as they were.

Every writing command is run as a real subprocess while writes cannot succeed:

* with ``RLIMIT_FSIZE`` set just above the file's size (works for any user: a write past
  the limit fails with EFBIG, which Python reports as "File too large");
* on a small tmpfs filled up to the last few KiB (ENOSPC), when this process may mount
  (root), else skipped;
* in a read-only directory: a read-only tmpfs remount as root, ``chmod 555`` otherwise.

Each must exit with code 3 and a one-line error, leave the target byte-identical (or not
create it), leave no temporary file, and the file must still open and verify.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.reliability import scenarios
from tests.reliability.conftest import LEGACY
from tests.reliability.harness import ROOT, THERMO, child_env
from thermo_cli import store
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.repair import leftover_temp_files

KiB = 1024


@dataclass
class Workspace:
    dir: Path
    file: Path
    batch: Path
    model: Path
    acts: Path
    legacy: Path


def make_workspace(d: Path) -> Workspace:
    """A thermogram with float tensors in cool, dirty deltas and (if available) a network."""
    from thermo_cli.operations.safetensors import import_safetensors

    d.mkdir(parents=True, exist_ok=True)
    model = scenarios.write_checkpoint(d / "model.safetensors", tensors=4, rows=64, cols=64, seed=1)
    target = d / "w.thermo"
    import_safetensors([model], target)
    tg = store.load(target)
    if scenarios.snn_available():
        from thermo_cli.operations.snn.config import SNNConfig
        from thermo_cli.operations.snn.runner import attach_network

        attach_network(tg, SNNConfig(num_neurons=32, input_dim=64), seed=3)
    for i in range(200):
        tg.update(f"d{i % 40}", f"dirty {i} ".encode() * 8, strength=0.5)
    store.commit(target, tg)
    _fill_last_page(target)
    batch = scenarios.write_deltas(d / "batch.jsonl", 3000, seed=2)
    rng = np.random.default_rng(4)
    acts = rng.normal(size=(400, 64)).astype(np.float32)
    np.save(d / "acts.npy", acts)
    legacy = d / "legacy.thermo"
    shutil.copyfile(LEGACY / "v0.5" / "consolidated.thermo", legacy)
    return Workspace(d, target, batch, model, d / "acts.npy", legacy)


def _fill_last_page(target: Path) -> None:
    """Grow the file until its last 4 KiB page is nearly full: on a full tmpfs a small append
    (``tick``) that fits in the page's unused tail needs no new block and would succeed, so
    whether the full-disk test passed depended on the file's size modulo 4 KiB."""
    rng = np.random.default_rng(5)
    overhead = 600  # bytes a commit of one update adds besides its value; measured below
    for _ in range(12):
        size = target.stat().st_size
        slack = -size % 4096
        if slack < 200:
            return
        length = slack - overhead - 60
        if length < 1:
            length += 4096
        tg = store.load(target)
        tg.update("page-filler", rng.bytes(length), strength=0.5)  # random: no compression
        store.commit(target, tg)
        overhead = target.stat().st_size - size - length
    raise AssertionError(f"{target}: could not fill its last page")


@dataclass
class Command:
    name: str
    argv: Callable[[Workspace], list[str]]
    outputs: Callable[[Workspace], list[Path]]
    """Files the command would create: they must not exist afterwards."""
    appends: bool = False


COMMANDS = [
    Command(
        "apply",
        lambda w: ["apply", str(w.file), str(w.batch), "--no-auto-consolidate"],
        lambda w: [],
        appends=True,
    ),
    Command("apply+consolidate", lambda w: ["apply", str(w.file), str(w.batch)], lambda w: []),
    Command("consolidate", lambda w: ["consolidate", str(w.file)], lambda w: []),
    Command("tick", lambda w: ["tick", str(w.file)], lambda w: []),
    Command("quantize", lambda w: ["quantize", str(w.file), "--layer", "cool", "--force"], lambda w: []),
    Command(
        "snn run", lambda w: ["snn", "run", str(w.file), "--input", str(w.acts)], lambda w: [], appends=True
    ),
    Command(
        "import-safetensors",
        lambda w: ["import-safetensors", str(w.model), str(w.dir / "new.thermo")],
        lambda w: [w.dir / "new.thermo"],
    ),
    Command("init", lambda w: ["init", str(w.dir / "fresh.thermo")], lambda w: [w.dir / "fresh.thermo"]),
    Command(
        "migrate",
        lambda w: ["migrate", str(w.legacy), str(w.dir / "migrated.thermo")],
        lambda w: [w.dir / "migrated.thermo"],
    ),
    Command(
        "export",
        lambda w: ["export", str(w.file), str(w.dir / "dump.jsonl")],
        lambda w: [w.dir / "dump.jsonl"],
    ),
]
COMMAND_IDS = [c.name.replace(" ", "_").replace("+", "_") for c in COMMANDS]


def _run(argv: list[str], *, fsize: int | None = None) -> subprocess.CompletedProcess[bytes]:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [*THERMO, *argv],
        capture_output=True,
        cwd=ROOT,
        env=child_env(),
        preexec_fn=limit,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _run_here(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """The same command in this process (CliRunner): no interpreter start-up to pay."""
    from tests.reliability.conftest import Thermo

    run = Thermo()(*argv)
    return subprocess.CompletedProcess(argv, run.code, run.out.encode(), run.err.encode())


def _snapshot_dir(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and not p.name.endswith(".lock")}


def _check_failed_cleanly(
    cmd: Command,
    w: Workspace,
    proc: subprocess.CompletedProcess[bytes],
    before: dict[str, bytes],
    reason: bytes,
) -> None:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 3, (cmd.name, proc.returncode, err)
    assert err.count("\n") == 1 and err.startswith("thermo: error: "), (cmd.name, err)
    assert reason.decode() in err, (cmd.name, err)
    assert _snapshot_dir(w.dir) == before, f"{cmd.name}: a file changed or appeared"
    assert leftover_temp_files(w.file) == []
    for out in cmd.outputs(w):
        assert not out.exists() and leftover_temp_files(out) == []
    report = verify_file(w.file)
    assert report.ok and report.torn_tail_bytes == 0


def _skip_missing(cmd: Command) -> None:
    if cmd.name == "snn run" and not scenarios.snn_available():
        pytest.skip("thermo snn run is not available in this checkout")


# --- file size limit (any user) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("disk") / "template")


def _copy(template: Workspace, d: Path) -> Workspace:
    shutil.copytree(template.dir, d)
    return Workspace(
        d,
        d / template.file.name,
        d / template.batch.name,
        d / template.model.name,
        d / template.acts.name,
        d / template.legacy.name,
    )


@pytest.mark.parametrize("cmd", COMMANDS, ids=COMMAND_IDS)
def test_write_past_the_file_size_limit_fails_cleanly(
    cmd: Command, workspace_template: Workspace, tmp_path: Path
) -> None:
    _skip_missing(cmd)
    w = _copy(workspace_template, tmp_path / "w")
    before = _snapshot_dir(w.dir)
    limit = w.file.stat().st_size + 512 if cmd.appends else 256
    proc = _run(cmd.argv(w), fsize=limit)
    _check_failed_cleanly(cmd, w, proc, before, b"File too large")
    after = _run_here(cmd.argv(w))  # and with room to write it works
    assert after.returncode == 0, after.stderr.decode(errors="replace")


def test_repair_that_cannot_write_its_backup_changes_nothing(
    workspace_template: Workspace, tmp_path: Path
) -> None:
    w = _copy(workspace_template, tmp_path / "w")
    with open(w.file, "ab") as f:
        f.write(b"\x00torn append")  # shorter than a commit header: an interrupted append
    before = _snapshot_dir(w.dir)
    proc = _run(["repair", str(w.file)], fsize=1 * KiB)
    assert proc.returncode == 3 and b"File too large" in proc.stderr
    assert _snapshot_dir(w.dir) == before
    assert not list(w.dir.glob("*.bak-*")) and not list(w.dir.glob("*.thermo-tmp"))


# --- a full file system (root: a small tmpfs) ---------------------------------------------------------


@contextlib.contextmanager
def mounted_tmpfs(size: int) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    d = Path(tempfile.mkdtemp(prefix="thermo-tmpfs-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True
    )
    if done.returncode != 0:
        d.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        with contextlib.suppress(OSError):
            d.rmdir()


def _fill(d: Path, leave: int) -> Path:
    """Fill the file system of ``d`` until only about ``leave`` bytes are free."""
    filler = d / "filler.bin"
    st = os.statvfs(d)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_full_disk_fails_every_writer_cleanly(workspace_template: Workspace) -> None:
    with mounted_tmpfs(8 * 1024 * KiB) as mnt:
        w = _copy(workspace_template, mnt / "w")
        for cmd in COMMANDS:
            if cmd.name == "snn run" and not scenarios.snn_available():
                continue
            filler = _fill(mnt, 0)
            before = _snapshot_dir(w.dir)
            proc = _run_here(cmd.argv(w))
            _check_failed_cleanly(cmd, w, proc, before, b"No space left on device")
            filler.unlink()


def test_full_disk_then_space_freed_the_file_works_again(workspace_template: Workspace) -> None:
    with mounted_tmpfs(8 * 1024 * KiB) as mnt:
        w = _copy(workspace_template, mnt / "w")
        filler = _fill(mnt, 0)
        assert _run(COMMANDS[0].argv(w)).returncode == 3
        filler.unlink()
        done = _run_here(COMMANDS[0].argv(w))
        assert done.returncode == 0, done.stderr
        assert verify_file(w.file).ok


# --- read-only directory ------------------------------------------------------------------------------


@contextlib.contextmanager
def read_only(d: Path) -> Iterator[str]:
    """Make ``d`` read-only: a read-only tmpfs as root (root ignores permission bits), else chmod."""
    if os.geteuid() == 0:
        with mounted_tmpfs(16 * 1024 * KiB) as mnt:
            shutil.copytree(d, mnt / d.name)
            if subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode != 0:
                pytest.skip("cannot remount the tmpfs read-only")
            yield str(mnt / d.name)
        return
    mode = d.stat().st_mode
    d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield str(d)
    finally:
        d.chmod(mode)


def test_read_only_directory_refuses_writers_and_serves_readers(
    workspace_template: Workspace, tmp_path: Path
) -> None:
    w = _copy(workspace_template, tmp_path / "w")
    (w.dir / (w.file.name + ".lock")).unlink(missing_ok=True)
    with read_only(w.dir) as ro:
        r = Workspace(Path(ro), Path(ro) / w.file.name, w.batch, w.model, w.acts, w.legacy)
        before = _snapshot_dir(r.dir)
        for cmd in COMMANDS:
            if cmd.name == "snn run" and not scenarios.snn_available():
                continue
            proc = _run_here(cmd.argv(r))
            err = proc.stderr.decode(errors="replace")
            assert proc.returncode == 3 and err.count("\n") == 1, (cmd.name, proc.returncode, err)
            assert "Read-only file system" in err or "Permission denied" in err, (cmd.name, err)
            assert _snapshot_dir(r.dir) == before, cmd.name
        # readers work on a read-only file system
        got = _run_here(["get", str(r.file), "d1"])
        assert got.returncode == 0 and got.stdout.startswith(b"dirty"), got.stderr
        verify = _run_here(["verify", "--json", str(r.file)])
        assert verify.returncode == 0 and orjson.loads(verify.stdout)["ok"], verify.stderr
        for argv in (["keys", str(r.file)], ["stats", str(r.file)], ["log", str(r.file), "--last", "3"]):
            assert _run_here(argv).returncode == 0, argv
        out = tmp_path / "elsewhere.jsonl"
        assert _run_here(["export", str(r.file), str(out)]).returncode == 0 and out.stat().st_size > 0
