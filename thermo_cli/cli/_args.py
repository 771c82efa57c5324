"""Arguments and options several command modules share, declared once.

Only typer is imported here: every command module imports this at load time, and
``thermo get`` loads one of them.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from thermo_cli.cli._core import short_hash as short_hash  # (re-exported for the commands)
from thermo_cli.cli._io import named_file, stdin_as_file

if TYPE_CHECKING:  # imported inside new_thermogram: ``thermo get`` loads this module
    from thermo_cli.engine.thermogram import Thermogram


class Preset(StrEnum):
    default = "default"
    fast_learner = "fast-learner"
    organic = "organic"


class Plasticity(StrEnum):
    stdp = "stdp"
    conservative = "conservative"
    aggressive = "aggressive"
    replace_ = "replace"  # named apart from str.replace, which a member called replace would shadow
    bayesian = "bayesian"


class Policy(StrEnum):
    default = "default"
    aggressive = "aggressive"
    conservative = "conservative"
    manual = "manual"


DEFAULT_MAX_LINE = 64 * 1024 * 1024

FileArg = Annotated[
    str,
    typer.Argument(
        help="Thermogram file (.thermo, or a Rust-crate legacy file).",
        show_default=False,
        callback=named_file,
    ),
]
"""A thermogram a command changes (or creates): a named file, never ``-``."""
InputFileArg = Annotated[
    str,
    typer.Argument(
        help="Thermogram file (.thermo, or a Rust-crate legacy file); '-' reads stdin.",
        show_default=False,
        callback=stdin_as_file,
    ),
]
"""A thermogram a command only reads: ``-`` is stdin (saved to a temporary file)."""


def utf8_text(value: str | None) -> str | None:
    """Argument callback: text from the command line must be valid UTF-8 (a key is UTF-8 in
    the file; bytes the shell could not decode arrive as lone surrogates)."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = value.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            raise typer.BadParameter(f"'{shown}' is not valid UTF-8 text") from None
    return value


KeyArg = Annotated[
    str,
    typer.Argument(
        help="Key of the entry (its hottest layer is changed).", show_default=False, callback=utf8_text
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
UpgradeOpt = Annotated[
    bool, typer.Option("--upgrade", help="Allow converting a Rust-crate legacy file to .thermo in place.")
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing file.")]
SYNC_HELP = (
    "Also fsync the written file and its directory (do this before deleting the source); "
    "without it the file still appears atomically, complete or not at all, and reaches the "
    "disk when the system flushes it, as with cp."
)
SyncOpt = Annotated[bool, typer.Option("--sync", help=SYNC_HELP)]
"""An exported (non-thermogram) output is fsynced only on request; thermograms always are."""
PresetOpt = Annotated[Preset, typer.Option("--preset", help="Thermal layer preset.")]
PlasticityOpt = Annotated[Plasticity, typer.Option("--plasticity", help="Plasticity rule.")]
PolicyOpt = Annotated[Policy, typer.Option("--policy", help="Auto-consolidation policy.")]
SourceOpt = Annotated[str, typer.Option("--source", help="Source recorded for deltas that name none.")]
MaxLineOpt = Annotated[int, typer.Option("--max-line-bytes", min=1, help="Longest accepted JSONL line.")]


NUMBER_ARGS = {"ignore_unknown_options": True}
"""Context settings of a command with a number argument: ``-0.1`` is read as that number
(then checked against its range), not as the unknown options ``-0 -. -1``."""


def strength_text(s: float) -> str:
    return f"{s:.4g}"


def new_thermogram(name: str, preset: Preset, plasticity: Plasticity, policy: Policy) -> Thermogram:
    """A fresh thermogram with the chosen presets (``init`` and ``import-jsonl``)."""
    from thermo_cli.config.engine import ConsolidationPolicy, PlasticityRule, ThermalConfig
    from thermo_cli.engine.thermogram import Thermogram

    return Thermogram(
        name=name,
        thermal=ThermalConfig.preset(preset.value),
        plasticity=PlasticityRule.preset(plasticity.value),
        policy=ConsolidationPolicy.preset(policy.value),
    )


def finite(value: float | None) -> float | None:
    """Option callback: NaN and infinities are usage errors, not values for the library to refuse."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{str(value)!r} is not a finite number.")
    return value
