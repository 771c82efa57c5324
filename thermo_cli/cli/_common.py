"""Shared CLI plumbing: the typer app, its root group, --limit, progress bars and consoles.

Exit codes, error lines, JSON/byte output and the global switches live in
:mod:`thermo_cli.cli._core` (typer-free, for the start-up fast path) and are re-exported
here, so every command module imports its helpers from this one place.

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
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import typer
from typer.core import TyperGroup

from thermo_cli.cli._core import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    EXIT_VERIFY_FAILED,
    VerificationFailed,
    _global_flags,
    _one_line,
    _set_flags,
    _silence_broken_pipe,
    _split_global_flags,
    _state,
    err,
    escape_controls,
    exit_code_for,
    exit_process,
    flag_hints,
    is_interactive,
    json_bytes,
    open_input,
    open_output,
    print_json,
    report_error,
    show_as,
    shown,
    stdout_is_terminal,
    stream_limits,
    use_color,
    write_stdout_bytes,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_CODES",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "EXIT_VERIFY_FAILED",
    "LIMIT_HELP",
    "ThermoGroup",
    "VerificationFailed",
    "_global_flags",
    "_one_line",
    "_set_flags",
    "_silence_broken_pipe",
    "_split_global_flags",
    "_state",
    "app",
    "err",
    "escape_controls",
    "exit_code_for",
    "exit_process",
    "flag_hints",
    "is_interactive",
    "json_bytes",
    "open_input",
    "open_output",
    "print_json",
    "progress",
    "report_error",
    "run_app",
    "show_as",
    "shown",
    "stderr_console",
    "stdout_console",
    "stdout_is_terminal",
    "stream_limits",
    "use_color",
    "write_stdout_bytes",
]
"""The typer-free helpers come from :mod:`thermo_cli.cli._core`; commands import all of them from here."""

if TYPE_CHECKING:
    pass


class _ClickError(Protocol):
    exit_code: int

    def format_message(self) -> str: ...


def _is_click_exception(exc: BaseException) -> TypeGuard[_ClickError]:
    """typer's vendored click signals usage errors with exceptions carrying an exit code."""
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code")


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
        args, options = take_global_option(args, "--storage-option", "KEY=VALUE, e.g. anon=true")
        args, caches = take_global_option(args, "--remote-cache", "a directory")
        ctx.meta[_REMOTE_META] = (options, caches)
        args, ctx.meta[_WAIT_META] = _take_wait_arg(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        options, caches = ctx.meta.get(_REMOTE_META, ([], []))
        with (
            _global_flags(),
            _run_limits(ctx.meta.get(_LIMITS_META, {})),
            _run_remote(options, caches),
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
    switch like --limit, so every command that locks honours it (the last one given wins)."""
    rest, values = take_global_option(args, "--wait", "SECONDS, e.g. --wait 10")
    if not values:
        return rest, None
    value = values[-1]
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
    """Pull every ``--limit NAME=SIZE`` / ``--limit=NAME=SIZE`` out of ``args`` (before ``--``)."""
    return take_global_option(args, "--limit", "NAME=SIZE, e.g. max_value_bytes=8G")


def take_global_option(args: list[str], flag: str, needs: str) -> tuple[list[str], list[str]]:
    """Pull every ``FLAG VALUE`` / ``FLAG=VALUE`` out of ``args`` (before ``--``).

    Like --debug these are global switches accepted anywhere on the line, and repeatable:
    handled here, before click parses, so neither typer's list coercion nor command
    trimming has to know about them.
    """
    rest: list[str] = []
    items: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i:])
            break
        if a == flag:
            if i + 1 >= len(args):
                raise typer.BadParameter(f"requires {needs}", param_hint=f"'{flag}'")
            items.append(args[i + 1])
            i += 2
            continue
        if a.startswith(f"{flag}="):
            items.append(a[len(flag) + 1 :])
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


# --- remote reads (--storage-option / --remote-cache) -----------------------------------------

_REMOTE_META = "thermo.remote"
STORAGE_OPTION_HELP = (
    "fsspec option for URLs this run reads (repeatable; values parse as JSON when they can), "
    "e.g. --storage-option endpoint_url=http://127.0.0.1:9000 --storage-option anon=true. "
    "fsspec's own FSSPEC_<PROTOCOL>_<KEY> environment variables apply too."
)
REMOTE_CACHE_HELP = (
    "Keep the blocks remote reads fetch in this local directory, so reading the same "
    "objects again fetches nothing (also THERMO_REMOTE_CACHE)."
)


@contextlib.contextmanager
def _run_remote(options: list[str], caches: list[str]) -> Iterator[None]:
    """Run one invocation inside ``use_remote`` when --storage-option/--remote-cache
    (or THERMO_REMOTE_CACHE) are given; otherwise import nothing."""
    cache = caches[-1] if caches else os.environ.get("THERMO_REMOTE_CACHE") or None
    if not options and cache is None:
        yield
        return
    from thermo_cli.config.remote import RemoteSettings, parse_storage_options, use_remote
    from thermo_cli.errors import ValidationError

    try:
        parsed = parse_storage_options(options)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--storage-option'") from None
    with use_remote(RemoteSettings(storage_options=parsed, cache_dir=cache)):
        yield


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


def usage_error(message: str) -> typer.Exit:
    """Print ``thermo: error: message`` and return the exit (code 2) to raise."""
    err(f"thermo: error: {message}")
    return typer.Exit(EXIT_USAGE)


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


# --- running -----------------------------------------------------------------------------------


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
    storage_option: str = typer.Option("", "--storage-option", metavar="KEY=VALUE", help=STORAGE_OPTION_HELP),
    remote_cache: str = typer.Option("", "--remote-cache", metavar="DIR", help=REMOTE_CACHE_HELP),
    wait: str = typer.Option("", "--wait", metavar="SECONDS", help=WAIT_HELP),
) -> None:
    """Thermograms: plastic memory capsules with hot/warm/cool/cold layers and an audited log.

    Data goes to stdout, messages to stderr; '-' means stdin/stdout.
    """
    _set_flags(debug, no_color)
