"""Shared CLI plumbing: the typer app, exit codes, error reporting, output helpers.

Exit codes (documented in the README):
  0 ok · 1 verification failed · 2 usage error · 3 unreadable or corrupt input
  4 refused (would overwrite / convert without being asked) · 5 file locked · 6 not found
  70 internal error (a bug: rerun with --debug for the traceback) · 130 interrupted
  141 the reader of stdout went away (as SIGPIPE would give, quietly)

Conventions every command follows (clig.dev): data goes to stdout, messages to stderr;
``-`` means stdin or stdout; ``--json`` prints one JSON document on stdout; colour only
when stderr is a terminal and neither ``NO_COLOR`` nor ``--no-color`` is set; progress
bars only on an interactive stderr and only for long work. Library errors become one
line on stderr and a documented exit code, in :class:`ThermoGroup` (so ``CliRunner``
sees the same codes as a shell) and again in :func:`run_app` for anything that escapes.

Only typer is imported at module level: ``thermo --help`` must start fast, so rich,
numpy and the library are imported inside the functions that need them, and each
command's module is imported only when that command runs (:class:`ThermoGroup` reads
the table in :mod:`thermo_cli.cli._registry`). typer is used through its public API only.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeGuard

import typer
from typer.core import TyperGroup

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


class VerificationFailed(Exception):
    """Raised by a command whose check ran and failed (exit 1, report already printed)."""


class _ClickError(Protocol):
    exit_code: int

    def format_message(self) -> str: ...


def _is_click_exception(exc: BaseException) -> TypeGuard[_ClickError]:
    """typer's vendored click signals usage errors with exceptions carrying an exit code."""
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code")


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

_LIMIT_PARAMETER = re.compile(r"limits=Limits\((\w+)=…\)")
"""A cap error's ``limits=Limits(NAME=…)`` hint: on the command line, ``--limit NAME=SIZE``."""


def flag_hints(text: str) -> str:
    """``text`` (a library message) with each parameter hint turned into the flag that sets it."""
    for parameter, flag in _FLAGS_FOR_PARAMETERS:
        text = text.replace(parameter, flag)
    return _LIMIT_PARAMETER.sub(r"--limit \1=SIZE", text)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = flag_hints(str(exc).replace("\r", " ").replace("\n", " "))
    return text or type(exc).__name__


