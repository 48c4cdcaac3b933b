"""``cim ingest ifc``: an IFC model (IFC2X3, IFC4, IFC4X3) into the platform database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cim.cli.common import CrsOption, JsonOption, emit_ingest_report, ingest_with_progress, stderr
from cim.errors import IngestError


def parse_origin(value: str) -> tuple[float, float, float]:
    """``LON,LAT[,H]`` (CGCS2000 degrees, normal height in metres) as a tuple; refuses anything else."""
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3):
        raise IngestError(f"--origin {value!r} must be LON,LAT,H (e.g. --origin 114.305,30.585,24.0)")
    lon, lat = numbers[0], numbers[1]
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise IngestError(f"--origin {value!r}: longitude comes first, then latitude, both in degrees")
    return lon, lat, numbers[2] if len(numbers) == 3 else 0.0


def ifc(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="IFC file (.ifc, IFC2X3 / IFC4 / IFC4X3).")],
    name: Annotated[str | None, typer.Option("--name", help="Dataset name (default: the IfcProject name).")] = None,
    crs: CrsOption = None,
    origin: Annotated[
        str | None,
        typer.Option("--origin", help="LON,LAT,H of the model origin (CGCS2000 degrees, normal height m)."),
    ] = None,
    rotation: Annotated[
        float | None,
        typer.Option("--rotation", help="Degrees counter-clockwise from east to the model's +X axis (with --origin)."),
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Geometry threads (default 1, see README).")] = None,
    json_: JsonOption = False,
) -> None:
    """Load an IFC model: elements with meshes (EPSG:4479), buildings/facilities (EPSG:4490), one transaction.

    --crs names the map CRS of the model's map conversion, or of its coordinates when it has none.
    """
    from ingest.ifc import ingest_ifc

    options = {"name": name, "crs": crs, "rotation": rotation, "threads": threads}
    where = parse_origin(origin) if origin is not None else None
    report = ingest_with_progress(ctx, f"{file.name} geometry", ingest_ifc, file, origin=where, **options)
    if report.failed:
        shown = ", ".join(report.failed[:10]) + (" …" if len(report.failed) > 10 else "")
        stderr.print(f"[yellow]warning:[/] {len(report.failed)} elements without usable geometry: {shown}")

    def summary() -> str:
        return (
            f"{file.name} ({report.schema}, LoGeoRef {report.georef_level}, {report.crs_in}): "
            f"{report.elements} elements, {len(report.buildings)} buildings/facilities, "
            f"dataset {report.dataset_id} v{report.version}, {report.wall_time_s:.1f} s"
        )

    emit_ingest_report(ctx, report, json_, file, summary)
