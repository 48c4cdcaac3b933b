"""``cim ingest``: IFC models, vector layers and rasters into the platform database."""

from __future__ import annotations

import typer

app = typer.Typer(help="Load IFC models, GIS vector layers and DEM rasters into the database.", no_args_is_help=True)
