"""Core commands: create a thermogram, feed it deltas, run its plasticity, read it, export it.

Every command here parses its arguments, calls the library (``thermo_cli.store``, the
engine's ``Thermogram`` operations, ``thermo_cli.formats.jsonl``, ``thermo_cli.formats.dump``) and
formats the result: data on stdout, a one-line summary on stderr, ``--json`` for scripts.
Writers hold the file's lock for the whole load → change → commit, so concurrent writers
serialize and nothing is lost, and commit atomically, so a failure leaves the file as it
was. Library modules are imported inside the commands to keep ``thermo --help`` fast.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from thermo_cli.cli._common import (
    EXIT_USAGE,
    err,
    human_bytes,
    is_interactive,
    open_input,
    open_output,
    print_json,
    progress,
    stdout_console,
    write_stdout_bytes,
)

if TYPE_CHECKING:
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import LogRecord, ReadResult


class Preset(StrEnum):
    default = "default"
    fast_learner = "fast-learner"
    organic = "organic"


class Plasticity(StrEnum):
    stdp = "stdp"
    conservative = "conservative"
    aggressive = "aggressive"
    replace = "replace"
    bayesian = "bayesian"


class Policy(StrEnum):
    default = "default"
    aggressive = "aggressive"
    conservative = "conservative"
    manual = "manual"


class LayerName(StrEnum):
    hot = "hot"
    warm = "warm"
    cool = "cool"
    cold = "cold"


class ExportFormat(StrEnum):
    engram = "engram"
    jsonl = "jsonl"


DEFAULT_MAX_LINE = 64 * 1024 * 1024

FileArg = Annotated[
    str, typer.Argument(help="Thermogram file (.thermo, or a Rust-crate legacy file).", show_default=False)
]
KeyArg = Annotated[
    str, typer.Argument(help="Key of the entry (its hottest layer is changed).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
UpgradeOpt = Annotated[
    bool, typer.Option("--upgrade", help="Allow converting a Rust-crate legacy file to .thermo in place.")
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing file.")]
PresetOpt = Annotated[Preset, typer.Option("--preset", help="Thermal layer preset.")]
PlasticityOpt = Annotated[Plasticity, typer.Option("--plasticity", help="Plasticity rule.")]
PolicyOpt = Annotated[Policy, typer.Option("--policy", help="Auto-consolidation policy.")]
SourceOpt = Annotated[str, typer.Option("--source", help="Source recorded for deltas that name none.")]
MaxLineOpt = Annotated[int, typer.Option("--max-line-bytes", min=1, help="Longest accepted JSONL line.")]

_PROMOTIONS = ("hot_warm", "warm_cool", "cool_cold")
_DEMOTIONS = ("cold_cool", "cool_warm", "warm_hot")
_KEEP_UNTIL_EXIT: list[Any] = []
"""The last applied thermogram: see ``_common.exit_process`` for why it is not freed."""

_APPLY_PROGRESS_BYTES = 16 * 1024 * 1024
"""Inputs smaller than this finish too fast for a progress bar to help."""


# --- helpers ---------------------------------------------------------------------------------


def _short(h: str | None) -> str:
    return "none" if h is None else h[:12]


def _fmt_strength(s: float) -> str:
    return f"{s:.4g}"


def _new_thermogram(name: str, preset: Preset, plasticity: Plasticity, policy: Policy) -> Thermogram:
    from thermo_cli.config.engine import ConsolidationPolicy, PlasticityRule, ThermalConfig
    from thermo_cli.engine.thermogram import Thermogram

    return Thermogram(
        name=name,
        thermal=ThermalConfig.preset(preset.value),
        plasticity=PlasticityRule.preset(plasticity.value),
        policy=ConsolidationPolicy.preset(policy.value),
    )


def _check_writable(path: str, upgrade: bool) -> str:
    """The file's kind; refuses (exit 4) to rewrite a legacy file unless --upgrade."""
    from thermo_cli import store
    from thermo_cli.errors import RefusedError

    kind = store.sniff(path)
    if kind == "engram":
        raise RefusedError(
            f"{path}: is a Rust-crate Engram export, which is an import source only "
            "(use `thermo import-engram`)"
        )
    if kind == "legacy" and not upgrade:
        raise RefusedError(
            f"{path}: is a Rust-crate legacy file; writing would convert it to .thermo: "
            "pass --upgrade to convert it in place, or use `thermo migrate OLD NEW`"
        )
    return kind


def _require_file(path: str) -> None:
    """Fail before taking a lock, so no lock file is left beside a path that does not exist."""
    from thermo_cli.errors import FormatError, NotFoundError

    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"{path}: no such file")
    if p.is_dir():
        raise FormatError(f"{path}: is a directory, not a thermogram file")


def _load_for_writing(path: str, upgrade: bool, *, log: str = "tail") -> tuple[Thermogram, bool]:
    """Load under the caller's lock; a crate file being upgraded logs its migration first.

    ``thermo migrate`` in place: the ``migrate`` event (legacy chain verified, source
    digest, entry counts) comes right after the crate's deltas and before this command's
    changes, so the log reads in the order things happened. Returns (thermogram, whether
    a migrate event was appended).
    """
    from thermo_cli import store

    kind = _check_writable(path, upgrade)
    tg = store.load(path, layers="lazy", log=log)
    if kind != "legacy" or "legacy" not in tg.extras:
        return tg, False
    from thermo_cli.formats.legacy import read_legacy_file
    from thermo_cli.operations.migrate import record_migration

    record_migration(tg, read_legacy_file(path), source=path)
    return tg, True


