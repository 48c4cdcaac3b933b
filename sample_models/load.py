"""Loading the generated GIS samples through the normal ingest paths."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from cim.settings import Settings
from sample_models.sample_files import DistrictFiles


def load_district(engine: Engine, settings: Settings, files: DistrictFiles) -> list[Any]:
    """Ingest what :func:`generate_district` wrote: the DEM first (building base heights come from it),
    then districts, parcels, planning zones, buildings and each facility kind. Returns the ingest reports."""
    from ingest.raster import ingest_raster
    from ingest.vector import ingest_vector

    reports: list[Any] = []
    if files.dem is not None:
        reports.append(ingest_raster(engine, files.dem, settings, kind="dem"))
    sources = [files.gpkg] if files.gpkg is not None else list(files.zone_files)
    for source in sources:
        assert source is not None
        for source_layer, layer, kind in files.layers:
            reports.append(ingest_vector(engine, source, settings, layer=layer, kind=kind, source_layer=source_layer))
    return reports
