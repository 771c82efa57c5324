"""The CLI's plumbing that needs no typer: exit codes, error lines, output, global switches.

Exit codes (documented in the README):
  0 ok · 1 verification failed · 2 usage error · 3 unreadable or corrupt input
  4 refused (would overwrite / convert without being asked) · 5 file locked · 6 not found
  70 internal error (a bug: rerun with --debug for the traceback) · 130 interrupted
  141 the reader of stdout went away (as SIGPIPE would give, quietly)

Kept apart from :mod:`thermo_cli.cli._common` (the typer app) so that the start-up fast
path (:mod:`thermo_cli.cli._fast`) can run ``thermo get`` and ``thermo keys`` with the
same messages and exit codes without importing typer; ``_common`` re-exports every name.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thermo_cli.config.limits import Limits

EXIT_OK = 0
EXIT_VERIFY_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_REFUSED = 4
EXIT_LOCKED = 5
EXIT_NOT_FOUND = 6
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_VERIFY_FAILED: "verification failed (tampered or corrupt chain, state or signature)",
    EXIT_USAGE: "usage error (bad option or argument)",
    EXIT_BAD_INPUT: "unreadable, invalid or corrupt input",
    EXIT_REFUSED: "refused: would overwrite or convert a file without being asked",
    EXIT_LOCKED: "the file is locked by another writer",
    EXIT_NOT_FOUND: "key, layer or file not found",
    EXIT_INTERNAL: "internal error (a bug: rerun with --debug for the traceback)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_BROKEN_PIPE: "output pipe closed early (as for SIGPIPE: `thermo log f | head`)",
}
"""Every exit code the CLI uses, for the README and ``thermo --help``."""

_state: dict[str, bool] = {"debug": False, "no_color": False}
_shown_as: dict[str, str] = {}
"""Temporary files that stand for ``-`` in this run, and how messages name them."""


def show_as(path: str, label: str) -> None:
    """Name the temporary file ``path`` as ``label`` (``<stdin>``, ``<stdout>``) in error
    messages: the user gave ``-``, not the file thermo saved the stream to."""
    _shown_as[path] = label


class VerificationFailed(Exception):
    """Raised by a command whose check ran and failed (exit 1, report already printed)."""


def exit_code_for(exc: BaseException) -> int:
    from thermo_cli import errors

    if isinstance(exc, VerificationFailed):
        return EXIT_VERIFY_FAILED
    if isinstance(exc, errors.LockError):
        return EXIT_LOCKED
    if isinstance(exc, errors.RefusedError):
        return EXIT_REFUSED
    if isinstance(exc, errors.NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, errors.ValidationError | errors.ChainError):
        return EXIT_BAD_INPUT
    if isinstance(exc, errors.FormatError | errors.ThermoError):
        return EXIT_BAD_INPUT
    if isinstance(exc, FileNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, OSError):
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def report_error(exc: BaseException) -> int:
    """Print the one-line message for ``exc`` on stderr and return its exit code."""
    code = exit_code_for(exc)
    if code == EXIT_VERIFY_FAILED:
        return code  # the command printed its report already
    if _state["debug"]:
        import traceback

        traceback.print_exception(exc)
    if code == EXIT_INTERNAL:
        err(f"thermo: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
    else:
        err(f"thermo: error: {_one_line(exc)}")
    return code


_FLAGS_FOR_PARAMETERS = (
    ("pass upgrade=True", "pass --upgrade"),
    ("pass upgrade to convert", "pass --upgrade to convert"),
    ("use overwrite to replace it", "pass --force to replace it"),
    ("pass overwrite=True to replace it", "pass --force to replace it"),
    ("replace it with replace=True", "replace it with --force"),
    ("pass force=True to drop them anyway", "pass --force to drop them anyway"),
    (
        "pass force=True to convert in place (or dry_run=True",
        "pass --force to convert in place (or --dry-run",
    ),
    ("`thermo repair` with force=True", "`thermo repair --force`"),
    ("choose another path with backup=…", "choose another --backup path"),
    ("pass nan_as_zero=True", "pass --nan-as-zero"),
    ("did not wait: wait=0", "--wait 0: did not wait"),
    ("raise it with max_line_bytes=…", "raise it with --max-line-bytes"),
    ("include/exclude selected none", "--include/--exclude selected none"),
    ("(check layers, prefix, include, exclude)", "(check --layer, --prefix, --include, --exclude)"),
    ("choose one with layers=…", "choose one with --layer"),
    ("layers=… applies to", "--layer applies to"),
    ("choose it with key=…", "choose it with --key"),
    ("export with keep_ternary=False", "export with --dequantize"),
    ("name the activations with tensor=…", "name the activations with --tensor"),
    ("since: a Rust-crate file", "--since: a Rust-crate file"),
    ("pass pubkeys to check who signed", "give --pubkey to check who signed"),
    ("(no pubkeys given)", "(no --pubkey given)"),
    ("without pubkeys the proof", "without --pubkey the proof"),
    ("use fmt='pem'", "use --format pem"),
    ("pass passphrase=…", "give --passphrase or --passphrase-file"),
)
"""Library hints name parameters; the command line's user needs the flag that sets them."""