@contextlib.contextmanager
def _writing(path: str, upgrade: bool, *, log: str = "tail") -> Iterator[Thermogram]:
    """Lock, load, yield the thermogram; commit when the block succeeds, else leave the file."""
    from thermo_cli import store

    _require_file(path)
    with store.locked(path):
        tg, _ = _load_for_writing(path, upgrade, log=log)
        yield tg
        store.commit(path, tg, upgrade=upgrade)


def _entry_json(result: ReadResult) -> dict[str, Any]:
    from thermo_cli.formats import jsonl

    doc: dict[str, Any] = {
        "key": result.key,
        "layer": result.source,
        "strength": result.strength,
        "ternary": None if result.ternary is None else int(result.ternary),
        "update_count": result.update_count,
        "size": len(result.value),
        "value": jsonl.encode_value(result.value, result.tensor),
    }
    if result.tensor is not None:
        t = result.tensor
        doc["tensor"] = {"dtype": t.dtype, "shape": list(t.shape), "encoding": t.encoding}
    return doc


def _record_json(index: int, rec: LogRecord, dirty_start: int, values: bool) -> dict[str, Any]:
    from thermo_cli.codec.timestamps import format_z as ns_to_text
    from thermo_cli.formats import dump as exchange
    from thermo_cli.formats import jsonl
    from thermo_cli.model import Delta

    if not isinstance(rec, Delta):
        return {
            "index": index,
            "kind": "event",
            "event": rec.kind,
            "timestamp": ns_to_text(rec.timestamp_ns),
            "fields": exchange.to_tagged(rec.fields),
            "hash": rec.hash,
            "prev_hash": rec.prev_hash,
        }
    doc: dict[str, Any] = {
        "index": index,
        "kind": "delta",
        "op": rec.delta_type.label,
        "key": rec.key,
        "strength": rec.strength,
        "ternary": None if rec.ternary is None else int(rec.ternary),
        "observation_count": rec.observation_count,
        "source": rec.source,
        "timestamp": ns_to_text(rec.timestamp_ns),
        "id": rec.id,
        "size": len(rec.value),
        "consolidated": index < dirty_start,
        "meta": exchange.to_tagged(rec.custom),
        "hash": rec.hash,
        "prev_hash": rec.prev_hash,
        "scheme": "legacy" if rec.scheme.name == "LEGACY" else "v2",
    }
    if values:
        doc["value"] = jsonl.encode_value(rec.value, rec.tensor)
    return doc


def _record_line(index: int, rec: LogRecord, dirty_start: int) -> str:
    from thermo_cli.codec.timestamps import format_z as ns_to_text
    from thermo_cli.model import Delta

    when = ns_to_text(rec.timestamp_ns)
    if not isinstance(rec, Delta):
        details = " ".join(f"{k}={_field_text(v)}" for k, v in sorted(rec.fields.items()))
        return f"{index:>8}  {when}  [{rec.kind}] {details}  {_short(rec.hash)}"
    tern = "" if rec.ternary is None else f" ternary={int(rec.ternary):+d}"
    state = "consolidated" if index < dirty_start else "dirty"
    return (
        f"{index:>8}  {when}  {rec.delta_type.label:<6} {rec.key!r} s={_fmt_strength(rec.strength)}"
        f"{tern} src={rec.source} {len(rec.value)}B {state}  {_short(rec.hash)}"
    )


def _field_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex()[:12]
    if isinstance(v, float):
        return _fmt_strength(v)
    if isinstance(v, list) and len(v) > 6:
        return f"[{len(v)} items]"
    return str(v)


def _mentions(rec: LogRecord, key: str) -> bool:
    """A record about ``key``: its delta, or an event naming it (reinforce, warm …)."""
    from thermo_cli.model import Delta

    if isinstance(rec, Delta):
        return rec.key == key
    f = rec.fields
    return f.get("key") == key or (isinstance(f.get("keys"), list) and key in f["keys"])


class _CountingReader:
    """Wraps a binary stream to advance a progress bar by the bytes read."""

    def __init__(self, raw: Any, bar: Any) -> None:
        self._raw = raw
        self._bar = bar

    def read1(self, n: int = -1) -> bytes:
        read = getattr(self._raw, "read1", None) or self._raw.read
        data = read(n)
        self._bar.advance(len(data))
        return data

    def read(self, n: int = -1) -> bytes:
        return self.read1(n)


def _input_size(path: str) -> int | None:
    if path == "-":
        return None
    with contextlib.suppress(OSError):
        return Path(path).stat().st_size
    return None


# --- apply -----------------------------------------------------------------------------------