class ThermoGroup(TyperGroup):
    """The root command group: maps library errors to exit codes inside click's own flow.

    Doing it here rather than only in :func:`run_app` means ``CliRunner`` tests and the
    installed script report exactly the same message and exit code.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        from thermo_cli.cli._registry import COMMANDS

        return list(COMMANDS) + [name for name in self.commands if name not in COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command, importing its module the first time it is asked for."""
        from thermo_cli.cli._registry import COMMANDS

        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self._load(COMMANDS[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """An unknown name loads every command first, so typer can suggest the nearest one."""
        from thermo_cli.cli._registry import COMMANDS

        if args and args[0] not in COMMANDS:
            for module in dict.fromkeys(COMMANDS.values()):
                self._load(module)
        return super().resolve_command(ctx, args)

    def _load(self, module: str) -> None:
        """Build one command module's typer app (public ``typer.main.get_command``) and add its commands."""
        mod = importlib.import_module(f"thermo_cli.cli.{module}")
        built = typer.main.get_command(mod.commands)
        found = built.commands if isinstance(built, TyperGroup) else {built.name or module: built}
        for name, cmd in found.items():
            self.commands.setdefault(name, plain_help(cmd))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args, items = _take_limit_args(args)
        ctx.meta[_LIMITS_META] = _parse_limit_items(items)
        args, ctx.meta[_WAIT_META] = _take_wait_arg(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        with (
            _global_flags(),
            _run_limits(ctx.meta.get(_LIMITS_META, {})),
            _lock_wait(ctx.meta.get(_WAIT_META)),
        ):
            return self._invoke(ctx)

    def _invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except BrokenPipeError:
            _silence_broken_pipe()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except Exception as exc:
            if _is_click_exception(exc):
                raise _usage_exit(exc) from None
            raise typer.Exit(report_error(exc)) from exc

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except Exception as exc:
            if _is_click_exception(exc):
                raise _usage_exit(exc) from None
            raise


def _usage_exit(exc: _ClickError) -> BaseException:
    """A click usage error as one ``thermo: error:`` line (with where to find help), as an Exit.

    click prints a usage block, a hint and ``Error: …`` over four lines; scripts and
    people grepping stderr get one line like every other error. A bare ``thermo`` still
    shows its help.
    """
    if type(exc).__name__ == "NoArgsIsHelpError":
        return exc  # type: ignore[return-value]
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    err(f"thermo: error: {_one_line_text(exc.format_message())}{where}")
    return typer.Exit(exc.exit_code)


def _one_line_text(text: str) -> str:
    return " ".join(text.split())


# --- waiting for another writer (--wait) ------------------------------------------------------

_WAIT_META = "thermo.wait"
WAIT_HELP = (
    "Seconds a command waits for another process holding the file's lock before exit 5 "
    "(0: fail at once; default 120). On a terminal, a command that waits says so."
)


def _take_wait_arg(args: list[str]) -> tuple[list[str], float | None]:
    """Pull ``--wait SECONDS`` / ``--wait=SECONDS`` out of ``args`` (before ``--``): a global
    switch like --limit, so every command that locks honours it."""
    rest: list[str] = []
    value: str | None = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i:])
            break
        if a == "--wait":
            if i + 1 >= len(args):
                raise typer.BadParameter("requires SECONDS, e.g. --wait 10", param_hint="'--wait'")
            value = args[i + 1]
            i += 2
            continue
        if a.startswith("--wait="):
            value = a[len("--wait=") :]
        else:
            rest.append(a)
        i += 1
    if value is None:
        return rest, None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise typer.BadParameter(f"{value!r} is not a number of seconds >= 0", param_hint="'--wait'")
    return rest, seconds


@contextlib.contextmanager
def _lock_wait(seconds: float | None) -> Iterator[None]:
    """Run one invocation under the user's --wait, with a notice on a terminal while blocked."""
    notice = _wait_notice if is_interactive() else None
    if seconds is None and notice is None:
        yield
        return
    from thermo_cli.container.fileops import LockWait, lock_waiting

    with lock_waiting(LockWait(seconds, override=seconds is not None, notice=notice)):
        yield


def _wait_notice(path: str, timeout: float | None) -> None:
    limit = "until it finishes" if timeout is None else f"up to {timeout:g} s; --wait SECONDS to change"
    err(f"thermo: waiting for another process that holds the lock of {path} ({limit})")


# --- safety caps (--limit / THERMO_LIMITS) ---------------------------------------------------

_LIMITS_META = "thermo.limits"
LIMIT_HELP = (
    "Raise a reader safety cap for this run (repeatable; sizes take K/M/G/T; also "
    "THERMO_LIMITS=NAME=SIZE,...), e.g. --limit max_value_bytes=8G. Caps: max_chunk_bytes, max_block_bytes, "
    "max_trailer_bytes, max_record_bytes, max_segment_bytes, max_value_bytes, "
    "max_entries_per_chunk, max_chunks, max_segments, max_streams, max_trailer_chain, "
    "max_scan_candidates, max_tail_scan_bytes, max_meta_bytes, max_cbor_items, max_json_containers, "
    "max_legacy_bytes, max_line_bytes (JSONL lines, also --max-line-bytes), "
    "max_tensor_dims; lower only: max_key_bytes, max_meta_depth."
)


def _take_limit_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Pull every ``--limit NAME=SIZE`` / ``--limit=NAME=SIZE`` out of ``args`` (before ``--``).

    Like --debug it is a global switch accepted anywhere on the line, and repeatable:
    handled here, before click parses, so neither typer's list coercion nor command
    trimming has to know about it.
    """
    rest: list[str] = []
    items: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i:])
            break
        if a == "--limit":
            if i + 1 >= len(args):
                raise typer.BadParameter(
                    "requires NAME=SIZE, e.g. max_value_bytes=8G", param_hint="'--limit'"
                )
            items.append(args[i + 1])
            i += 2
            continue
        if a.startswith("--limit="):
            items.append(a[len("--limit=") :])
        else:
            rest.append(a)
        i += 1
    return rest, items


def _parse_limit_items(items: list[str]) -> dict[str, int]:
    if not items:
        return {}
    from thermo_cli.config.limits import parse_limits

    try:
        return parse_limits(items)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--limit'") from None


@contextlib.contextmanager
def _run_limits(cli: dict[str, int]) -> Iterator[None]:
    """Run one invocation inside ``use_limits``: THERMO_LIMITS, then the command line's --limit."""
    env = os.environ.get("THERMO_LIMITS", "").strip()
    if not cli and not env:
        yield
        return
    from thermo_cli.config.limits import limits_with, parse_limits, use_limits

    changes: dict[str, int] = {}
    if env:
        try:
            changes.update(parse_limits([env]))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="THERMO_LIMITS") from None
    changes.update(cli)
    try:
        limits = limits_with(changes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--limit'") from None
    with use_limits(limits):
        yield


def stream_limits(max_line_bytes: int, max_key_bytes: int | None = None) -> Limits:
    """The current caps with a JSONL command's --max-line-bytes/--max-key-bytes applied.

    An option left at its built-in default leaves ``--limit max_line_bytes=...`` (or
    THERMO_LIMITS) in force; one given with another value wins for this command.
    """
    from thermo_cli.config.limits import DEFAULT_LIMITS, current_limits

    caps = {"max_line_bytes": max_line_bytes, "max_key_bytes": max_key_bytes}
    given = {k: v for k, v in caps.items() if v is not None and v != getattr(DEFAULT_LIMITS, k)}
    return current_limits().replace(**given)


def _install_fast_coercion() -> None:
    """Coerce plain str/int/float/bool/Enum parameters without building pydantic TypeAdapters.

    typer 0.29 converts every non-flag parameter through a pydantic ``TypeAdapter``; the
    pydantic import and the adapters cost 60-150 ms on every invocation, more than
    ``thermo get`` may take in all (50 ms above interpreter start-up) and a tenth of an
    apply of 100,000 deltas. For the only annotations thermo's commands use (text,
    numbers with min/max, choices) the same checks are cheap to do directly, with typer's
    own choice matching and error class; anything else still goes through typer. If a
    future typer moves these internals, the patch simply does not install.
    """
    try:
        from dataclasses import dataclass
        from enum import Enum

        from typer import core as typer_core
        from typer._coercion import RuntimeParam
        from typer._param_types import coerce_cli_choice
    except ImportError:  # pragma: no cover - a typer without these internals
        return
    original = getattr(typer_core._TyperParameter, "get_runtime_param", None)
    if original is None or getattr(original, "_thermo_fast", False):  # pragma: no cover
        return

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            ann = self.annotation
            if ann is str:
                return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if ann is int or ann is float:
                return self._number(value, ann, param, ctx)
            if ann is bool:
                return self._bool(value, param, ctx)
            try:
                return coerce_cli_choice(
                    value, choices=list(ann), case_sensitive=self.parameter_info.case_sensitive, ctx=ctx
                )
            except ValueError as exc:
                raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None

        def _bool(self, value: Any, param: Any, ctx: Any) -> bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "t", "yes", "y", "on"):
                return True
            if text in ("", "0", "false", "f", "no", "n", "off"):
                return False
            raise typer.BadParameter(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)

        def _number(self, value: Any, ann: type[int] | type[float], param: Any, ctx: Any) -> Any:
            info = self.parameter_info
            if isinstance(value, ann) and not isinstance(value, bool):
                number = value
            else:
                try:
                    number = ann(str(value).strip())
                except ValueError:
                    kind = "an integer" if ann is int else "a number"
                    raise typer.BadParameter(f"{value!r} is not {kind}.", ctx=ctx, param=param) from None
            if ann is float and number != number:  # NaN: the same words as the finite() check of inf
                raise typer.BadParameter(f"{value!r} is not a finite number.", ctx=ctx, param=param)
            lo, hi = info.min, info.max
            if info.clamp:
                return (
                    ann(max(lo, number) if lo is not None else number)
                    if hi is None
                    else ann(min(hi, max(lo, number) if lo is not None else number))
                )
            if (lo is not None and number < lo) or (hi is not None and number > hi):
                rng = " and ".join(
                    x
                    for x in (f">= {lo}" if lo is not None else "", f"<= {hi}" if hi is not None else "")
                    if x
                )
                raise typer.BadParameter(f"{value} is not in the range {rng}.", ctx=ctx, param=param)
            return number

    def plain(desc: Any) -> bool:
        ann = desc.annotation
        info = desc.parameter_info
        if desc.file_annotation is not None or getattr(info, "parser", None) is not None:
            return False
        return ann in (str, int, float, bool) or (isinstance(ann, type) and issubclass(ann, Enum))

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None and plain(self.type_descriptor):
            desc = self.type_descriptor
            self._runtime_param = PlainParam(parameter_info=desc.parameter_info, annotation=desc.annotation)
        return original(self)

    get_runtime_param._thermo_fast = True  # type: ignore[attr-defined]
    typer_core._TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]


