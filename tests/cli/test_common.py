"""CLI plumbing: exit-code mapping, run_app, parameter coercion, colour, atomic outputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from thermo_cli import errors
from thermo_cli.cli import _common
from thermo_cli.cli._common import (
    EXIT_CODES,
    VerificationFailed,
    exit_code_for,
    open_output,
    run_app,
)
from thermo_cli.config.limits import format_size, raise_hint

from .conftest import Thermo


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (VerificationFailed(), 1),
        (errors.ValidationError("x"), 3),
        (errors.ChainError("x"), 3),
        (errors.CorruptError("x"), 3),
        (errors.LimitExceededError("x"), 3),
        (errors.LegacyFormatError("$.a", "bad"), 3),
        (errors.RefusedError("x"), 4),
        (errors.LockError("x"), 5),
        (errors.NotFoundError("x"), 6),
        (FileNotFoundError(2, "No such file or directory", "f"), 6),
        (PermissionError(13, "Permission denied", "f"), 3),
        (RuntimeError("bug"), 70),
    ],
)
def test_exit_code_table(exc, code):
    assert exit_code_for(exc) == code
    assert code in EXIT_CODES


def test_run_app_codes_and_messages(tmp_path: Path, capsys):
    assert run_app(["--version"]) == 0
    assert capsys.readouterr().out.startswith("thermo ")
    assert run_app(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err
    assert run_app(["get", str(tmp_path / "absent.thermo"), "k"]) == 6
    assert capsys.readouterr().err.strip().startswith("thermo: error: ")
    assert run_app(["init", str(tmp_path / "a.thermo"), "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope' is not one of" in err


def test_global_flags_anywhere_before_double_dash(filled: Path, capsys, monkeypatch):
    from thermo_cli.engine.thermogram import Thermogram

    def boom(self):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(Thermogram, "stats", boom)
    assert run_app(["stats", str(filled), "--no-color", "--debug"]) == 70
    assert "Traceback" in capsys.readouterr().err
    assert not _common._state["debug"] and not _common._state["no_color"]  # nothing leaks
    assert run_app(["stats", str(filled)]) == 70
    assert "Traceback" not in capsys.readouterr().err
    assert run_app(["get", str(filled), "--", "--debug"]) == 6  # a key named --debug
    assert "'--debug' not found" in capsys.readouterr().err


def test_number_and_choice_options_are_checked(fresh: Path, capsys):
    def usage_error(*args: str) -> str:
        assert run_app([str(a) for a in args]) == 2
        return capsys.readouterr().err

    assert "Invalid value for '--repeat'" in usage_error("tick", fresh, "--repeat", "0")
    assert "Invalid value for '--repeat'" in usage_error("tick", fresh, "--repeat", "two")
    assert "Invalid value for '--max-key-bytes'" in usage_error("apply", fresh, "--max-key-bytes", "5000")
    assert "Invalid value for 'amount'" in usage_error("reinforce", fresh, "k", "nan")
    assert "Invalid value for '--layer'" in usage_error("keys", fresh, "--layer", "COLD")  # case sensitive
    assert run_app(["keys", str(fresh), "--layer", "cold"]) == 0
    assert run_app(["tick", str(fresh), "--repeat", "2", "--json"]) == 0
    assert '"ticks":2' in capsys.readouterr().out


def test_the_fast_coercion_workaround_is_active_for_the_pinned_typer():
    """The one typer workaround (plain parameters skip pydantic) is pinned to typer 0.29.x in
    pyproject.toml; this fails as soon as a typer in that range stops accepting it."""
    import tomllib

    import typer
    from typer.core import _TyperParameter

    pins = tomllib.loads((Path(_common.__file__).parents[2] / "pyproject.toml").read_text())
    assert any(d.replace(" ", "") == "typer>=0.29,<0.30" for d in pins["project"]["dependencies"])
    assert typer.__version__.startswith("0.29.")
    assert getattr(_TyperParameter.get_runtime_param, "_thermo_fast", False)


def test_plain_parameters_never_load_pydantic():
    import subprocess

    code = (
        "import sys; from thermo_cli.cli._common import run_app; "
        "run_app(['get', 'no-such.thermo', 'k']); run_app(['reinforce', 'no-such.thermo', 'k', '0.1']); "
        "sys.stderr.write(' pydantic' if 'pydantic' in sys.modules else ' clean')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stderr.split()[-1] == "clean", r.stderr


def test_get_loads_only_its_own_command_module():
    import subprocess

    code = (
        "import sys; from thermo_cli.cli._common import run_app; "
        "run_app(['get', 'no-such.thermo', 'k']); prefixes = ('thermo_cli', 'numpy', 'rich.table'); "
        "sys.stderr.write(' ' + ' '.join(sorted(m for m in sys.modules if m.startswith(prefixes))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = r.stderr.split()
    assert "thermo_cli.cli.entries" in loaded, r.stderr
    for absent in (
        "thermo_cli.cli.snn",
        "thermo_cli.cli.tensors",
        "thermo_cli.cli.audit",
        "numpy",
        "rich.table",
    ):
        assert absent not in loaded


def test_no_colour_when_asked(filled: Path, thermo: Thermo):
    r = thermo("stats", filled, env={"NO_COLOR": "1"})
    assert "\x1b[" not in r.out
    r = thermo("--no-color", "stats", filled)
    assert "\x1b[" not in r.out


def test_open_output_is_atomic(tmp_path: Path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), open_output(str(target)) as fh:
        fh.write(b"half")
        raise RuntimeError("stop")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(errors.RefusedError), open_output(str(target), overwrite=False):
        pass
    with open_output(str(target)) as fh:
        fh.write(b"new")
    assert target.read_text() == "new"


def test_open_output_never_writes_through_a_link_at_the_old_temp_name(tmp_path: Path):
    """`export`/`checkpoint --out`/`sign --out` once wrote ``.OUT.tmp-<pid>`` with open()."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "out.json"
    (tmp_path / f".out.json.tmp-{os.getpid()}").symlink_to(victim)
    with open_output(str(target)) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new" and victim.read_bytes() == b"precious"