def _apply_stream(
    tg: Thermogram,
    lines: Iterator[tuple[int, bytes]],
    *,
    source: str,
    limits: Any,
    skip_invalid: bool,
    auto: bool,
) -> tuple[int, list[str]]:
    """Parse and apply every delta line; returns (applied, skipped line messages).

    Without ``skip_invalid`` the first bad line raises ``line N: <reason>`` and the
    caller does not commit, so the batch is all-or-nothing.
    """
    import orjson

    from thermo_cli.errors import ThermoError
    from thermo_cli.formats import jsonl

    parser = jsonl.DeltaParser(source=source, limits=limits)
    current = [0]
    skipped: list[str] = []

    def deltas() -> Iterator[Any]:
        loads, build, decode_error = orjson.loads, parser.from_obj, orjson.JSONDecodeError
        for lineno, line in lines:
            current[0] = lineno
            try:
                try:
                    d = build(lineno, loads(line))
                except decode_error:
                    jsonl.load_line(lineno, line)  # raises with orjson's reason
                    raise
                except jsonl.LineError:
                    _refuse_export_line(lineno, line)
                    raise
            except ThermoError as exc:
                if not skip_invalid:
                    raise
                skipped.append(str(exc))
                continue
            yield d

    policy = tg.policy
    if not auto:
        from thermo_cli.config.engine import ConsolidationPolicy, Manual

        tg.policy = ConsolidationPolicy((Manual(),), policy.enable_pruning, policy.enable_merging)
    try:
        if skip_invalid:
            applied = 0
            for d in deltas():
                try:
                    tg.apply(d)
                    applied += 1
                except ThermoError as exc:
                    skipped.append(f"line {current[0]}: {exc}")
            return applied, skipped
        try:
            # a strict parser already checked every field the engine would
            return len(tg.apply_many(deltas(), validated=True)), skipped
        except jsonl.LineError:
            raise
        except jsonl.LineLimitError:
            raise
        except ThermoError as exc:  # refused by the engine: name the line it came from
            raise jsonl.LineError(current[0], str(exc)) from None
    finally:
        tg.policy = policy


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cycle collector: a big batch makes 100,000s of small acyclic objects and
    each collection pass would only walk them again (~15 % of an apply).

    On the way out the survivors are frozen (``gc.freeze``) before collection resumes;
    otherwise the first collection after re-enabling would walk every one of them once
    (~70 ms). Frozen objects are still freed by reference counting.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


def _refuse_export_line(lineno: int, line: bytes) -> None:
    """A line of `thermo export --format jsonl` output gets a hint instead of 'unknown field'."""
    import orjson

    from thermo_cli.formats import jsonl

    obj = orjson.loads(line)
    if isinstance(obj, dict) and "kind" in obj and "op" not in obj:
        raise jsonl.LineError(
            lineno, "this is a thermo JSONL export, not a delta stream: use `thermo import-jsonl`"
        )