_install_fast_coercion()


_TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "path": "PATH"}


def _install_plain_help() -> None:
    """Help in the plain, conventional form: ``Usage: thermo apply [OPTIONS] FILE [DELTAS]``.

    typer 0.29 labels values with Python types (``<bool>``, ``<list[str]>``, ``{file}``)
    and its rich tables cut long option names ("--auto-consolid…") at 80 columns. thermo
    shows help without rich (``rich_markup_mode=None``) and relabels through these
    hooks: argument names in capitals, option values as TEXT / INTEGER / NUMBER / PATH
    or their choices. If a future typer moves these internals, nothing is installed.
    """
    try:
        from typer import core as typer_core
    except ImportError:  # pragma: no cover
        return
    param_cls: Any = getattr(typer_core, "_TyperParameter", None)
    arg_cls: Any = getattr(typer_core, "TyperArgument", None)
    original = getattr(param_cls, "display_type", None)
    if original is None or arg_cls is None or getattr(original, "_thermo_plain", False):  # pragma: no cover
        return

    def display_type(self: Any, ctx: Any) -> str:
        if isinstance(self, arg_cls):
            return ""  # the capitalised name says it all
        label = str(original(self, ctx)).strip("<>")
        if label.startswith("list[") and label.endswith("]"):
            label = label[len("list[") : -1]
        if "|" in label:
            return f"[{label}]"
        label = label.removesuffix(" range")
        return _TYPE_WORDS.get(label, label.upper())

    def arg_name(self: Any) -> str:
        name = self.metavar if self.metavar is not None else str(self.name).upper()
        return name + ("..." if self.metavar is None and self.nargs != 1 else "")

    def usage_name(self: Any) -> str:
        name = self.metavar if self.metavar is not None else str(self.name).upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.metavar is None and self.nargs != 1 else "")

    display_type._thermo_plain = True  # type: ignore[attr-defined]
    param_cls.display_type = display_type
    arg_cls._rich_display_name = arg_name
    arg_cls._usage_display_name = usage_name


