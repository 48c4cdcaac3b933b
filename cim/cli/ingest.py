"""``cim ingest``: IFC models, vector layers and rasters into the platform database."""

from __future__ import annotations

import typer

from cim.cli.ingest_gis import raster, vector
from cim.cli.ingest_ifc import ifc

app = typer.Typer(help="Load IFC models, GIS vector layers and DEM rasters into the database.", no_args_is_help=True)
app.command("vector")(vector)
app.command("raster")(raster)
app.command("ifc")(ifc)
