"""``thermo nearest``: the tensor entries most similar to a vector, by cosine."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from thermo_cli.cli._args import FileArg
from thermo_cli.cli._common import print_json

commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


@commands.command("nearest")
def nearest(
    file: FileArg,
    vector: Annotated[
        str,
        typer.Option(
            "--vector",
            "-v",
            help="The query: a .npy or JSON file holding one vector, or numbers separated by commas.",
            show_default=False,
        ),
    ],
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many entries to list.")] = 10,
    prefix: Annotated[
        str | None,
        typer.Option(
            "--prefix", help="Only keys starting with this (e.g. snn/concept/).", show_default=False
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list of {key, cosine}.")] = False,
) -> None:
    """List the tensor entries most similar to a vector (cosine over every float tensor entry
    with as many elements as the vector).

    Example: thermo nearest memory.thermo --vector query.npy --top 5 --prefix snn/concept/
    """
    from thermo_cli import store
    from thermo_cli.operations.nearest import nearest as find
    from thermo_cli.operations.nearest import parse_vector

    query = parse_vector(vector)
    tg = store.load(file, layers="lazy", log="tail")
    matches = find(tg, query, top=top, prefix=prefix)
    if json_out:
        print_json([m.to_dict() for m in matches])
        return
    sys.stdout.write("".join(f"{m.cosine:+.4f}\t{m.key}\n" for m in matches))