def test_format_size():
    assert format_size(0) == "0 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 * 1024**3) == "3.0 GiB"


def test_lazily_loaded_commands_behave_like_eager_ones(filled: Path, capsys):
    assert run_app(["get", str(filled), "greeting"]) == 0
    assert capsys.readouterr().out == "hello, thermogram"  # piped: the exact bytes
    assert run_app(["get", "--help"]) == 0
    assert "Usage: thermo get" in capsys.readouterr().out
    assert run_app(["gte", str(filled), "greeting"]) == 2
    assert "Did you mean 'get'" in capsys.readouterr().err
    assert run_app(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("init", "import-safetensors", "snn", "verify-proof", "repair"))


def test_every_registered_command_is_found():
    from thermo_cli.cli._registry import COMMANDS

    group = _common.typer.main.get_command(_common.app)
    for name in COMMANDS:
        assert group.get_command(None, name) is not None, name


# --- safety caps from the command line (--limit / THERMO_LIMITS) ----------------------------------

MULTICHUNK = Path(__file__).resolve().parents[2] / "format" / "vectors" / "multichunk.thermo"
LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "v0.5" / "small.thermo"


def test_help_lists_the_limit_option(thermo: Thermo):
    run = thermo("--help")
    assert run.code == 0 and "--limit" in run.out and "max_legacy_bytes" in run.out


def test_a_container_refused_by_a_cap_is_read_once_the_cap_is_raised(thermo: Thermo):
    from thermo_cli.config.limits import DEFAULT_LIMITS, Limits

    env = {"THERMO_LIMITS": "max_chunk_bytes=1K"}  # as a site might set it
    refused = thermo("stats", MULTICHUNK, env=env)
    assert refused.code == 3
    assert "max_chunk_bytes=1024" in refused.err and "--limit max_chunk_bytes=" in refused.err
    assert refused.err.count("\n") == 1
    accepted = thermo("--limit", "max_chunk_bytes=4M", "stats", MULTICHUNK, env=env)
    assert accepted.code == 0, accepted.err
    also = thermo("stats", MULTICHUNK, "--limit=max_chunk_bytes=4M,max_value_bytes=1G", env=env)
    assert also.code == 0, also.err
    assert Limits() == DEFAULT_LIMITS  # one run's caps do not leak into the next