_install_plain_help()


def plain_help(command: Any) -> Any:
    """``command`` (and its subcommands) rendering help without rich: see _install_plain_help."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    if getattr(command, "short_help", None) is None and getattr(command, "help", None):
        # the whole summary line in ``thermo --help``, wrapped, not cut at 45 characters
        command.short_help = " ".join(command.help.strip().split("\n\n")[0].split())
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


app = typer.Typer(
    name="thermo",
    cls=ThermoGroup,
    help="Thermograms: plastic memory capsules with hot/warm/cool/cold layers and an audited log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def use_color() -> bool:
    return not _state["no_color"] and "NO_COLOR" not in os.environ and sys.stderr.isatty()


def is_interactive() -> bool:
    """Whether a person is watching stderr (progress bars and tables are for them)."""
    return sys.stderr.isatty()


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (text for people) rather than a file or pipe (exact bytes)."""
    return sys.stdout.isatty()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_controls(text: str, *, keep: str = "") -> str:
    """``text`` safe for a terminal: every control character except those in ``keep`` as an
    escape (``\\n``, ``\\x1b``), so a stored ``ESC [2J`` or a newline in a key cannot clear
    the screen or fake another line."""

    def escaped(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in keep:
            return ch
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{ord(ch):02x}")

    return _CONTROL.sub(escaped, text)


def usage_error(message: str) -> typer.Exit:
    """Print ``thermo: error: message`` and return the exit (code 2) to raise."""
    err(f"thermo: error: {message}")
    return typer.Exit(EXIT_USAGE)


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


def stderr_console() -> Any:
    """A rich Console on stderr honouring NO_COLOR / --no-color / non-TTY."""
    from rich.console import Console

    color = use_color()
    return Console(stderr=True, no_color=not color, highlight=False, force_terminal=None if color else False)


def stdout_console() -> Any:
    """A rich Console on stdout for human tables (plain text when piped)."""
    from rich.console import Console

    color = not _state["no_color"] and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    return Console(
        no_color=not color, highlight=False, force_terminal=None if color else False, soft_wrap=False
    )


class _NoProgress:
    """Stands in for a rich progress bar when nobody is watching."""

    def advance(self, amount: float = 1) -> None:
        return None

    def update(self, completed: float) -> None:
        return None


class _RichProgress:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._task, amount)

    def update(self, completed: float) -> None:
        self._progress.update(self._task, completed=completed)


