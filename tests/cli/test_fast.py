"""The start-up fast path (``thermo get``/``thermo keys`` without typer) against the typer path.

Every command line of the matrix is run both ways in this process, with the real file
descriptors captured: the bytes on stdout and stderr and the exit code must be identical.
Command lines the fast path does not take must be left to typer (``run_fast`` → None).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import LEGACY_SMALL, Thermo
from thermo_cli.cli import _common, dispatch
from thermo_cli.cli._fast import parse, run_fast


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A consolidated file with text, binary and tensor values, and uncommitted deltas on top."""
    d = tmp_path_factory.mktemp("fast")
    thermo = Thermo()
    main = d / "m.thermo"
    assert thermo("init", main, "--policy", "manual").code == 0
    deltas = d / "d.jsonl"
    deltas.write_text(
        "\n".join(
            [
                '{"op":"create","key":"greeting","value":"hello, thermogram"}',
                '{"op":"create","key":"line","value":"line\\n"}',
                '{"op":"create","key":"blob","value":{"b64":"/wABAgP+"}}',
                '{"op":"create","key":"utf8blob","value":{"b64":"aGk="}}',
                '{"op":"create","key":"emb/cat","value":{"dtype":"f32","shape":[2,2],"data":[1,2.5,-3,0.25]}}',
                '{"op":"create","key":"emb/int","value":{"dtype":"i16","shape":[3],"data":[1,-2,3]}}',
                '{"op":"create","key":"gone","value":"soon deleted"}',
                '{"op":"create","key":"-dash","value":"a key that looks like an option"}',
            ]
        )
        + "\n"
    )
    assert thermo("apply", main, deltas).code == 0
    assert thermo("consolidate", main).code == 0
    more = d / "more.jsonl"
    more.write_text(
        '{"op":"update","key":"greeting","value":"hello again"}\n'
        '{"op":"delete","key":"gone"}\n'
        '{"op":"create","key":"fresh","value":"uncommitted"}\n'
    )
    assert thermo("apply", main, more).code == 0
    garbage = d / "garbage.thermo"
    garbage.write_bytes(b"not a thermogram at all\n")
    return {"main": main, "garbage": garbage, "dir": d, "legacy": LEGACY_SMALL}


def _both(argv: list[str], capfdbinary: pytest.CaptureFixture[bytes], between=None) -> tuple[tuple, tuple]:
    fast = run_fast(argv, {})
    got_fast = (fast, *capfdbinary.readouterr())
    if between is not None:
        between()  # undo what the first run wrote (an --as-npy file is never overwritten)
    slow = _common.run_app(argv)
    got_slow = (slow, *capfdbinary.readouterr())
    return got_fast, got_slow


def _matrix(f: dict[str, Path]) -> list[list[str]]:
    m, g = str(f["main"]), str(f["garbage"])
    missing, directory, legacy = str(f["dir"] / "nope.thermo"), str(f["dir"]), str(f["legacy"])
    npy = str(f["dir"] / "out.npy")
    return [
        ["get", m, "greeting"],
        ["get", m, "line"],
        ["get", m, "blob"],
        ["get", m, "utf8blob"],
        ["get", m, "emb/cat"],
        ["get", m, "emb/int"],
        ["get", m, "fresh"],
        ["get", m, "gone"],
        ["get", m, "no-such-key"],
        ["get", m, ""],
        ["get", m, "greeting", "--json"],
        ["get", m, "emb/cat", "--json"],
        ["get", m, "blob", "--raw"],
        ["get", "--raw", m, "blob"],
        ["get", m, "emb/cat", "--as-npy", "-"],
        ["get", m, "emb/cat", "--as-npy=-"],
        ["get", m, "emb/cat", "--as-npy", npy],
        ["get", m, "greeting", "--as-npy", "-"],
        ["get", m, "greeting", "--raw", "--json"],
        ["get", m, "greeting", "--json", "--as-npy", "-"],
        ["--debug", "get", m, "greeting"],
        ["get", m, "greeting", "--no-color"],
        ["get", missing, "greeting"],
        ["get", directory, "greeting"],
        ["get", g, "greeting"],
        ["get", legacy, "greeting"],
        ["keys", m],
        ["keys", m, "--json"],
        ["keys", m, "--layer", "hot"],
        ["keys", m, "-l", "cold", "--json"],
        ["keys", m, "--layer=warm"],
        ["keys", m, "--prefix", "emb/"],
        ["keys", m, "-p", "emb/", "-0"],
        ["keys", m, "--prefix=zzz"],
        ["keys", m, "--null"],
        ["keys", legacy, "--json"],
        ["keys", missing],
        ["keys", g],
        ["--no-color", "keys", m, "--debug"],
    ]


