"""Issue 15: pipelines as jq and git users expect, each defect's scenario replayed.

Failures are checked with the SHA-256 of every file in the directory before and after,
as the issue's reporter did.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from thermo_cli import store
from thermo_cli.container import fileops

from .conftest import LEGACY_SMALL, SAMPLES, Thermo
from .test_pipelines import THERMO, sh

FUTURE_MINOR = Path(__file__).resolve().parents[2] / "format" / "vectors" / "future_minor.thermo"


def digests(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` (names relative to it); an empty lock file
    beside an existing file is listed by name only (it is documented to stay)."""
    return {
        str(p.relative_to(directory)): ""
        if p.name.endswith(".lock") and p.with_suffix("").exists() and p.stat().st_size == 0
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def jsonl(*objs: dict) -> str:
    return "".join(orjson.dumps(o).decode() + "\n" for o in objs)


@pytest.fixture
def blobs(fresh: Path, thermo: Thermo) -> Path:
    """A file whose values are a binary blob that happens to be UTF-8, and text ending in a newline."""
    stream = jsonl(
        {"op": "create", "key": "blob", "value": {"hex": "00010203040506070809"}},
        {"op": "create", "key": "line", "value": "line\n"},
        {"op": "create", "key": "esc\x1b[2J", "value": "a\x1b[2Jb\nc"},
        {"op": "create", "key": "w", "value": {"dtype": "f32", "shape": [2], "data": [1.0, -0.5]}},
    )
    assert thermo("apply", fresh, input=stream).code == 0
    assert thermo("consolidate", fresh).code == 0
    return fresh


def run_in_pty(args: list[str], cwd: Path) -> tuple[int, bytes]:
    """Run ``thermo`` with stdout and stderr on a terminal; returns (exit code, what it showed)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([THERMO, *args], cwd=cwd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=60), shown


# --- 2: exact bytes when stdout is not a terminal ------------------------------------------------


def test_get_writes_the_exact_bytes_when_piped(blobs: Path, thermo: Thermo):
    r = thermo("get", blobs, "blob")
    assert r.code == 0 and r.stdout_bytes == bytes(range(10))  # 10 bytes, no newline added
    r = thermo("get", blobs, "line")
    assert r.code == 0 and r.stdout_bytes == b"line\n"


def test_get_through_a_real_redirect_is_byte_exact(blobs: Path):
    r = sh(f"thermo get {blobs} line > out.bin && thermo get {blobs} blob > blob.bin", blobs.parent)
    assert r.returncode == 0, r.stderr
    assert (blobs.parent / "out.bin").read_bytes() == b"line\n"
    assert (blobs.parent / "blob.bin").read_bytes() == bytes(range(10))


# --- 9: control characters never reach a terminal raw -------------------------------------------


def test_get_and_keys_escape_control_characters_on_a_terminal(blobs: Path):
    pytest.importorskip("pty")
    code, shown = run_in_pty(["get", str(blobs), "esc\x1b[2J"], blobs.parent)
    assert code == 0
    assert b"\x1b[2J" not in shown and b"a\\x1b[2Jb" in shown
    code, shown = run_in_pty(["keys", str(blobs)], blobs.parent)
    assert code == 0
    assert b"\x1b" not in shown and b"esc\\x1b[2J" in shown


def test_piped_keys_stay_exact(blobs: Path, thermo: Thermo):
    r = thermo("keys", blobs, "--null")
    assert r.stdout_bytes.split(b"\0")[:-1] == [b"blob", b"esc\x1b[2J", b"line", b"w"]


# --- 10: piped stats is plain key: value lines ----------------------------------------------------


def test_piped_stats_is_plain_lines_with_the_whole_head_hash(filled: Path):
    r = sh(f"thermo stats {filled} | grep 'head hash'", filled.parent)
    assert r.returncode == 0, r.stderr
    head = store.load(filled).head_hash
    assert r.stdout == f"head hash: {head}\n"
    r = sh(f"thermo stats {filled}", filled.parent)
    assert "┃" not in r.stdout and "│" not in r.stdout
    assert all(": " in line for line in r.stdout.splitlines())


# --- 3: apply reads its input before locking; --wait ---------------------------------------------


def test_a_slow_producer_does_not_hold_the_writer_lock(fresh: Path):
    (fresh.parent / "d2.jsonl").write_text(jsonl({"op": "create", "key": "fast", "value": "2"}))
    (fresh.parent / "d1.jsonl").write_text(jsonl({"op": "create", "key": "slow", "value": "1"}))
    slow = subprocess.Popen(
        ["bash", "-c", f"(sleep 3; cat d1.jsonl) | {THERMO} apply {fresh} -"],
        cwd=fresh.parent,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # the slow apply is running and waiting for its input
    started = time.monotonic()
    r = subprocess.run(
        [THERMO, "apply", str(fresh), "d2.jsonl", "--wait", "0"],
        cwd=fresh.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started < 2.5  # not held up by the producer
    assert slow.wait(timeout=60) == 0
    assert store.load(fresh).keys() == ["fast", "slow"]


LOCK_HOLDER = """
import sys, time
from thermo_cli.container.fileops import locked
with locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_wait_zero_fails_at_once_with_exit_5_and_touches_nothing(fresh: Path):
    (fresh.parent / "d.jsonl").write_text(jsonl({"op": "create", "key": "k", "value": "v"}))
    before = digests(fresh.parent)
    holder = hold_lock(fresh, 30)
    try:
        started = time.monotonic()
        r = subprocess.run(
            [THERMO, "--wait", "0", "apply", str(fresh), "d.jsonl"],
            cwd=fresh.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert time.monotonic() - started < 5
        assert r.returncode == 5
        assert r.stderr.strip() == (
            f"thermo: error: {fresh}: another process holds the lock (--wait 0: did not wait)"
        )
        started = time.monotonic()
        r = subprocess.run(
            [THERMO, "consolidate", str(fresh), "--wait=0.5"], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 5 and "waited 0.5 s" in r.stderr
        assert 0.5 <= time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    assert digests(fresh.parent) == before


def test_a_waiting_writer_says_so_on_a_terminal(fresh: Path):
    pytest.importorskip("pty")
    holder = hold_lock(fresh, 1.5)
    try:
        code, shown = run_in_pty(["tick", str(fresh)], fresh.parent)
    finally:
        holder.wait()
    assert code == 0
    assert b"thermo: waiting for another process that holds the lock of" in shown


def test_wait_must_be_a_number_of_seconds(fresh: Path, thermo: Thermo):
    r = thermo("tick", fresh, "--wait", "soon")
    assert r.code == 2 and r.err.startswith("thermo: error: Invalid value for '--wait'")


# --- 5: '-' is stdin or stdout, or a usage error -------------------------------------------------


def test_dash_reads_stdin_for_commands_that_only_read(filled: Path):
    d = filled.parent
    r = sh(f"thermo stats - < {filled} | grep '^keys visible'", d)
    assert r.returncode == 0 and r.stdout.startswith("keys visible: "), r.stderr
    r = sh(f"cat {filled} | thermo verify -", d)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("INTACT"), r.stdout + r.stderr
    r = sh(f"cat {filled} | thermo get - greeting", d)
    assert r.returncode == 0 and r.stdout == store.read(filled, "greeting").value.decode()
    r = sh(f"thermo migrate - migrated.thermo < {LEGACY_SMALL}", d)
    assert r.returncode == 0, r.stderr
    assert store.sniff(d / "migrated.thermo") == "thermo"
    assert not (d / "-").exists()


def test_dash_writes_stdout_for_new_files(blobs: Path):
    d = blobs.parent
    r = sh(f"thermo export-safetensors {blobs} - > w.safetensors", d)
    assert r.returncode == 0, r.stderr
    from safetensors.numpy import load_file

    assert np.array_equal(load_file(str(d / "w.safetensors"))["w"], np.array([1.0, -0.5], np.float32))
    r = sh(f"thermo export {blobs} - --format jsonl | thermo import-jsonl - - > copy.thermo", d)
    assert r.returncode == 0, r.stderr
    assert store.load(d / "copy.thermo").head_hash == store.load(blobs).head_hash
    assert not (d / "-").exists() and not (d / "-.lock").exists()


def test_ternary_and_safetensors_commands_take_dash_too(tmp_path: Path):
    """``ternary pack``/``unpack`` and ``import-safetensors`` read ``-`` by content and
    write ``-`` in the format ``--format`` names (default .thermo / .npy)."""
    d = tmp_path
    w = np.random.default_rng(4).standard_normal((16, 12)).astype(np.float32)
    np.save(d / "w.npy", w)
    r = sh("thermo ternary pack - - < w.npy | thermo ternary unpack - - > back.npy", d)
    assert r.returncode == 0, r.stderr
    direct = sh("thermo ternary pack w.npy w.thermo && thermo ternary unpack w.thermo direct.npy", d)
    assert direct.returncode == 0, direct.stderr
    assert (d / "back.npy").read_bytes() == (d / "direct.npy").read_bytes()
    assert "packed 1 tensor (1 ternary): - -> -" in r.stderr and "/tmp" not in r.stderr
    r = sh("thermo ternary pack w.npy - --format safetensors > w.safetensors", d)
    assert r.returncode == 0, r.stderr
    assert (d / "w.safetensors").read_bytes()[8:9] == b"{"
    r = sh("thermo ternary unpack w.thermo - --format safetensors > u.safetensors", d)
    assert r.returncode == 0, r.stderr
    from safetensors.numpy import load_file

    assert np.array_equal(load_file(str(d / "u.safetensors"))["w"], np.load(d / "direct.npy"))
    ckpt = SAMPLES / "checkpoint.safetensors"
    r = sh(f"thermo import-safetensors - - < {ckpt} | thermo verify -", d)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("INTACT"), r.stdout + r.stderr
    r = sh(
        f"thermo import-safetensors - from-stdin.thermo < {ckpt} "
        f"&& thermo import-safetensors {ckpt} named.thermo",
        d,
    )
    assert r.returncode == 0, r.stderr
    assert (
        store.read(d / "from-stdin.thermo", "pooler.dense.weight").value
        == store.read(d / "named.thermo", "pooler.dense.weight").value
    )
    assert not (d / "-").exists() and not (d / "-.lock").exists()


def test_dash_misuse_of_the_ternary_commands_is_one_line_naming_stdin(tmp_path: Path):
    d = tmp_path
    np.save(d / "w.npy", np.ones((4, 4), np.float32))
    before = digests(d)
    cases = {
        "echo junk | thermo ternary pack - x.thermo": (3, "<stdin>: pack input must be"),
        "thermo ternary pack w.npy - --json": (2, "--json prints to stdout"),
        "thermo ternary pack w.npy x.thermo --format thermo": (2, "--format is for OUT '-'"),
        "thermo import-safetensors - - - < w.npy": (2, "'-' (stdin) can be given once"),
        "echo junk | thermo import-safetensors - x.thermo": (3, "<stdin>: not a valid safetensors file"),
    }
    for cmd, (code, text) in cases.items():
        r = sh(cmd, d)
        assert r.returncode == code, (cmd, r.stderr)
        assert r.stderr.startswith("thermo: error: ") and text in r.stderr and r.stderr.count("\n") == 1, (
            cmd,
            r.stderr,
        )
        assert "/tmp" not in r.stderr
    assert digests(d) == before


def test_dash_for_a_file_changed_in_place_is_a_usage_error(fresh: Path):
    before = digests(fresh.parent)
    for cmd in ("apply - d.jsonl", "consolidate -", "tick -", "init -", "checkpoint -", "repair -"):
        r = sh(f"echo '{{}}' | thermo {cmd}", fresh.parent)
        assert r.returncode == 2, (cmd, r.stderr)
        assert r.stderr.startswith("thermo: error: ") and "'-' cannot be used here" in r.stderr
        assert r.stderr.count("\n") == 1
    assert digests(fresh.parent) == before


# --- 6: existing outputs need --force -------------------------------------------------------------


def test_get_as_npy_and_prove_out_refuse_an_existing_file(blobs: Path, thermo: Thermo):
    d = blobs.parent
    (d / "w.npy").write_bytes(b"keep me")
    (d / "proof.json").write_bytes(b"keep me too")
    assert thermo("checkpoint", blobs).code == 0
    before = digests(d)
    r = thermo("get", blobs, "w", "--as-npy", d / "w.npy")
    assert r.code == 4 and "already exists" in r.err and "--force" in r.err
    r = thermo("prove", blobs, "w", "--out", d / "proof.json")
    assert r.code == 4 and "already exists" in r.err and "--force" in r.err
    assert digests(d) == before
    assert thermo("get", blobs, "w", "--as-npy", d / "w.npy", "--force").code == 0
    assert np.array_equal(np.load(d / "w.npy"), np.array([1.0, -0.5], np.float32))
    assert thermo("prove", blobs, "w", "--out", d / "proof.json", "--force").code == 0
    assert json.loads((d / "proof.json").read_text())["key"] == "w"


# --- 7: a newer-minor file is refused, never rewritten -------------------------------------------


@pytest.mark.parametrize("command", [["consolidate"], ["tick"], ["compact"], ["checkpoint"]])
def test_writing_a_newer_minor_file_is_refused(tmp_path: Path, thermo: Thermo, command: list[str]):
    path = tmp_path / "newer.thermo"
    path.write_bytes(FUTURE_MINOR.read_bytes())
    before = digests(tmp_path)
    r = thermo(command[0], path, *command[1:])
    assert r.code == 4
    assert "format 2.2, newer than this thermo writes (2.1)" in r.err
    assert digests(tmp_path) == before


# --- 8 and 15: verify's exit codes -----------------------------------------------------------------


def test_verify_since_a_file_that_is_not_a_checkpoint_note_is_bad_input(filled: Path, thermo: Thermo):
    notes = filled.parent / "notes.jsonl"
    notes.write_text(jsonl({"op": "create", "key": "k", "value": "v"}))
    r = thermo("verify", filled, "--since", notes)
    assert r.code == 3
    assert r.err.startswith(f"thermo: error: {notes}: not a checkpoint note")
    assert "FAILED" not in r.out


def test_verify_exits_1_for_a_byte_flipped_anywhere(tmp_path: Path, thermo: Thermo):
    """Tampering is exit 1 wherever it is, the prefix and the last trailer and footer included."""
    path = tmp_path / "small.thermo"
    assert thermo("init", path, "--policy", "manual").code == 0
    assert thermo("apply", path, input=jsonl({"op": "create", "key": "a", "value": "x"})).code == 0
    assert thermo("consolidate", path).code == 0
    assert thermo("apply", path, input=jsonl({"op": "update", "key": "a", "value": "y"})).code == 0
    data = path.read_bytes()
    positions = sorted({*range(32), *range(len(data) - 160, len(data)), *range(32, len(data), 61)})
    codes: dict[int, list[int]] = {}
    for at in positions:
        flipped = bytearray(data)
        flipped[at] ^= 0x01
        path.write_bytes(bytes(flipped))
        codes.setdefault(thermo("verify", path).code, []).append(at)
    assert list(codes) == [1], {code: ats[:10] for code, ats in codes.items()}


def test_verify_exits_3_for_a_file_that_is_not_a_thermogram(tmp_path: Path, thermo: Thermo):
    other = tmp_path / "notes.txt"
    other.write_text("just some notes\n")
    r = thermo("verify", other)
    assert r.code == 3 and "not a thermogram" in r.err


# --- 11: help text ------------------------------------------------------------------------------


def test_help_text_has_no_type_labels_truncation_or_missing_files(thermo: Thermo):
    from thermo_cli.cli._registry import COMMANDS

    repo = Path(__file__).resolve().parents[2]
    pages = [thermo("--help").out]
    for name in COMMANDS:
        pages.append(thermo(name, "--help").out)
    pages += [
        thermo(*group, "--help").out for group in (["snn", "run"], ["snn", "init"], ["ternary", "pack"])
    ]
    for page in pages:
        assert page.startswith("Usage: thermo"), page[:200]
        for bad in ("<bool>", "<str>", "<list", "{file}", "{key}", "…"):
            assert bad not in page, (bad, page)
        for cited in {w.strip(".,;:()'`") for w in page.split() if w.endswith((".md", ".md)"))}:
            assert (repo / cited).exists() or (repo / "docs" / cited).exists(), cited
    assert "--auto-consolidate / --no-auto-consolidate" in thermo("apply", "--help").out
    assert "Usage: thermo get [OPTIONS] FILE KEY" in thermo("get", "--help").out


# --- 12: errors name the user's file, line, key -----------------------------------------------------


def test_a_deltas_file_error_names_the_file_and_line(fresh: Path, thermo: Thermo):
    bad = fresh.parent / "d.jsonl"
    bad.write_text(jsonl({"op": "create", "key": "a", "value": "1"}) + '{"op": "create"\n')
    before = digests(fresh.parent)
    r = thermo("apply", fresh, bad)
    assert r.code == 3 and r.err.startswith(f"thermo: error: {bad}: line 2: invalid JSON")
    r = thermo("apply", fresh, "-", input=bad.read_text())
    assert r.code == 3 and r.err.startswith("thermo: error: <stdin>: line 2: invalid JSON")
    assert digests(fresh.parent) == before


def test_a_key_that_is_not_utf8_is_a_usage_error(blobs: Path):
    r = subprocess.run([THERMO.encode(), b"get", bytes(blobs), b"a\xff"], capture_output=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "thermo: error: Invalid value for 'key': 'a\\xff' is not valid UTF-8 text (see 'thermo get --help')\n"
    )
    r = sh(
        f'printf \'{{"op":"create","key":"a\\377","value":"x"}}\\n\' | thermo apply {blobs} -', blobs.parent
    )
    assert r.returncode == 3 and "text is not valid UTF-8" in r.stderr and "surrogates" not in r.stderr


def test_sign_with_a_public_key_says_so(filled: Path, thermo: Thermo):
    key = filled.parent / "alice"
    assert thermo("keygen", key).code == 0
    before = digests(filled.parent)
    r = thermo("sign", filled, "--key", f"{key}.pub")
    assert r.code == 3
    assert r.err == f"thermo: error: {key}.pub: is a public key; signing needs the private key ({key})\n"
    assert digests(filled.parent) == before


def test_usage_errors_are_one_line(fresh: Path, thermo: Thermo):
    for args in (["get"], ["get", fresh, "k", "--bogus"], ["tick", fresh, "--repeat", "x"], ["nosuch"]):
        r = thermo(*args)
        assert r.code == 2
        assert r.err.startswith("thermo: error: ") and r.err.count("\n") == 1, r.err


def test_an_output_the_disk_refuses_is_named(blobs: Path):
    r = sh(f"ulimit -f 1; thermo export {blobs} big.jsonl --format jsonl", blobs.parent)
    assert r.returncode == 3
    assert r.stderr == "thermo: error: File too large: big.jsonl\n"
    assert not (blobs.parent / "big.jsonl").exists()
    assert not fileops.leftover_temp_files(blobs.parent / "big.jsonl")


# --- 13: no lock files beside nothing; keygen on a full disk; repair of a killed import ----------


def test_no_lock_file_is_left_for_a_file_never_created(tmp_path: Path, thermo: Thermo):
    missing = tmp_path / "never.thermo"
    with fileops.locked(missing):
        assert Path(fileops.lock_path(missing)).exists()
    assert not Path(fileops.lock_path(missing)).exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"op": "create", "key": "k"}\n')
    r = thermo("import-jsonl", bad, missing)
    assert r.code == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_an_existing_file_keeps_its_lock_file(fresh: Path, thermo: Thermo):
    assert thermo("tick", fresh).code == 0
    assert Path(fileops.lock_path(fresh)).exists()  # documented: removing it could split writers


def test_a_full_disk_leaves_no_empty_key(tmp_path: Path, thermo: Thermo, monkeypatch: pytest.MonkeyPatch):
    def no_space(*_args: object, **_kw: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_space)
    r = thermo("keygen", tmp_path / "k")
    assert r.code == 3 and "No space left on device" in r.err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert thermo("keygen", tmp_path / "k").code == 0  # not "already exists"


def test_repair_clears_the_temporary_file_of_a_killed_import(tmp_path: Path, thermo: Thermo):
    out = tmp_path / "new.thermo"
    leftover = Path(fileops.temp_path_for(str(out)))
    leftover.write_bytes(b"half an import")
    r = thermo("repair", out)
    assert r.code == 0, r.err
    assert list(tmp_path.iterdir()) == []


# --- 14: JSON objects that repeat a name -----------------------------------------------------------


def test_an_object_that_repeats_a_name_is_refused(fresh: Path, thermo: Thermo):
    before = digests(fresh.parent)
    stream = '{"op":"create","key":"ok","value":"x"}\n{"op":"delete","op":"create","key":"k","value":"v"}\n'
    r = thermo("apply", fresh, "-", input=stream)
    assert r.code == 3
    assert r.err == "thermo: error: <stdin>: line 2: the name 'op' appears twice in one object\n"
    nested = '{"op":"create","key":"t","value":{"dtype":"f32","dtype":"i8","shape":[1],"data":[1]}}\n'
    r = thermo("apply", fresh, "-", input=nested)
    assert r.code == 3 and "the name 'dtype' appears twice" in r.err
    spaced_twice = (
        '{"op" : "delete", "op":"create", "key":"k", "value":"v", "timestamp":"2026-01-01T00:00:00Z"}\n'
    )
    r = thermo("apply", fresh, "-", input=spaced_twice)
    assert r.code == 3 and "the name 'op' appears twice" in r.err
    assert digests(fresh.parent) == before
    spaced = '{"op" : "create", "key" : "k", "value" : "a\\":b", "source" : "s"}\n'
    assert thermo("apply", fresh, "-", input=spaced).code == 0


def test_source_is_capped_like_id(fresh: Path, thermo: Thermo):
    for field in ("source", "id"):
        r = thermo("apply", fresh, input=jsonl({"op": "create", "key": "k", "value": "v", field: "s" * 300}))
        assert r.code == 3 and f"{field}: expected non-empty text of at most 256 characters" in r.err


# --- 16: the inconsistencies ------------------------------------------------------------------------


def test_nan_and_inf_are_the_same_usage_error(filled: Path, thermo: Thermo):
    for amount in ("nan", "inf"):
        r = thermo("reinforce", filled, "greeting", amount)
        assert r.code == 2 and f"'{amount}' is not a finite number" in r.err


def test_a_negative_number_is_read_as_a_number(filled: Path, thermo: Thermo):
    r = thermo("weaken", filled, "greeting", "-0.1")
    assert r.code == 2
    assert "-0.1 is not in the range >= 0" in r.err and "No such option" not in r.err


def test_every_json_names_the_file_file(filled: Path, thermo: Thermo):
    assert json.loads(thermo("verify", filled, "--json").out)["file"] == str(filled)
    assert json.loads(thermo("consolidate", filled, "--json").out)["file"] == str(filled)


def test_log_digests_are_hex_and_jsonl_streams(filled: Path, thermo: Thermo):
    array = json.loads(thermo("log", filled, "--json").out)
    lines = [json.loads(line) for line in thermo("log", filled, "--jsonl").out.splitlines()]
    assert lines == array
    event = next(r for r in lines if r.get("event") == "consolidate")
    digest = event["fields"]["state_digest"]
    assert isinstance(digest, str) and len(digest) == 64 and int(digest, 16) >= 0


def test_init_refuses_an_empty_name(tmp_path: Path, thermo: Thermo):
    r = thermo("init", tmp_path / "x.thermo", "--name", "")
    assert r.code == 2 and "--name must not be empty" in r.err
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_thermo_cli_runs(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "thermo_cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("thermo ")


# --- 17: a symlinked path writes its target --------------------------------------------------------


def test_a_rewrite_through_a_symlink_keeps_the_link_and_the_targets_lock(filled: Path, thermo: Thermo):
    link = filled.parent / "link.thermo"
    link.symlink_to(filled.name)
    assert thermo("compact", link).code == 0  # a whole-file rewrite
    assert thermo("apply", link, SAMPLES / "deltas.jsonl").code == 0
    assert thermo("consolidate", link).code == 0
    assert link.is_symlink() and os.readlink(link) == filled.name
    assert fileops.lock_path(link) == fileops.lock_path(filled)
    assert not (filled.parent / "link.thermo.lock").exists()
    assert store.load(filled).head_hash == store.load(link).head_hash
