"""``thermo init``: create an empty thermogram file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from thermo_cli.cli._args import (
    FileArg,
    ForceOpt,
    JsonOpt,
    Plasticity,
    PlasticityOpt,
    Policy,
    PolicyOpt,
    Preset,
    PresetOpt,
    new_thermogram,
)
from thermo_cli.cli._common import err, print_json, usage_error

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("init")
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
    from thermo_cli.errors import RefusedError, ValidationError

    if name is not None and not name.strip():
        raise usage_error("--name must not be empty (leave it out to use the file's stem)")
    if Path(file).is_dir():
        raise ValidationError(f"{file}: is a directory, not a thermogram file")
    if not force and Path(file).exists():
        raise RefusedError(f"{file}: already exists (pass --force to overwrite)")
    tg = new_thermogram(name or Path(file).stem or "thermogram", preset, plasticity, policy)
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
