"""``cim ingest vector`` and ``cim ingest raster``: GIS layers and DEMs into the platform database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cim.cli.common import CrsOption, JsonOption, emit_ingest_report, ingest_with_progress, state


def vector(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="GeoPackage, Shapefile, GeoJSON, FlatGeobuf or CSV (WKT) file.")],
    layer: Annotated[
        str, typer.Option("--layer", help="Target: buildings | facilities | parcels | planning | districts.")
    ],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Facility kind (with --layer facilities), e.g. pipe_water, park.")
    ] = None,
    crs: CrsOption = None,
    where: Annotated[str | None, typer.Option("--where", help='OGR SQL filter, e.g. "building IS NOT NULL".')] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="Field mapping TARGET=SOURCE (repeatable), e.g. height=BLDG_H.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Ingest TOML: [local_crs], [mapping], [buildings], [uses].")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="DBF code page of a Shapefile without .cpg (GBK, GB18030…).")
    ] = None,
    source_layer: Annotated[
        str | None, typer.Option("--source-layer", help="Layer of a multi-layer source (GeoPackage).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Load a GIS vector layer (transformed to CGCS2000, EPSG:4490) in one transaction."""
    from ingest.fields import parse_map_options
    from ingest.vector import ingest_vector

    options: dict[str, Any] = {"layer": layer, "kind": kind, "crs": crs, "where": where, "config": config}
    options |= {"mapping": parse_map_options(map_ or []), "encoding": encoding, "source_layer": source_layer}
    report = ingest_with_progress(ctx, f"{file.name} → {layer}", ingest_vector, file, **options)

    def summary() -> str:
        return (
            f"{file.name} → {layer}: {report.stored} stored of {report.read} read, {report.repaired} repaired, "
            f"{report.skipped_features} skipped, dataset {report.dataset_id}, {report.wall_time_s:.1f} s"
        )

    emit_ingest_report(ctx, report, json_, file, summary)


def raster(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="GeoTIFF (or any GDAL raster) of normal heights in metres.")],
    kind: Annotated[str, typer.Option("--kind", help="Raster kind; only 'dem' is supported.")] = "dem",
    crs: CrsOption = None,
    json_: JsonOption = False,
) -> None:
    """Store a DEM as a Cloud-Optimised GeoTIFF in the data directory and register it."""
    from ingest.raster import ingest_raster

    st = state(ctx)
    report = ingest_raster(st.engine(), file, st.settings, kind=kind, crs=crs)
    emit_ingest_report(
        ctx, report, json_, file, lambda: f"{file.name}: stored as dataset {report.dataset_id} ({report.path})"
    )
