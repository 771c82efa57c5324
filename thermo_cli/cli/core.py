"""Core commands (placeholder module replaced by the CLI issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("version")
    def version() -> None:
        """Print the thermo version."""
        from thermo_cli import __version__

        typer.echo(__version__)