@pytest.mark.parametrize("command", [("stats",), ("keys",), ("get", "k0")])
def test_a_cap_error_names_the_container_once(thermo: Thermo, command: tuple[str, ...]):
    run = thermo(command[0], MULTICHUNK, *command[1:], env={"THERMO_LIMITS": "max_chunk_bytes=100"})
    assert run.code == 3
    assert run.err.startswith(f"thermo: error: {MULTICHUNK}: "), run.err
    assert run.err.count(str(MULTICHUNK)) == 1 and "max_chunk_bytes=100" in run.err


def test_a_legacy_file_refused_by_its_size_cap_is_read_once_raised(thermo: Thermo):
    from thermo_cli.config.limits import process_cap

    refused = thermo("--limit", "max_legacy_bytes=1K", "stats", LEGACY)
    assert refused.code == 3
    assert "max_legacy_bytes=1024" in refused.err and "--limit max_legacy_bytes=" in refused.err
    accepted = thermo("--limit", "max_legacy_bytes=1K", "--limit", "max_legacy_bytes=1M", "stats", LEGACY)
    assert accepted.code == 0, accepted.err
    assert process_cap("max_legacy_bytes") == 2 << 30


@pytest.mark.parametrize(
    "bad", ["max_nothing=1", "max_chunk_bytes", "max_chunk_bytes=lots", "max_chunk_bytes=0"]
)
def test_a_bad_limit_is_a_usage_error(thermo: Thermo, bad: str):
    run = thermo("--limit", bad, "stats", MULTICHUNK)
    assert run.code == 2 and "--limit" in run.err


def test_run_app_takes_limit_before_the_command(capsys):
    code = run_app(["--limit", "max_chunk_bytes=1K", "stats", str(MULTICHUNK)])
    assert code == 3 and "--limit max_chunk_bytes=" in capsys.readouterr().err


def test_sizes_and_names_are_parsed_strictly():
    from thermo_cli.config.limits import parse_limits, parse_size

    assert parse_size("64K") == 65536 and parse_size("8MiB") == 8 << 20 and parse_size("2g") == 2 << 30
    assert parse_size("1_000") == 1000
    assert parse_limits(["max_chunks=5,max_streams=2", "max_chunks=7"]) == {"max_chunks": 7, "max_streams": 2}
    for bad in ("", "-1", "1.5G", "3X"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_library_parameter_hints_become_flags(capsys):
    hint = errors.RefusedError("f: is a legacy file: pass upgrade=True to convert it in place")
    assert _common.report_error(hint) == 4
    assert (
        capsys.readouterr().err
        == "thermo: error: f: is a legacy file: pass --upgrade to convert it in place\n"
    )


@pytest.mark.parametrize(
    "library, cli",
    [
        ("f: already exists (pass overwrite=True to replace it)", "(pass --force to replace it)"),
        (f"too big ({raise_hint('max_chunk_bytes')})", "(raise it with --limit max_chunk_bytes=SIZE if"),
        ("line 2: longer than 8 bytes (raise it with max_line_bytes=…)", "(raise it with --max-line-bytes)"),
        ("k: key is encrypted; pass passphrase=…", "give --passphrase or --passphrase-file"),
        ("Run `thermo verify`; `thermo repair` with force=True drops them", "`thermo repair --force` drops"),
    ],
)
def test_every_parameter_hint_reads_as_its_flag(library: str, cli: str) -> None:
    shown = _common.flag_hints(library)
    assert cli in shown and "=…" not in shown and "=True" not in shown
