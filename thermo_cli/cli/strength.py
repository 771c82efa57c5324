"""Changing one entry's strength or temperature: ``reinforce``, ``weaken``, ``warm``.

Each runs one engine operation inside a writer session
(:func:`thermo_cli.store.edit`) and reports the before/after.
"""

from __future__ import annotations

from typing import Annotated

import typer

from thermo_cli.cli._args import NUMBER_ARGS, FileArg, JsonOpt, KeyArg, UpgradeOpt, finite, strength_text
from thermo_cli.cli._common import EXIT_USAGE, err, print_json

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("reinforce", context_settings=NUMBER_ARGS)
def reinforce(
    file: FileArg,
    key: KeyArg,
    amount: Annotated[float, typer.Argument(help="Strength to add (capped at 1).", min=0, callback=finite)],
    upgrade: UpgradeOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Strengthen an entry: strength = min(1, strength + AMOUNT), one more update.

    Example: thermo reinforce memory.thermo greeting 0.1
    """
    _strength_change("reinforce", file, key, amount, upgrade, json_out)


@commands.command("weaken", context_settings=NUMBER_ARGS)
def weaken(
    file: FileArg,
    key: KeyArg,
    amount: Annotated[
        float, typer.Argument(help="Strength to remove (floored at 0).", min=0, callback=finite)
    ],
    upgrade: UpgradeOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Weaken an entry: strength = max(0, strength - AMOUNT).

    Example: thermo weaken memory.thermo greeting 0.25
    """
    _strength_change("weaken", file, key, amount, upgrade, json_out)


def _strength_change(verb: str, file: str, key: str, amount: float, upgrade: bool, json_out: bool) -> None:
    from thermo_cli.store import edit

    with edit(file, upgrade=upgrade) as tg:
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
    was = f"{strength_text(old)} → " if old is not None else ""
    done = {"reinforce": "reinforced", "weaken": "weakened"}[verb]
    err(f"{done} {key!r} in {layer.label}: strength {was}{strength_text(entry.strength)}")


@commands.command("warm")
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


def _warm(file: str, key: str | None, match: str | None, regex: bool, upgrade: bool, json_out: bool) -> None:
    from thermo_cli.errors import NotFoundError, RefusedError
    from thermo_cli.model import Layer
    from thermo_cli.store import edit

    where = None
    with edit(file, upgrade=upgrade) as tg:
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
