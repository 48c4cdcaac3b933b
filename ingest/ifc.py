"""IFC models into the platform database: elements with meshes, buildings and facilities, in one transaction.

``ingest_ifc`` opens the model (IFC2X3, IFC4, IFC4X3), finds its georeference (:mod:`ingest.ifc_georef`),
runs the geometry iterator once over every product with a body (:mod:`ingest.ifc_geometry`), transforms
the vertices batch by batch to CGCS2000 (EPSG:4490 lon/lat + normal height, EPSG:4479 geocentric for
meshes) and streams the element rows into PostgreSQL with COPY while the iterator still runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ifcopenshell
import numpy as np
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, delete, func, insert, text, update

from cim.crs import CGCS2000, check_within_area_of_use, geodetic_to_geocentric
from cim.db.datasets import (
    file_sha256,
    insert_dataset,
    live_dataset_for_model,
    loaded_dataset_with_sha256,
    supersede_dataset,
    update_dataset,
)
from cim.db.models import Building
from cim.db.tin import tin_ewkb, triangle_records
from cim.errors import CimError, IngestError
from cim.settings import Settings
from ingest.formats import IngestReport
from ingest.ifc_geometry import MeshBatch, body_products, iterate_meshes
from ingest.ifc_georef import Georeference, georeference_of
from ingest.ifc_model import open_model
from ingest.ifc_properties import (
    Lookups,
    Spatial,
    address_of,
    facilities,
    gross_floor_area,
    properties_json,
    property_sets,
    storey_count,
)
from ingest.ifc_storage import (
    ElementCopy,
    ElementRow,
    batch_geometry_columns,
    element_hull_polygons,
)

log = logging.getLogger(__name__)

KIND = "ifc"
ProgressCallback = Callable[[int, int], None]
"""Called with (elements done, elements in total) while the geometry runs."""


@dataclasses.dataclass
class IfcIngestReport(IngestReport):
    """What one ``ingest_ifc`` did (``skipped`` when the same bytes were already loaded)."""

    name: str
    path: str
    sha256: str
    schema: str | None = None
    georef_level: int | None = None
    georef_method: str | None = None
    version: int = 1
    elements: int = 0
    elements_by_class: dict[str, int] = dataclasses.field(default_factory=dict)
    triangles: int = 0
    buildings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _FacilityAccumulator:
    building_id: int
    hulls: list[BaseGeometry] = dataclasses.field(default_factory=list)
    low: float = float("inf")
    high: float = float("-inf")
    classes: Counter[str] = dataclasses.field(default_factory=Counter)


def ingest_ifc(
    engine: Engine,
    path: Path | str,
    settings: Settings,
    *,
    name: str | None = None,
    crs: str | None = None,
    origin: tuple[float, float, float] | None = None,
    rotation: float | None = None,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> IfcIngestReport:
    """Ingest one IFC file; returns a report. Nothing is stored when an :class:`IngestError` is raised.

    ``origin`` is (longitude, latitude, normal height) in CGCS2000 degrees/metres of the model origin and
    ``rotation`` the counter-clockwise angle in degrees from east to the model's +X axis; ``crs`` names the
    map CRS of the model's map conversion (or of its coordinates when it has none). Byte-identical files
    already loaded are skipped; a new file of the same IfcProject supersedes the previous version.
    """
    started = time.perf_counter()
    source = Path(path)
    if not source.is_file():
        raise IngestError(f"{source} does not exist or is not a file")
    sha256 = file_sha256(source)
    with engine.connect() as conn:
        existing = loaded_dataset_with_sha256(conn, sha256, KIND)
    if existing is not None:
        return IfcIngestReport(
            dataset_id=existing,
            name=name or source.stem,
            path=str(source),
            sha256=sha256,
            skipped=True,
            wall_time_s=round(time.perf_counter() - started, 3),
        )
    model, schema = open_model(source)
    georef = georeference_of(model, crs=crs, origin=origin, rotation=rotation)
    projects = model.by_type("IfcProject")
    model_key = str(projects[0].GlobalId) if projects else f"sha256:{sha256}"
    report = IfcIngestReport(
        dataset_id=0,
        name=name or (str(projects[0].Name) if projects and projects[0].Name else source.stem),
        path=str(source.resolve()),
        sha256=sha256,
        schema=schema,
        georef_level=georef.level,
        georef_method=georef.method,
        crs_in=georef.crs_in,
        warnings=list(georef.notes),
    )
    try:
        with engine.begin() as conn:
            _store(conn, model, source, georef, model_key, report, settings, threads, progress)
    except CimError:
        raise
    except psycopg.Error as exc:
        raise IngestError(f"{source.name}: the database refused the model ({exc}); nothing was stored") from exc
    except Exception as exc:
        if exc.__class__.__module__.startswith("sqlalchemy"):
            raise IngestError(f"{source.name}: the database refused the model ({exc}); nothing was stored") from exc
        raise
    report.wall_time_s = round(time.perf_counter() - started, 3)
    if report.failed:
        log.warning("%d elements of %s had no geometry: %s", len(report.failed), source.name, report.failed[:20])
    return report


def _store(
    conn: Connection,
    model: ifcopenshell.file,
    source: Path,
    georef: Georeference,
    model_key: str,
    report: IfcIngestReport,
    settings: Settings,
    threads: int | None,
    progress: ProgressCallback | None,
) -> None:
    # Two sessions ingesting the same model must not both supersede the same live version.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"ifc:{model_key}"})
    existing = loaded_dataset_with_sha256(conn, report.sha256, KIND)
    if existing is not None:
        report.dataset_id, report.skipped = existing, True
        return
    previous = _previous_version(conn, model_key)
    if previous is not None:
        supersede_dataset(conn, previous[0])
        report.superseded_dataset_id = previous[0]
        report.version = previous[1] + 1
    dataset_id = insert_dataset(
        conn,
        name=report.name,
        kind=KIND,
        layer="bim",
        path=report.path,
        sha256=report.sha256,
        size_bytes=source.stat().st_size,
        crs_in=georef.crs_in,
        georef_level=georef.level,
        schema_name=report.schema,
        model_key=model_key,
        version=report.version,
        status="loading",
        replaces_id=previous[0] if previous is not None else None,
    )
    report.dataset_id = dataset_id

    products = body_products(model)
    by_id = {p.id(): p for p in products}
    psets = property_sets(model)
    spatial = Spatial.of(model)
    lookups = Lookups.of(model)
    accumulators = _insert_facilities(conn, model, spatial, psets, dataset_id)

    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    total = len(products)
    produced: set[int] = set()
    by_class: Counter[str] = Counter()
    bounds = [np.inf, np.inf, -np.inf, -np.inf]
    with raw.cursor() as cursor:
        copy = ElementCopy(cursor, dataset_id)
        on_element = (lambda done: progress(done, total)) if progress is not None else None
        try:
            for batch in iterate_meshes(model, products, threads=threads, on_element=on_element):
                box = _write_batch(
                    copy, batch, by_id, psets, spatial, lookups, georef, settings, accumulators, by_class
                )
                produced.update(batch.step_ids)
                report.triangles += int(sum(len(t) for t in batch.triangle_chunks))
                bounds = [*np.minimum(bounds[:2], box[:2]), *np.maximum(bounds[2:], box[2:])]
        except BaseException as exc:
            copy.abort(exc)
            raise
        copy.close()
    report.elements = copy.rows
    report.elements_by_class = dict(sorted(by_class.items()))
    report.failed = sorted(str(by_id[i].GlobalId) for i in by_id.keys() - produced)
    if report.failed:
        report.warnings.append(f"{len(report.failed)} elements had no usable geometry and were left out")
    report.buildings = _finish_facilities(conn, accumulators)
    extent = shapely.box(*bounds) if np.isfinite(bounds).all() else None
    update_dataset(
        conn,
        dataset_id,
        status="loaded",
        counts={"elements": report.elements, "buildings": len(report.buildings), "triangles": report.triangles},
        summary={
            "georeference": georef.describe(),
            "elements_by_class": report.elements_by_class,
            "failed": report.failed,
            "warnings": report.warnings,
        },
        extent=func.ST_GeomFromText(extent.wkt, CGCS2000) if extent is not None else None,
    )


def _previous_version(conn: Connection, model_key: str) -> tuple[int, int] | None:
    """(id, version) of the live dataset of the same IfcProject, if any."""
    found = live_dataset_for_model(conn, model_key, KIND)
    return (found.id, found.version) if found is not None else None


def _insert_facilities(
    conn: Connection,
    model: ifcopenshell.file,
    spatial: Spatial,
    psets: dict[int, dict[str, dict[str, Any]]],
    dataset_id: int,
) -> dict[int, _FacilityAccumulator]:
    """Insert one placeholder building row per IfcBuilding/IfcFacility; geometry is filled in at the end."""
    found: dict[int, _FacilityAccumulator] = {}
    for facility in facilities(model):
        attributes = json.loads(properties_json(psets.get(facility.id(), {})))
        values = {
            "name": facility.Name or getattr(facility, "LongName", None),
            "address": address_of(facility),
            "footprint": func.ST_GeomFromText("MULTIPOLYGON EMPTY", CGCS2000),
            "base_height": 0.0,
            "height": 0.0,
            "storeys": storey_count(facility, spatial, model),
            "gross_floor_area": gross_floor_area(facility, spatial, psets, model),
            "cim_level": 6,
            "facility_type": facility.is_a(),
            "ifc_global_id": facility.GlobalId,
            "source_id": facility.GlobalId,
            "attributes": attributes,
            "dataset_id": dataset_id,
        }
        building_id = int(conn.execute(insert(Building).values(**values).returning(Building.id)).scalar_one())
        found[facility.id()] = _FacilityAccumulator(building_id=building_id)
    return found


def _write_batch(
    copy: ElementCopy,
    batch: MeshBatch,
    by_id: dict[int, ifcopenshell.entity_instance],
    psets: dict[int, dict[str, dict[str, Any]]],
    spatial: Spatial,
    lookups: Lookups,
    georef: Georeference,
    settings: Settings,
    accumulators: dict[int, _FacilityAccumulator],
    by_class: Counter[str],
) -> tuple[float, float, float, float]:
    """Georeference, encode and COPY one batch; returns its 2D bounds (west, south, east, north)."""
    vertices, triangles, voff, toff = batch.arrays()
    lon, lat, height = georef.to_geodetic(vertices)
    finite = np.isfinite(lon).all() and np.isfinite(lat).all()
    if not finite or np.abs(lon).max() > 180.0 or np.abs(lat).max() > 90.0:
        raise IngestError(
            f"model coordinates could not be transformed with {georef.crs_in} (they fall off the globe); "
            "check the model's georeference or --crs; nothing was stored"
        )
    if georef.crs.crs is not None and not georef.crs.crs.is_geographic:
        check_within_area_of_use(lon, lat, georef.crs)
    ecef = geodetic_to_geocentric(lon, lat, height, height_anomaly=settings.height_anomaly)
    records = triangle_records(ecef[triangles])
    locations, extents, low, high, boxes = batch_geometry_columns(lon, lat, height, voff)
    hulls = element_hull_polygons(lon, lat, voff)
    rows: list[ElementRow] = []
    meshes: list[bytes] = []
    counts: list[int] = []
    for i, step_id in enumerate(batch.step_ids):
        product = by_id[step_id]
        storey = spatial.storey_of(product)
        facility = spatial.facility_of(product)
        accumulator = accumulators.get(facility.id()) if facility is not None else None
        color = batch.color_rows[i]
        ifc_class = product.is_a()
        rows.append(
            ElementRow(
                global_id=str(product[0]),  # IfcRoot attributes by position: GlobalId 0, Name 2
                ifc_class=ifc_class,
                name=product[2],
                type_name=lookups.type_name(step_id),
                storey=(storey.Name or storey.LongName) if storey is not None else None,
                material=lookups.material(step_id),
                color_json=json.dumps([round(c, 4) for c in color]) if color is not None else None,
                properties_json=properties_json(psets.get(step_id, {})),
                building_id=accumulator.building_id if accumulator is not None else None,
            )
        )
        meshes.append(tin_ewkb(records[toff[i] : toff[i + 1]]))
        counts.append(int(toff[i + 1] - toff[i]))
        by_class[ifc_class] += 1
        if accumulator is not None:
            accumulator.hulls.append(hulls[i])
            accumulator.low = min(accumulator.low, float(low[i]))
            accumulator.high = max(accumulator.high, float(high[i]))
            accumulator.classes[ifc_class] += 1
    copy.write(rows, meshes, counts, locations, extents, low, high)
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )


def footprint_of(hulls: list[BaseGeometry]) -> MultiPolygon | None:
    """2D union of element hulls (lon/lat degrees) as a MultiPolygon; flat hulls (lines) are ignored."""
    if not hulls:
        return None
    geoms = np.asarray(hulls, dtype=object)
    polygons = geoms[shapely.get_type_id(geoms) == 3]
    # Hulls of flat vertical elements are lines; a model made only of such gets a hair-thin outline.
    merged = shapely.union_all(polygons) if len(polygons) else shapely.buffer(shapely.union_all(geoms), 1e-7)
    parts = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon) and not g.is_empty]
    if not parts:
        return None
    return MultiPolygon(parts)


def _finish_facilities(conn: Connection, accumulators: dict[int, _FacilityAccumulator]) -> list[dict[str, Any]]:
    """Fill footprints and heights of the facility rows; drop facilities without any element geometry."""
    summaries: list[dict[str, Any]] = []
    for accumulator in accumulators.values():
        footprint = footprint_of(accumulator.hulls)
        if footprint is None:
            conn.execute(delete(Building).where(Building.id == accumulator.building_id))
            continue
        only_generic = set(accumulator.classes) <= {"IfcBuildingElementProxy", "IfcSpace"}
        conn.execute(
            update(Building)
            .where(Building.id == accumulator.building_id)
            .values(
                footprint=func.ST_GeomFromWKB(shapely.to_wkb(footprint), CGCS2000),
                base_height=accumulator.low,
                height=max(0.0, accumulator.high - accumulator.low),
                cim_level=5 if only_generic else 6,
            )
        )
        summaries.append(
            {
                "id": accumulator.building_id,
                "elements": sum(accumulator.classes.values()),
                "base_height": round(accumulator.low, 3),
                "height": round(accumulator.high - accumulator.low, 3),
            }
        )
    return summaries
