"""``cim ingest``: one command per registered source format (:mod:`ingest.formats`): ifc, vector, raster…"""

from __future__ import annotations

from typing import Any

import typer
from typer.models import CommandInfo

from ingest import formats


class _FormatCommands(typer.Typer):
    """A Typer group whose commands are read from the format registry each time the command line is built."""

    @property
    def registered_commands(self) -> list[CommandInfo]:
        """``cim ingest NAME`` for every registered format, with the format's own Typer command function."""
        return [CommandInfo(name=fmt.name, callback=fmt.cli_command()) for fmt in formats.registered()]

    @registered_commands.setter
    def registered_commands(self, value: Any) -> None:
        """Typer's constructor sets an empty list; commands come only from the registry."""


app = _FormatCommands(
    help="Load IFC models, GIS vector layers, DEM rasters (every registered source format) into the database.",
    no_args_is_help=True,
)