@contextlib.contextmanager
def progress(
    description: str, total: float | None, *, min_total: float = 0, unit: str = "items"
) -> Iterator[_NoProgress | _RichProgress]:
    """A progress bar on stderr, shown only when stderr is a TTY and the work is long.

    ``min_total`` is the size below which a bar would only flicker; ``unit`` "bytes"
    shows transfer sizes instead of counts. Work of unknown size (stdin) that has a
    ``min_total`` gets no bar: it may well be a few bytes.
    """
    if not is_interactive() or (total < min_total if total is not None else min_total > 0):
        yield _NoProgress()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        count,
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
    ) as bar:
        yield _RichProgress(bar, bar.add_task(description, total=total))


# --- files and streams ---------------------------------------------------------------------


@contextlib.contextmanager
def open_input(path: str) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary reading; ``-`` is stdin."""
    if path == "-":
        yield sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin  # type: ignore[misc]
        return
    with open(path, "rb") as fh:
        yield fh


@contextlib.contextmanager
def open_output(path: str, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary writing; ``-`` is stdout.

    A file goes through :func:`thermo_cli.container.fileops.atomic_output`: it appears
    complete when the block finishes without error, a failure never leaves a half-written
    output nor touches an existing file, and ``overwrite=False`` refuses an existing file.
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

    with atomic_output(path, overwrite=overwrite) as fh:
        yield fh


# --- running -----------------------------------------------------------------------------------


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


def run_app(argv: list[str]) -> int:
    """Run the typer app; map library errors to one stderr line and an exit code."""
    argv, debug, no_color = _split_global_flags(argv)
    with _global_flags():
        _set_flags(debug, no_color)
        try:
            rv = app(args=argv, prog_name="thermo", standalone_mode=False)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except KeyboardInterrupt:
            err("thermo: interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _silence_broken_pipe()
            return EXIT_BROKEN_PIPE
        except BaseException as exc:  # the one place errors become exit codes
            return _report(exc)
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK


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


def _report(exc: BaseException) -> int:
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, typer.Abort):
        err("thermo: aborted")
        return EXIT_INTERRUPTED
    if _is_click_exception(exc):  # typer/click usage errors
        if type(exc).__name__ == "NoArgsIsHelpError" and hasattr(exc, "show"):
            exc.show()
        else:
            err(f"thermo: error: {_one_line_text(exc.format_message())}")
        return int(exc.exit_code)
    return report_error(exc)


def _exit_code_epilog() -> str:
    rows = " · ".join(f"{code} {text.split(' (')[0]}" for code, text in EXIT_CODES.items())
    return f"Exit codes: {rows}."


def _print_version(value: bool) -> None:
    if value:
        from thermo_cli import __version__

        sys.stdout.write(f"thermo {__version__}\n")
        raise typer.Exit()


@app.callback(epilog=_exit_code_epilog())
def _global_options(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for internal errors."),
    no_color: bool = typer.Option(False, "--no-color", help="Disable colour (also NO_COLOR=1)."),
    limit: str = typer.Option("", "--limit", metavar="NAME=SIZE", help=LIMIT_HELP),
    wait: str = typer.Option("", "--wait", metavar="SECONDS", help=WAIT_HELP),
) -> None:
    """Thermograms: plastic memory capsules with hot/warm/cool/cold layers and an audited log.

    Data goes to stdout, messages to stderr; '-' means stdin/stdout.
    """
    _set_flags(debug, no_color)