# --- commands --------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        file: FileArg,
        name: Annotated[
            str | None,
            typer.Option("--name", "-n", help="Thermogram name [default: file stem].", show_default=False),
        ] = None,
        preset: PresetOpt = Preset.default,
        plasticity: PlasticityOpt = Plasticity.stdp,
        policy: PolicyOpt = Policy.default,
        force: ForceOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Create an empty thermogram.

        Example: thermo init memory.thermo --name memory --preset organic --policy manual
        """
        from thermo_cli import store
        from thermo_cli.errors import RefusedError

        if not force and Path(file).exists():
            raise RefusedError(f"{file}: already exists (pass --force to overwrite)")
        tg = _new_thermogram(name or Path(file).stem or "thermogram", preset, plasticity, policy)
        store.create(file, tg, overwrite=force)
        if json_out:
            print_json(
                {
                    "file": file,
                    "name": tg.name,
                    "id": tg.id,
                    "preset": preset.value,
                    "plasticity": plasticity.value,
                    "policy": policy.value,
                }
            )
        err(
            f"created {file} ({tg.name}: preset {preset.value}, plasticity {plasticity.value}, "
            f"policy {policy.value})"
        )

    @app.command("apply")
    def apply(
        file: FileArg,
        deltas: Annotated[str, typer.Argument(help="JSONL delta stream; '-' reads stdin.")] = "-",
        source: SourceOpt = "thermo",
        skip_invalid: Annotated[
            bool,
            typer.Option("--skip-invalid", help="Skip bad lines (reported on stderr) instead of aborting."),
        ] = False,
        auto_consolidate: Annotated[
            bool,
            typer.Option(
                "--auto-consolidate/--no-auto-consolidate",
                help="Consolidate when the file's policy says so (checked after every delta).",
            ),
        ] = True,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Validate and apply in memory only.")
        ] = False,
        max_line_bytes: MaxLineOpt = DEFAULT_MAX_LINE,
        max_key_bytes: Annotated[
            int, typer.Option("--max-key-bytes", min=1, max=4096, help="Longest accepted key (UTF-8 bytes).")
        ] = 4096,
        upgrade: UpgradeOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Apply a JSONL stream of deltas, linked to the chain head, all-or-nothing.

        One JSON object per line: {"op": "update", "key": "k", "value": "text", "strength": 0.8}.
        A bad line N aborts with 'line N: <reason>' and leaves the file untouched.

        Example: cat deltas.jsonl | thermo apply memory.thermo -
        """
        from thermo_cli import store
        from thermo_cli.formats import jsonl

        if deltas == "-" and sys.stdin.isatty():
            err("thermo: error: reading deltas from a terminal: pipe a JSONL stream or name a file")
            raise typer.Exit(EXIT_USAGE)
        from thermo_cli.cli._common import _stream_limits

        limits = _stream_limits(max_line_bytes, max_key_bytes)
        started = time.perf_counter()
        size = _input_size(deltas)
        _require_file(file)
        with _no_gc(), store.locked(file):
            tg, migrated = _load_for_writing(file, upgrade)
            before = tg.meta.total_consolidations
            with (
                open_input(deltas) as raw,
                progress("applying", size, min_total=_APPLY_PROGRESS_BYTES, unit="bytes") as bar,
            ):
                stream = _CountingReader(raw, bar) if is_interactive() else raw
                lines = jsonl.iter_lines(stream, max_line_bytes=limits.max_line_bytes)
                applied, skipped = _apply_stream(
                    tg, lines, source=source, limits=limits, skip_invalid=skip_invalid, auto=auto_consolidate
                )
            if not dry_run and (applied or tg.log_length != tg.persisted + migrated):
                store.commit(file, tg, upgrade=upgrade)
        _KEEP_UNTIL_EXIT[:] = [tg]  # freed by the process exit, not object by object
        consolidations = tg.meta.total_consolidations - before
        for message in skipped:
            err(f"thermo: skipped {message}")
        elapsed = time.perf_counter() - started
        if json_out:
            print_json(
                {
                    "file": file,
                    "applied": applied,
                    "skipped": len(skipped),
                    "consolidations": consolidations,
                    "log_length": tg.log_length,
                    "head_hash": tg.head_hash,
                    "dirty_deltas": tg.dirty_count,
                    "dry_run": dry_run,
                    "seconds": round(elapsed, 6),
                }
            )
        extra = f", {consolidations} consolidation{'s' * (consolidations != 1)}" if consolidations else ""
        skip = f", skipped {len(skipped)} bad line{'s' * (len(skipped) != 1)}" if skipped else ""
        verb = "would apply" if dry_run else "applied"
        err(
            f"{verb} {applied} delta{'s' * (applied != 1)} to {file}{extra}{skip}; "
            f"head {_short(tg.head_hash)} ({elapsed:.2f} s)"
        )

    @app.command("consolidate")
    def consolidate(file: FileArg, upgrade: UpgradeOpt = False, json_out: JsonOpt = False) -> None:
        """Fold the uncommitted deltas into the hot layer, prune, crystallize; log the point.

        Example: thermo consolidate memory.thermo --json
        """
        with _writing(file, upgrade) as tg:
            report = tg.consolidate()
        doc = {
            "file": file,
            "processed": report.processed,
            "created": report.created,
            "updated": report.updated,
            "merged": report.merged,
            "deleted": report.deleted,
            "pruned": report.pruned,
            "promoted": report.promoted,
            "crystallized": report.crystallized,
            "crystal_merged": report.crystal_merged,
            "entries": report.entries_after,
            "log_size": report.log_size,
            "state_digest": report.state_digest.hex(),
            "log_root": report.log_root.hex(),
        }
        if json_out:
            print_json(doc)
        err(
            f"consolidated {file}: processed {report.processed}, pruned {report.pruned}, "
            f"promoted {report.promoted} to cold; {report.entries_after} entries"
        )

    @app.command("tick")
    def tick(
        file: FileArg,
        decay: Annotated[bool, typer.Option("--decay/--no-decay", help="Decay strengths first.")] = True,
        repeat: Annotated[int, typer.Option("--repeat", "-r", min=1, help="Run this many ticks.")] = 1,
        upgrade: UpgradeOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Advance time: decay every layer, then promote, demote and prune (ENGINE.md order).

        Example: thermo tick memory.thermo --repeat 10
        """
        decayed = pruned = 0
        promoted = [0, 0, 0]
        demoted = [0, 0, 0]
        with _writing(file, upgrade) as tg:
            for _ in range(repeat):
                if decay:
                    decayed += tg.apply_decay()
                report = tg.run_thermal_transitions()
                promoted = [a + b for a, b in zip(promoted, report.promoted, strict=True)]
                demoted = [a + b for a, b in zip(demoted, report.demoted, strict=True)]
                pruned += report.pruned
            entries = {layer.label: len(tg.layers[layer]) for layer in tg.layers}
        if json_out:
            print_json(
                {
                    "file": file,
                    "ticks": repeat,
                    "decayed": decayed,
                    "promoted": dict(zip(_PROMOTIONS, promoted, strict=True)),
                    "demoted": dict(zip(_DEMOTIONS, demoted, strict=True)),
                    "pruned": pruned,
                    "entries": entries,
                }
            )
        layers = ", ".join(f"{k} {v}" for k, v in entries.items())
        err(
            f"ticked {file}{f' x{repeat}' if repeat > 1 else ''}: decayed {decayed}, promoted "
            f"{sum(promoted)}, demoted {sum(demoted)}, pruned {pruned}; {layers}"
        )

    @app.command("reinforce")
    def reinforce(
        file: FileArg,
        key: KeyArg,
        amount: Annotated[float, typer.Argument(help="Strength to add (capped at 1).", min=0)],
        upgrade: UpgradeOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Strengthen an entry: strength = min(1, strength + AMOUNT), one more update.

        Example: thermo reinforce memory.thermo greeting 0.1
        """
        _strength_change("reinforce", file, key, amount, upgrade, json_out)

    @app.command("weaken")
    def weaken(
        file: FileArg,
        key: KeyArg,
        amount: Annotated[float, typer.Argument(help="Strength to remove (floored at 0).", min=0)],
        upgrade: UpgradeOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Weaken an entry: strength = max(0, strength - AMOUNT).

        Example: thermo weaken memory.thermo greeting 0.25
        """
        _strength_change("weaken", file, key, amount, upgrade, json_out)

    @app.command("warm")
    def warm(
        file: FileArg,
        key: Annotated[
            str | None, typer.Argument(help="Cold key to bring back to the hot layer.", show_default=False)
        ] = None,
        match: Annotated[
            str | None,
            typer.Option("--match", "-m", help="Warm every cold key matching this glob.", show_default=False),
        ] = None,
        regex: Annotated[bool, typer.Option("--regex", help="--match is a regular expression.")] = False,
        upgrade: UpgradeOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Move cold entries back to hot (strength reduced by a tenth of warming_delta).

        Example: thermo warm memory.thermo --match 'emb/*'
        """
        if (key is None) == (match is None):
            err("thermo: error: give a KEY or --match PATTERN (not both)")
            raise typer.Exit(EXIT_USAGE)
        if regex and match is None:
            err("thermo: error: --regex needs --match")
            raise typer.Exit(EXIT_USAGE)
        _warm(file, key, match, regex, upgrade, json_out)

    @app.command("get")
    def get(
        file: FileArg,
        key: Annotated[str, typer.Argument(help="Key to read.", show_default=False)],
        raw: Annotated[
            bool, typer.Option("--raw", help="Write the exact value bytes, nothing added.")
        ] = False,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print value, layer, strength and tensor info as JSON.")
        ] = False,
        as_npy: Annotated[
            str | None,
            typer.Option(
                "--as-npy",
                metavar="OUT",
                help="Write a tensor value as a .npy file ('-' for stdout).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Read one key: newest uncommitted delta first, then hot → warm → cool → cold.

        Text values print as text, tensors as a JSON array of numbers, other binary values
        only with --raw (or when stdout is not a terminal).

        Example: thermo get memory.thermo greeting
        """
        from thermo_cli import store
        from thermo_cli.errors import NotFoundError

        if sum((raw, json_out, as_npy is not None)) > 1:
            err("thermo: error: --raw, --json and --as-npy are alternatives")
            raise typer.Exit(EXIT_USAGE)
        if (as_npy == "-" or raw) and sys.stdout.isatty():
            err("thermo: error: not writing binary data to a terminal: redirect stdout or name a file")
            raise typer.Exit(EXIT_USAGE)
        result = store.read(file, key)
        if result is None:
            raise NotFoundError(f"key {key!r} not found in {file}")
        if json_out:
            print_json(_entry_json(result))
        elif as_npy is not None:
            _write_npy(result, as_npy)
        elif raw:
            write_stdout_bytes(result.value)
        else:
            _print_value(result)

    @app.command("keys")
    def keys(
        file: FileArg,
        layer: Annotated[
            LayerName | None,
            typer.Option("--layer", "-l", help="Only this layer's keys.", show_default=False),
        ] = None,
        prefix: Annotated[
            str | None,
            typer.Option("--prefix", "-p", help="Only keys starting with this.", show_default=False),
        ] = None,
        null: Annotated[
            bool, typer.Option("--null", "-0", help="Separate keys with NUL, not newline.")
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print a JSON array of keys.")] = False,
    ) -> None:
        """List the keys a read finds (sorted), or one layer's keys.

        Example: thermo keys memory.thermo --layer cold --json
        """
        from thermo_cli import store

        tg = store.load(file, layers="lazy", log="tail")
        found = tg.keys(layer.value if layer is not None else None)
        if prefix:
            found = [k for k in found if k.startswith(prefix)]
        if json_out:
            print_json(found)
        elif found:
            sep = "\0" if null else "\n"
            sys.stdout.write(sep.join(found) + sep)
            sys.stdout.flush()

    @app.command("stats")
    def stats(file: FileArg, json_out: JsonOpt = False) -> None:
        """Entries per layer, deltas, consolidations, sizes and compression.

        Example: thermo stats memory.thermo
        """
        doc = _stats_doc(file)
        if json_out:
            print_json(doc)
            return
        _print_stats(doc)

    @app.command("log")
    def log(
        file: FileArg,
        key: Annotated[
            str | None, typer.Argument(help="Only records about this key.", show_default=False)
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print a JSON array of records.")] = False,
        values: Annotated[
            bool, typer.Option("--values", help="Include delta values in --json output.")
        ] = False,
        events: Annotated[
            bool,
            typer.Option("--events/--no-events", help="Include consolidation points and layer operations."),
        ] = True,
        last: Annotated[
            int | None,
            typer.Option("--last", "-n", min=0, help="Only the newest N records.", show_default=False),
        ] = None,
    ) -> None:
        """The history, oldest first, including deltas already consolidated.

        Example: thermo log memory.thermo greeting --json
        """
        _print_log(file, key, json_out=json_out, values=values, events=events, last=last)

    @app.command("export")
    def export(
        file: FileArg,
        out: Annotated[str, typer.Argument(help="Output file; '-' for stdout.", show_default=False)],
        fmt: Annotated[
            ExportFormat | None,
            typer.Option(
                "--format",
                "-f",
                show_default=False,
                help="engram (the crate's JSON, all layers + history) or jsonl (lossless dump) "
                "[default: by OUT's extension, engram unless .jsonl].",
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Export all four layers and the full history as Engram JSON or a JSONL dump.

        Example: thermo export memory.thermo memory.json; thermo export memory.thermo dump.jsonl
        """
        if fmt is None:
            fmt = ExportFormat.jsonl if out.endswith((".jsonl", ".ndjson")) else ExportFormat.engram
        if out == "-" and json_out:
            err("thermo: error: --json prints to stdout, so OUT cannot be '-' too")
            raise typer.Exit(EXIT_USAGE)
        _export(file, out, fmt, force=force, json_out=json_out)

    @app.command("import-jsonl")
    def import_jsonl(
        src: Annotated[
            str,
            typer.Argument(
                help="A `thermo export --format jsonl` dump or a delta stream; '-' reads stdin.",
                show_default=False,
            ),
        ],
        out: Annotated[str, typer.Argument(help="New thermogram file.", show_default=False)],
        name: Annotated[
            str | None,
            typer.Option("--name", "-n", show_default=False, help="Name for a delta stream's thermogram."),
        ] = None,
        preset: PresetOpt = Preset.default,
        plasticity: PlasticityOpt = Plasticity.stdp,
        policy: PolicyOpt = Policy.default,
        source: SourceOpt = "thermo",
        max_line_bytes: MaxLineOpt = DEFAULT_MAX_LINE,
        force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Build a new thermogram from a JSONL export (exactly) or a plain delta stream.

        A `thermo export --format jsonl` dump gives back the same layers, log and head
        hash; a delta stream is applied to a fresh thermogram, like init + apply.

        --name/--preset/--plasticity/--policy apply to delta streams; a dump carries its own.

        Example: thermo export a.thermo dump.jsonl && thermo import-jsonl dump.jsonl b.thermo
        """
        from thermo_cli.errors import RefusedError

        if not force and Path(out).exists():
            raise RefusedError(f"{out}: already exists (pass --force to overwrite)")
        if src == "-" and sys.stdin.isatty():
            err("thermo: error: reading from a terminal: pipe a JSONL file or name one")
            raise typer.Exit(EXIT_USAGE)
        fresh = _new_thermogram(name or Path(out).stem or "thermogram", preset, plasticity, policy)
        _import_jsonl(
            src, out, fresh, source=source, max_line_bytes=max_line_bytes, force=force, json_out=json_out
        )


# --- command bodies ----------------------------------------------------------------------------


def _strength_change(verb: str, file: str, key: str, amount: float, upgrade: bool, json_out: bool) -> None:
    with _writing(file, upgrade) as tg:
        before = tg.read_entry(key)
        layer, entry = getattr(tg, verb)(key, amount)
    old = before.strength if before is not None and before.source == layer.label else None
    if json_out:
        print_json(
            {
                "file": file,
                "key": key,
                "layer": layer.label,
                "amount": amount,
                "strength_before": old,
                "strength": entry.strength,
                "update_count": entry.update_count,
            }
        )
    was = f"{_fmt_strength(old)} → " if old is not None else ""
    done = {"reinforce": "reinforced", "weaken": "weakened"}[verb]
    err(f"{done} {key!r} in {layer.label}: strength {was}{_fmt_strength(entry.strength)}")


def _warm(file: str, key: str | None, match: str | None, regex: bool, upgrade: bool, json_out: bool) -> None:
    from thermo_cli.errors import NotFoundError, RefusedError
    from thermo_cli.model import Layer

    where = None
    with _writing(file, upgrade) as tg:
        if not tg.thermal.allow_warming:
            raise RefusedError(f"{file}: warming is disabled in its thermal config (allow_warming)")
        if match is not None:
            warmed = tg.warm_matching(match, regex=regex)
        elif key is not None and tg.warm(key):
            warmed = [key]
        else:
            where = next((layer.label for layer in Layer if key in tg.layers[layer]), None)
            if where is None:
                raise NotFoundError(f"key {key!r} is in no layer of {file}")
            warmed = []
    if json_out:
        print_json({"file": file, "warmed": warmed, "count": len(warmed)})
    if where is not None:
        err(f"{key!r} is in the {where} layer, not cold: nothing to warm")
    else:
        err(f"warmed {len(warmed)} entr{'y' if len(warmed) == 1 else 'ies'} in {file}")


def _print_log(
    file: str, key: str | None, *, json_out: bool, values: bool, events: bool, last: int | None
) -> None:
    from thermo_cli import store
    from thermo_cli.model import Delta

    dirty_start = _dirty_start(file)

    def chosen() -> Iterator[tuple[int, Any]]:
        for index, rec in enumerate(store.iter_log(file)):
            if not events and not isinstance(rec, Delta):
                continue
            if key is not None and not _mentions(rec, key):
                continue
            yield index, rec

    selected: Any = chosen()
    if last is not None:
        from collections import deque

        selected = deque(selected, maxlen=last)
    out = sys.stdout
    if json_out:
        from thermo_cli.cli._common import json_bytes

        first = True
        out.write("[")
        for index, rec in selected:
            out.write(
                ("\n" if first else ",\n")
                + json_bytes(_record_json(index, rec, dirty_start, values)).decode("utf-8")
            )
            first = False
        out.write("]\n" if first else "\n]\n")
    else:
        for index, rec in selected:
            out.write(_record_line(index, rec, dirty_start) + "\n")
    out.flush()


def _dirty_start(file: str) -> int:
    """Index of the first uncommitted record: a container's trailer says it, no decoding."""
    from thermo_cli import store

    if store.sniff(file) != "thermo":
        return store.load(file).dirty_start
    reader = store.open_reader(file)
    try:
        return int(reader.trailer.dirty_start)
    finally:
        reader.close()


def _export(file: str, out: str, fmt: ExportFormat, *, force: bool, json_out: bool) -> None:
    from thermo_cli import store
    from thermo_cli.formats import dump as exchange

    tg = store.load(file, layers="lazy", log="tail")
    total = sum(len(tg.layers[layer]) for layer in tg.layers) + tg.log_length
    with open_output(out, overwrite=force) as fh, progress("exporting", total, min_total=50_000) as bar:
        records = store.iter_log(file)
        if fmt is ExportFormat.engram:
            counts = exchange.export_engram(tg, records, fh, on_item=bar.advance)
        else:
            counts = exchange.export_jsonl(
                tg, records, fh, log_length=tg.log_length, head_hash=tg.head_hash, on_item=bar.advance
            )
    if json_out:
        print_json({"file": file, "out": out, "format": fmt.value, **counts})
    err(
        f"exported {file} to {out} ({fmt.value}): {counts['entries']} entries, "
        f"{counts['deltas']} deltas, {counts['events']} events"
    )


def _import_jsonl(
    src: str, out: str, fresh: Thermogram, *, source: str, max_line_bytes: int, force: bool, json_out: bool
) -> None:
    import orjson

    from thermo_cli import store
    from thermo_cli.cli._common import _stream_limits
    from thermo_cli.formats import dump as exchange
    from thermo_cli.formats import jsonl
    from thermo_cli.model import Delta

    limits = _stream_limits(max_line_bytes)
    with (
        open_input(src) as raw,
        progress("importing", _input_size(src), min_total=_APPLY_PROGRESS_BYTES, unit="bytes") as bar,
    ):
        stream = _CountingReader(raw, bar) if is_interactive() else raw
        lines = jsonl.iter_lines(stream, max_line_bytes=limits.max_line_bytes)
        first = next(lines, None)
        rest = _chain_first(first, lines)
        header = None
        if first is not None:
            with contextlib.suppress(orjson.JSONDecodeError):
                header = orjson.loads(first[1])
        if exchange.is_dump_header(header):
            tg = exchange.import_dump(rest, limits=limits)
            kind = "dump"
            applied = sum(1 for r in tg.records if isinstance(r, Delta))
        else:
            tg = fresh
            applied, _ = _apply_stream(tg, rest, source=source, limits=limits, skip_invalid=False, auto=True)
            kind = "delta stream"
    store.create(out, tg, overwrite=force)
    entries = sum(len(tg.layers[layer]) for layer in tg.layers)
    if json_out:
        print_json(
            {
                "file": out,
                "source": src,
                "kind": kind,
                "deltas": applied,
                "log_length": tg.log_length,
                "entries": entries,
                "head_hash": tg.head_hash,
            }
        )
    err(
        f"imported {src} ({kind}) into {out}: {applied} deltas, {tg.log_length} log records, "
        f"{entries} entries; head {_short(tg.head_hash)}"
    )


def _chain_first(
    first: tuple[int, bytes] | None, rest: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, bytes]]:
    if first is not None:
        yield first
    yield from rest


# --- get output --------------------------------------------------------------------------------


def _print_value(result: ReadResult) -> None:
    if result.tensor is not None:
        import numpy as np

        from thermo_cli.cli._common import json_bytes
        from thermo_cli.codec.tensors import dtype_info, to_float32, value_to_array

        arr = value_to_array(result.value, result.tensor)
        info = dtype_info(result.tensor.dtype)
        if info.kind == "float" and not info.native:
            arr = to_float32(arr, info.name)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
        sys.stdout.write(json_bytes(arr.tolist()).decode("utf-8") + "\n")
        sys.stdout.flush()
        return
    try:
        text = result.value.decode("utf-8")
    except UnicodeDecodeError:
        if sys.stdout.isatty():
            from thermo_cli.errors import ValidationError

            raise ValidationError(
                f"{result.key!r} holds {len(result.value)} bytes of binary data: "
                "not printed to a terminal (use --raw, --json or a redirect)"
            ) from None
        write_stdout_bytes(result.value)
        return
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _write_npy(result: ReadResult, out: str) -> None:
    import numpy as np

    from thermo_cli.codec.tensors import dtype_info, to_float32, value_to_array
    from thermo_cli.errors import ValidationError, quote

    if result.tensor is None:
        raise ValidationError(
            f"{quote(result.key)} is not a tensor (it holds {len(result.value)} bytes): use --raw"
        )
    arr = value_to_array(result.value, result.tensor)
    info = dtype_info(result.tensor.dtype)
    if info.kind == "float" and not info.native:
        err(f"thermo: note: .npy has no {info.name}; writing float32 values")
        arr = to_float32(arr, info.name)
    with open_output(out) as fh:
        np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
    if out != "-":
        shape = list(result.tensor.shape)
        stored = f" as {arr.dtype} {list(arr.shape)}" if list(arr.shape) != shape or info.is_packed else ""
        if info.is_packed:
            stored += " (packed)"
        err(f"wrote {quote(result.key)} {result.tensor.dtype} {shape}{stored} to {out}")


# --- stats -------------------------------------------------------------------------------------


def _stats_doc(file: str) -> dict[str, Any]:
    from thermo_cli import store
    from thermo_cli.codec.timestamps import format_z as ns_to_text
    from thermo_cli.model import Layer

    kind = store.sniff(file)
    tg = store.load(file, layers="lazy", log="tail")
    st = tg.stats()
    file_size = Path(file).stat().st_size
    sizes = {layer.label: _layer_sizes(tg, layer) for layer in Layer}
    raw = sum(r for r, _ in sizes.values())
    stored = None if any(s is None for _, s in sizes.values()) else sum(s for _, s in sizes.values())
    return {
        "file": file,
        "format": kind,
        "name": st.name,
        "id": st.id,
        "entries": st.entries,
        "total_entries": st.total_entries,
        "keys": st.total_keys,
        "dirty_deltas": st.dirty_deltas,
        "dirty_bytes": st.dirty_bytes,
        "log_records": st.log_records,
        "total_deltas": st.total_deltas,
        "consolidations": st.total_consolidations,
        "created_at": ns_to_text(st.created_at_ns),
        "last_consolidation": ns_to_text(st.last_consolidation_ns),
        "head_hash": st.head_hash,
        "file_bytes": file_size,
        "plasticity": tg.plasticity.policy.value,
        "policy": _policy_text(tg),
        "layer_bytes": {k: {"raw": r, "stored": s} for k, (r, s) in sizes.items()},
        "value_bytes": raw,
        "stored_layer_bytes": stored,
        "compression_ratio": round(raw / stored, 4) if stored else None,
    }


def _layer_sizes(tg: Thermogram, layer: Any) -> tuple[int, int | None]:
    """(raw value bytes, stored chunk bytes) of a layer; stored is None for JSON files.

    A container's index knows both without decompressing anything.
    """
    from thermo_cli import store

    origin = store.info(tg)
    if origin is not None and origin.reader is not None:
        idx = origin.reader.index[layer]
        raw = sum(s.size for s in idx.streams)
        stored = sum(c.len for s in idx.streams for c in s.chunks) + sum(d.len for d in idx.dirs)
        return raw, stored
    return sum(len(e.value) for e in tg.layers[layer].values()), None


def _policy_text(tg: Thermogram) -> str:
    parts = []
    for t in tg.policy.triggers:
        name = type(t).__name__
        if name == "DeltaCount":
            parts.append(f"every {t.count} deltas")
        elif name == "TimePeriod":
            parts.append(f"every {t.hours} h")
        elif name == "DirtySize":
            parts.append(f"at {human_bytes(t.bytes)} dirty")
        else:
            parts.append("manual")
    return ", ".join(parts)


def _print_stats(doc: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout_console()
    table = Table(title=f"{doc['name']} ({doc['file']}, {doc['format']})", show_header=True)
    for col, justify in (
        ("layer", "left"),
        ("entries", "right"),
        ("values", "right"),
        ("stored", "right"),
        ("ratio", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]

    def row(label: str, n: int, raw: int, stored: int | None, **kw: Any) -> None:
        ratio = f"{raw / stored:.2f}x" if stored else "-"
        table.add_row(
            label, str(n), human_bytes(raw), "-" if stored is None else human_bytes(stored), ratio, **kw
        )

    for layer, n in doc["entries"].items():
        sizes = doc["layer_bytes"][layer]
        row(layer, n, sizes["raw"], sizes["stored"])
    row("total", doc["total_entries"], doc["value_bytes"], doc["stored_layer_bytes"], style="bold")
    console.print(table)
    rows = [
        ("keys visible", str(doc["keys"])),
        ("dirty deltas", f"{doc['dirty_deltas']} ({human_bytes(doc['dirty_bytes'])} est.)"),
        ("log records", str(doc["log_records"])),
        ("total deltas", str(doc["total_deltas"])),
        ("consolidations", str(doc["consolidations"])),
        ("plasticity", doc["plasticity"]),
        ("auto-consolidate", doc["policy"]),
        ("created", doc["created_at"]),
        ("last consolidation", doc["last_consolidation"]),
        ("head hash", doc["head_hash"] or "none"),
        ("file size", human_bytes(doc["file_bytes"])),
    ]
    info = Table(show_header=False, box=None)
    info.add_column(style="dim")
    info.add_column(overflow="fold")
    for k, v in rows:
        info.add_row(k, v)
    console.print(info)