_LIMIT_PARAMETER = r"limits=Limits\((\w+)=…\)"
"""A cap error's ``limits=Limits(NAME=…)`` hint: on the command line, ``--limit NAME=SIZE``."""


def short_hash(h: str | None) -> str:
    """The first 12 hex digits of a hash, as summaries show it."""
    return "none" if h is None else h[:12]


def flag_hints(text: str) -> str:
    """``text`` (a library message) with each parameter hint turned into the flag that sets it."""
    for parameter, flag in _FLAGS_FOR_PARAMETERS:
        text = text.replace(parameter, flag)
    import re  # only errors need it: not loaded by every start

    return re.sub(_LIMIT_PARAMETER, r"--limit \1=SIZE", text)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return _as_given(f"{exc.strerror}{where}")
    text = flag_hints(str(exc).replace("\r", " ").replace("\n", " "))
    return _as_given(text) or type(exc).__name__


def shown(path: str) -> str:
    """How output names ``path``: ``<stdin>`` / ``<stdout>`` for a file standing for ``-``."""
    return _shown_as.get(str(path), str(path))


def _as_given(text: str) -> str:
    for path, label in _shown_as.items():
        text = text.replace(path, label)
    return text


def use_color() -> bool:
    return not _state["no_color"] and "NO_COLOR" not in os.environ and sys.stderr.isatty()


def is_interactive() -> bool:
    """Whether a person is watching stderr (progress bars and tables are for them)."""
    return sys.stderr.isatty()


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (text for people) rather than a file or pipe (exact bytes)."""
    return sys.stdout.isatty()


_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
"""Used through ``re``'s cache (compiled on first use, not at every start)."""