def test_fast_and_typer_paths_print_the_same_bytes(
    files: dict[str, Path], capfdbinary: pytest.CaptureFixture[bytes]
):
    for argv in _matrix(files):
        npy = files["dir"] / "out.npy"
        npy.unlink(missing_ok=True)
        fast, slow = _both(argv, capfdbinary, between=lambda npy=npy: npy.unlink(missing_ok=True))
        assert fast[0] is not None, f"the fast path should take {argv}"
        if npy.exists():
            assert npy.read_bytes()
        assert fast == slow, argv


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["get"],
        ["get", "f"],
        ["get", "f", "k", "extra"],
        ["get", "f", "k", "--help"],
        ["get", "-h"],
        ["get", "f", "-0.1"],
        ["get", "f", "-dash"],
        ["get", "--", "f", "k"],
        ["get", "f", "k", "--raw", "--raw"],
        ["get", "f", "k", "--raw=1"],
        ["get", "f", "k", "--as-npy"],
        ["get", "-", "greeting"],  # stdin: spooled by the typer path
        ["get", "f", "k", "--as-npy", "--raw"],
        ["get", "f", "k", "--as-npy", "a", "--as-npy", "b"],
        ["get", "f", "k", "--limit", "max_value_bytes=1G"],
        ["get", "f", "k", "--limit=max_value_bytes=1G"],
        ["get", "f", "k", "--rawx"],
        ["get", "f", "k", "--jso"],
        ["--version"],
        ["-V", "get", "f", "k"],
        ["--limit", "max_value_bytes=1G", "get", "f", "k"],
        ["stats", "f"],
        ["gte", "f", "k"],
        ["keys"],
        ["keys", "f", "g"],
        ["keys", "f", "--layer", "HOT"],
        ["keys", "f", "--layer", "lukewarm"],
        ["keys", "f", "-lhot"],
        ["keys", "f", "-0l", "hot"],
        ["keys", "f", "--layer"],
        ["keys", "f", "-p"],
        ["keys", "f", "--json", "--json"],
    ],
)
def test_other_command_lines_are_left_to_typer(argv: list[str]):
    assert parse(argv) is None or argv[0] not in ("get", "keys")
    assert run_fast(argv, {}) is None


def test_usage_errors_come_from_typer_unchanged(
    files: dict[str, Path], capfdbinary: pytest.CaptureFixture[bytes]
):
    m = str(files["main"])
    for argv in (["get", m], ["get", m, "k", "--bogus"], ["keys", m, "--layer", "HOT"], ["get", "--help"]):
        assert dispatch(argv, {}) == _common.run_app(argv) or argv[-1] == "--help"
        capfdbinary.readouterr()


def test_environment_that_typer_reads_sends_the_command_to_typer(files: dict[str, Path]):
    argv = ["get", str(files["main"]), "greeting"]
    assert run_fast(argv, {"THERMO_LIMITS": "max_value_bytes=1G"}) is None
    assert run_fast(argv, {"_THERMO_COMPLETE": "bash_source"}) is None
    expected = {"file": argv[1], "key": "greeting", "raw": False, "json_out": False, "as_npy": None}
    assert parse(argv) == ("get", expected)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("boom"), SystemExit(9)])
def test_interrupts_and_internal_errors_end_the_same_way(
    files: dict[str, Path], capfdbinary: pytest.CaptureFixture[bytes], monkeypatch, exc: BaseException
):
    from thermo_cli import store

    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(store, "read", fail)
    fast, slow = _both(["get", str(files["main"]), "greeting"], capfdbinary)
    assert fast == slow
    assert fast[0] in (130, 70, 9)


