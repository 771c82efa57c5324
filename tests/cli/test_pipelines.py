"""Real shell pipelines against the installed ``thermo`` script, in subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from thermo_cli import store
from thermo_cli.model import Delta

from .conftest import SAMPLES

THERMO = str(Path(sys.executable).with_name("thermo"))


def sh(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PATH": f"{Path(THERMO).parent}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    return subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + script],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cat_apply_verify_pipeline(tmp_path: Path):
    r = sh(
        f"thermo init f.thermo && cat {SAMPLES / 'deltas.jsonl'} | thermo apply f.thermo - "
        "&& thermo verify f.thermo",
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "applied 25 deltas" in r.stderr
    assert "INTACT" in r.stdout
    assert "\x1b[" not in r.stdout + r.stderr  # not a terminal: no colour codes


def test_bad_line_in_pipeline_leaves_file_byte_identical(tmp_path: Path):
    setup = sh(f"thermo init f.thermo && thermo apply f.thermo {SAMPLES / 'deltas.jsonl'}", tmp_path)
    assert setup.returncode == 0
    before = (tmp_path / "f.thermo").read_bytes()
    r = sh(
        'printf \'%s\\n\' \'{"op":"create","key":"a","value":"x"}\' \'{"op":"create"\' '
        "| thermo apply f.thermo -",
        tmp_path,
    )
    assert r.returncode == 3
    assert r.stderr.strip().startswith("thermo: error: <stdin>: line 2: invalid JSON")
    assert r.stdout == ""
    assert (tmp_path / "f.thermo").read_bytes() == before


def test_verify_names_the_tampered_record(tmp_path: Path):
    assert (
        sh(
            f"thermo init f.thermo --policy manual && thermo apply f.thermo {SAMPLES / 'deltas.jsonl'}",
            tmp_path,
        ).returncode
        == 0
    )
    path = tmp_path / "f.thermo"
    data = bytearray(path.read_bytes())
    at = data.find(b"barely remembered")  # the value of the delta at log index 23
    assert at > 0
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    r = sh("thermo verify f.thermo", tmp_path)
    assert r.returncode == 1
    assert re.search(r"FIRST FAILURE .*record (23|24)", r.stdout), r.stdout


def test_samples_pipeline_script(tmp_path: Path):
    r = sh(f"sh {SAMPLES / 'pipeline.sh'} {tmp_path / 'demo'}", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "INTACT" in r.stdout
    assert "hello, thermogram" in r.stdout


def test_broken_pipe_is_quiet(tmp_path: Path):
    many = "".join(
        orjson.dumps({"op": "create", "key": f"k{i}", "value": "v" * 100}).decode() + "\n"
        for i in range(3000)
    )
    (tmp_path / "d.jsonl").write_text(many)
    r = sh(
        "thermo init f.thermo --policy manual && thermo apply f.thermo d.jsonl && "
        '{ thermo log f.thermo | head -n 1; echo "status ${PIPESTATUS[0]}"; }',
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    first, status = r.stdout.splitlines()
    assert first.split()[0] == "0"
    assert status == "status 141"  # what a process killed by SIGPIPE reports, as `cat | head` does
    assert "Traceback" not in r.stderr and "Broken pipe" not in r.stderr


def test_apply_refuses_a_terminal_on_stdin(tmp_path: Path):
    pytest.importorskip("pty")
    import pty

    assert sh("thermo init f.thermo", tmp_path).returncode == 0
    _, slave = pty.openpty()
    r = subprocess.run(
        [THERMO, "apply", "f.thermo"], cwd=tmp_path, stdin=slave, capture_output=True, text=True, timeout=60
    )
    os.close(slave)
    assert r.returncode == 2
    assert "reading deltas from a terminal" in r.stderr


def _deltas(writer: int, n: int) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "op": "update",
                "key": f"w{writer}/k{i % 50}",
                "value": f"{writer}:{i}",
                "strength": 0.5,
                "source": f"writer{writer}",
            }
        )
        + b"\n"
        for i in range(n)
    )


def test_four_concurrent_applies_lose_nothing(tmp_path: Path):
    path = tmp_path / "shared.thermo"
    assert sh("thermo init shared.thermo", tmp_path).returncode == 0
    for w in range(4):
        (tmp_path / f"d{w}.jsonl").write_bytes(_deltas(w, 2000))

    def run(w: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [THERMO, "apply", str(path), str(tmp_path / f"d{w}.jsonl")],
            capture_output=True,
            text=True,
            timeout=300,
        )

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(4)))
    for r in results:
        assert r.returncode == 0, r.stderr
    tg = store.load(path, log="full")
    deltas = [rec for rec in tg.records if isinstance(rec, Delta)]
    assert len(deltas) == 8000
    assert tg.meta.total_deltas == 8000
    for w in range(4):
        mine = [d.value for d in deltas if d.source == f"writer{w}"]
        assert mine == [f"{w}:{i}".encode() for i in range(2000)]  # each batch intact and in order
    assert tg.verify_chain().ok
    r = sh("thermo verify shared.thermo", tmp_path)
    assert r.returncode == 0, r.stdout