def escape_controls(text: str, *, keep: str = "") -> str:
    """``text`` safe for a terminal: every control character except those in ``keep`` as an
    escape (``\\n``, ``\\x1b``), so a stored ``ESC [2J`` or a newline in a key cannot clear
    the screen or fake another line."""

    def escaped(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in keep:
            return ch
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{ord(ch):02x}")

    return re.sub(_CONTROL, escaped, text)


def err(message: str) -> None:
    """One line on stderr."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def json_bytes(obj: Any, *, pretty: bool = False) -> bytes:
    """A JSON document as UTF-8 bytes with sorted keys (stable output for scripts and diffs)."""
    import orjson

    option = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    if pretty:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(obj, option=option)


def print_json(obj: Any) -> None:
    """JSON document on stdout (data goes to stdout, messages to stderr)."""
    out = sys.stdout
    out.write(json_bytes(obj).decode("utf-8") + "\n")
    out.flush()


def write_stdout_bytes(data: bytes) -> None:
    """Raw bytes on stdout, bypassing text encoding (``thermo get --raw``)."""
    sys.stdout.flush()
    buf = getattr(sys.stdout, "buffer", None)
    if buf is None:  # a text-only stream (tests): keep the bytes readable
        sys.stdout.write(data.decode("utf-8", errors="surrogateescape"))
        sys.stdout.flush()
        return
    buf.write(data)
    buf.flush()


@contextlib.contextmanager
def open_output(path: str, *, overwrite: bool = True, durable: bool = False) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary writing; ``-`` is stdout.

    A file goes through :func:`thermo_cli.container.fileops.atomic_output`: it appears
    complete when the block finishes without error, a failure never leaves a half-written
    output nor touches an existing file, and ``overwrite=False`` refuses an existing file.
    Every such output is an export, fsynced only when ``durable`` (``--sync``).
    """
    if path == "-":
        out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
        if out is None:  # a text-only stream (tests)
            import io

            buf = io.BytesIO()
            yield buf
            sys.stdout.write(buf.getvalue().decode("utf-8", errors="surrogateescape"))
            sys.stdout.flush()
            return
        sys.stdout.flush()
        yield out
        out.flush()
        return
    from thermo_cli.container.fileops import atomic_output

    with atomic_output(path, overwrite=overwrite, durable=durable) as fh:
        yield fh


def stream_limits(max_line_bytes: int, max_key_bytes: int | None = None) -> Limits:
    """The current caps with a JSONL command's --max-line-bytes/--max-key-bytes applied.

    An option left at its built-in default leaves ``--limit max_line_bytes=...`` (or
    THERMO_LIMITS) in force; one given with another value wins for this command.
    """
    from thermo_cli.config.limits import DEFAULT_LIMITS, current_limits

    caps = {"max_line_bytes": max_line_bytes, "max_key_bytes": max_key_bytes}
    given = {k: v for k, v in caps.items() if v is not None and v != getattr(DEFAULT_LIMITS, k)}
    return current_limits().replace(**given)


@contextlib.contextmanager
def open_input(path: str) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary reading; ``-`` is stdin."""
    if path == "-":
        yield sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin  # type: ignore[misc]
        return
    with open(path, "rb") as fh:
        yield fh


def _split_global_flags(argv: list[str]) -> tuple[list[str], bool, bool]:
    """Take --debug/--no-color from anywhere before ``--`` (they are global switches)."""
    cut = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:cut], argv[cut:]
    rest = [a for a in head if a not in ("--debug", "--no-color")] + tail
    return rest, "--debug" in head, "--no-color" in head


@contextlib.contextmanager
def _global_flags() -> Iterator[None]:
    """Restore the global switches (and NO_COLOR) after one invocation.

    They live in module state for the length of a command; an in-process caller (tests,
    ``CliRunner``) must not see one invocation's ``--debug`` leak into the next.
    """
    saved = dict(_state)
    saved_env = os.environ.get("NO_COLOR")
    try:
        yield
    finally:
        _state.update(saved)
        if saved_env is None:
            os.environ.pop("NO_COLOR", None)
        else:
            os.environ["NO_COLOR"] = saved_env


def _set_flags(debug: bool, no_color: bool) -> None:
    if debug:
        _state["debug"] = True
    if no_color:
        _state["no_color"] = True
        os.environ["NO_COLOR"] = "1"  # rich (help screens included) honours it


def exit_process(code: int) -> None:
    """End the ``thermo`` process now: flush stdout/stderr, then ``os._exit``.

    A big apply leaves 100,000s of objects whose one-by-one deallocation at interpreter
    shutdown costs ~0.1 s and buys nothing: the kernel frees the memory at once, and
    every file was already committed and fsynced. Only the installed script calls this;
    in-process callers (tests) use :func:`run_app`.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            _silence_broken_pipe()
            code = code or EXIT_BROKEN_PIPE
        except (OSError, ValueError):
            pass
    os._exit(code)


def _silence_broken_pipe() -> None:
    """`thermo log f | head`: the reader left; exit quietly like other Unix tools.

    stdout is pointed at /dev/null so the interpreter's final flush cannot fail again.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