def test_a_plain_get_never_imports_typer(files: dict[str, Path]):
    code = (
        "import sys; from thermo_cli.cli import dispatch; "
        f"rc = dispatch(['get', {str(files['main'])!r}, 'greeting'], {{}}); "
        "sys.stderr.write(f' rc={rc} ' + ('typer' if 'typer' in sys.modules else 'no-typer'))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout == "hello again"  # piped: the exact value bytes
    assert r.stderr.split()[-2:] == ["rc=0", "no-typer"], r.stderr


def test_the_installed_entry_point_uses_the_fast_path(files: dict[str, Path]):
    r = subprocess.run(
        [sys.executable, "-m", "thermo_cli", "get", str(files["main"]), "greeting", "--json"],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0 and b'"layer":"dirty"' in r.stdout


HEAVY_FOR_GET = (
    "dataclasses",
    "inspect",
    "threading",
    "hashlib",
    "_hashlib",
    "thermo_cli.codec.fastrecords",
    "thermo_cli.integrity",
    "thermo_cli.container.fileops",
)
"""Not loaded by a plain ``get`` either: ``@dataclass`` and ``inspect`` cost about 20 ms of
start-up (the read path's value classes are :mod:`thermo_cli.model.valueclass` ones),
``threading`` 2 ms (the locks come from ``_thread``), ``hashlib`` (OpenSSL) about 6 ms (a
read's few small digests use the built-in module, :mod:`thermo_cli.codec.sha256`), the
whole-log record decoder and the Merkle code (they import ``hashlib``) about 2 ms, the
locking and atomic-write code about 1 ms (a read waits for a writer only at a torn tail);
``keys`` checks the meta block's engine settings, which are dataclasses, and decodes the
log's tail with the whole-log decoder."""

HEAVY_AT_START = (
    "typer",
    "click",
    "rich",
    "numpy",
    "fsspec",
    "pydantic",
    "orjson",
    "importlib.metadata",
    "secrets",
    "logging",
    "thermo_cli.engine",
    "thermo_cli.container.writer",
    "thermo_cli.formats",
    "thermo_cli.operations",
)
"""Modules a plain ``thermo get`` must not load: each costs start-up and none is needed to
read one key (typer builds the full CLI; numpy only for tensors shown as numbers; the
engine and the writer only for commands that change a file)."""


def _modules_loaded(argv: list[str]) -> tuple[int, set[str]]:
    """The exit code of ``argv`` run through the entry point in a fresh interpreter, and
    every module it had loaded by the end."""
    code = (
        "import os, sys; from thermo_cli.cli import dispatch; "
        f"rc = dispatch({argv!r}, {{}}); sys.stdout.flush(); "
        "os.write(2, ('\\n%d %s' % (rc, ' '.join(sorted(sys.modules)))).encode())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    rc, names = r.stderr.rsplit("\n", 1)[-1].split(" ", 1)
    return int(rc), set(names.split())


@pytest.mark.parametrize(
    "argv_tail",
    [["greeting"], ["fresh", "--raw"]],
    ids=["get-text", "get-raw"],
)
def test_start_up_of_get_loads_only_the_read_path(files: dict[str, Path], argv_tail: list[str]):
    """Pins the import set, not a time: a value still in the log is read without zstd."""
    rc, loaded = _modules_loaded(["get", str(files["main"]), *argv_tail])
    assert rc == 0
    heavy = {
        m
        for m in loaded
        for h in (*HEAVY_AT_START, *HEAVY_FOR_GET, "zstandard")
        if m == h or m.startswith(h + ".")
    }
    assert not heavy, f"thermo get loaded {sorted(heavy)}"
    assert "thermo_cli.container.reader" in loaded  # the test does run the read


def test_start_up_of_get_from_a_layer_loads_only_the_read_path(files: dict[str, Path]):
    rc, loaded = _modules_loaded(["get", str(files["main"]), "line"])  # in a compressed layer chunk
    assert rc == 0
    heavy = {m for m in loaded for h in (*HEAVY_AT_START, *HEAVY_FOR_GET) if m == h or m.startswith(h + ".")}
    assert not heavy, f"thermo get loaded {sorted(heavy)}"


def test_start_up_of_keys_does_not_build_the_engine(files: dict[str, Path]):
    """``thermo keys`` lists the layers' directories and the log's tail (``store.keys``)."""
    rc, loaded = _modules_loaded(["keys", str(files["main"])])
    assert rc == 0
    heavy = {m for m in loaded for h in HEAVY_AT_START if m == h or m.startswith(h + ".")}
    assert not heavy, f"thermo keys loaded {sorted(heavy)}"


def _normalised(run: tuple, target: Path) -> tuple:
    """An apply's outcome without what differs run to run: the file name, the elapsed time
    and the head hash (new ids and timestamps give new hashes)."""
    code, out, err = run

    def same(data: bytes) -> bytes:
        data = data.replace(bytes(target), b"F")
        data = re.sub(rb"\(\d+\.\d\d s\)|\"seconds\": ?[0-9.e-]+", b"T", data)
        return re.sub(rb"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b", b"H", data)

    return code, same(out), same(err)


@pytest.mark.parametrize(
    ("flags", "lines"),
    [
        ([], ['{"op":"update","key":"greeting","value":"fast"}', '{"op":"create","key":"n","value":"1"}']),
        (["--json"], ['{"op":"update","key":"greeting","value":"again"}']),
        (["--dry-run", "--json"], ['{"op":"create","key":"dry","value":"x"}']),
        (["--no-auto-consolidate", "--source", "me"], ['{"op":"merge","key":"m","value":"y"}']),
        (["--skip-invalid"], ['{"op":"create","key":"ok","value":"z"}', '{"op":"nope"}', "not json"]),
        ([], ['{"op":"create","key":"k","value":"v"}', '{"op":"create","key":"k2","value":"v","bogus":1}']),
        ([], ['{"op":"delete","key":"greeting"}']),
    ],
)
def test_fast_and_typer_apply_give_the_same_files_and_lines(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes], flags: list[str], lines: list[str]
):
    deltas = tmp_path / "d.jsonl"
    deltas.write_text("\n".join(lines) + "\n")
    results, files = [], []
    for name, runner in (("fast", run_fast), ("typer", lambda argv, env: _common.run_app(argv))):
        target = tmp_path / f"{name}.thermo"
        assert Thermo()("init", target, "--policy", "manual", "--name", "same").code == 0
        capfdbinary.readouterr()
        argv = ["apply", str(target), str(deltas), *flags]
        code = runner(argv, {})
        assert code is not None, f"the fast path should take {argv}"
        out, err = capfdbinary.readouterr()
        results.append(_normalised((code, out, err), target))
        log = json.loads(Thermo()("log", target, "--json").out)
        shown = ("kind", "op", "key", "source", "value")
        files.append([{k: v for k, v in r.items() if k in shown} for r in log])
    assert results[0] == results[1]
    assert files[0] == files[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["apply"],
        ["apply", "-", "d.jsonl"],
        ["apply", "f", "d", "extra"],
        ["apply", "f", "--max-line-bytes", "10"],
        ["apply", "f", "--max-key-bytes=10"],
        ["apply", "f", "--auto-consolidate", "--no-auto-consolidate"],
        ["apply", "f", "--source"],
        ["apply", "f", "--json", "--json"],
        ["apply", "f", "-h"],
    ],
)
def test_apply_lines_the_fast_path_does_not_take(argv: list[str]):
    assert parse(argv) is None


def test_apply_reads_stdin_by_default_on_the_fast_path():
    assert parse(["apply", "f"]) == (
        "apply",
        {
            "file": "f",
            "deltas": "-",
            "source": "thermo",
            "skip_invalid": False,
            "dry_run": False,
            "upgrade": False,
            "auto_consolidate": True,
        },
    )
    assert parse(["apply", "f", "-", "--no-auto-consolidate"])[1]["auto_consolidate"] is False
