"""``review_file``: one BIM pre-review from a file on disk to a :class:`~cim.review.findings.ReviewReport`.

Everything that makes the review impossible (not an IFC, over the size limit, a zip bomb, an invalid IDS, an
unknown parcel) raises :class:`~cim.errors.ReviewError` before the model is analysed; everything found *in*
the model, including a missing georeference, is a finding.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Engine

from cim.db.review_queries import parcel_by_ref
from cim.errors import ReviewError
from cim.review import files, geometry, ids_standard
from cim.review.checks.schema import validation_errors
from cim.review.findings import ReviewReport
from cim.review.model import ReviewModel, load_model
from cim.review.registry import ReviewContext, resolve_checks, run_check
from cim.review.settings import ReviewSettings
from cim.settings import Settings

Progress = Callable[[str], None]


@contextmanager
def _schema_worker(checks: list[Any]) -> Iterator[ProcessPoolExecutor | None]:
    """A one-process pool that validates the schema while this process computes the geometry (2+ cores)."""
    if not any(c.name == "schema" for c in checks) or (os.cpu_count() or 1) < 2:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def find_parcel(engine: Engine | None, ref: str | None) -> dict[str, Any] | None:
    """The parcel row for ``ref`` (id or code); :class:`ReviewError` when it does not exist."""
    if ref is None or not str(ref).strip():
        return None
    if engine is None:
        raise ReviewError("a parcel can only be checked with the platform database connected")
    with engine.connect() as conn:
        parcel = parcel_by_ref(conn, str(ref))
    if parcel is None:
        raise ReviewError(f"parcel {ref!r} does not exist (give a parcel id or code from the parcels layer)")
    return parcel


def open_ids_files(paths: Sequence[Path]) -> dict[str, Any]:
    """Every IDS file parsed and validated (``ReviewError`` for the first invalid one), keyed by path."""
    return {f"ids:{p}": ids_standard.open_ids(p) for p in paths}


def review_file(
    path: Path,
    settings: Settings,
    *,
    review_settings: ReviewSettings | None = None,
    engine: Engine | None = None,
    ids_files: Sequence[Path] = (),
    parcel: str | None = None,
    checks: Iterable[str] | None = None,
    replaces: Iterable[int] = (),
    file_name: str | None = None,
    progress: Progress | None = None,
    on_model: Callable[[ReviewModel], object] | None = None,
) -> ReviewReport:
    """Review an IFC (or ifczip) file: run the chosen checks (default all) and return the report.

    ``on_model`` is called with the analysed model before it is released (the API writes its tileset).
    """
    started = time.perf_counter()
    rs = review_settings or ReviewSettings()
    chosen = resolve_checks(checks)
    path = Path(path)
    if not path.is_file():
        raise ReviewError(f"{path} does not exist or is not a file")
    size = files.check_size(path, rs)
    kind = files.kind_of(path)
    parsed_ids = open_ids_files(list(ids_files))
    parcel_row = find_parcel(engine, parcel)
    with tempfile.TemporaryDirectory(prefix="cim-review-") as scratch, _schema_worker(chosen) as worker:
        ifc_path = files.unpack_ifczip(path, Path(scratch), rs) if kind == "ifczip" else path
        pending = worker.submit(validation_errors, str(ifc_path)) if worker is not None else None
        if progress:
            progress("geometry")
        model = load_model(ifc_path, file_name=file_name or path.name, sha256=files.sha256_of(path), size_bytes=size)
        context = ReviewContext(
            model=model,
            settings=settings,
            review_settings=rs,
            engine=engine,
            parcel=parcel_row,
            ids_files=list(ids_files),
            replaces=set(replaces),
        )
        context.cache.update(parsed_ids)
        if pending is not None:
            context.cache["schema_errors"] = pending
        report = ReviewReport(file_name=model.file_name, sha256=model.sha256, size_bytes=size, schema=model.schema)
        for check in chosen:
            if progress:
                progress(check.name)
            report.checks[check.name] = run_check(check, context)
        report.model = model_summary(model)
        report.model["height_anomaly"] = settings.height_anomaly
        report.parcel = parcel_summary(context)
        if on_model is not None:
            on_model(model)
    report.seconds = time.perf_counter() - started
    return report


def model_summary(model: ReviewModel) -> dict[str, Any]:
    """What the report says about the model: project, buildings, georeference, heights, footprint (GeoJSON)."""
    projects = model.ifc.by_type("IfcProject")
    summary: dict[str, Any] = {
        "project": str(projects[0].Name) if projects and projects[0].Name else None,
        "project_global_id": str(projects[0].GlobalId) if projects else None,
        "buildings": [{"global_id": str(b.GlobalId), "name": b.Name} for b in model.buildings],
        "elements": len(model.elements),
        "georeference": model.georef.describe() if model.georef is not None else None,
        "georeference_error": model.georef_error,
        "zone_epsg": model.zone_epsg if isinstance(model.zone_epsg, int) else None,
    }
    if model.located:
        base, top = model.base_height(), model.top_height()
        footprint = model.footprint()
        summary.update(base_height=round(base, 3), top_height=round(top, 3), height=round(top - base, 3))
        if not footprint.is_empty:
            assert model.zone_epsg is not None
            summary["footprint"] = shapely.geometry.mapping(geometry.to_lonlat(footprint, model.zone_epsg))
            summary["footprint_area_m2"] = round(float(footprint.area), 3)
        centre = np.median(model.elements.centre_lonlat, axis=0)
        summary["centre"] = [round(float(centre[0]), 7), round(float(centre[1]), 7), round(float(centre[2]), 3)]
        summary["element_centres"] = {
            g: [round(float(c[0]), 7), round(float(c[1]), 7), round(float(c[2]), 2)]
            for g, c in zip(model.elements.global_ids, model.elements.centre_lonlat, strict=True)
        }
        summary["element_centres_local"] = {
            g: [round(float(v), 3) for v in c]
            for g, c in zip(model.elements.global_ids, model.elements.centre_model, strict=True)
        }
    return summary


def parcel_summary(context: ReviewContext) -> dict[str, Any] | None:
    """The parcel, its effective limits and its outline (GeoJSON lon/lat), for the report and the viewer."""
    row = context.parcel
    if row is None:
        return None
    limits = context.cache.get("limits") or {
        k: row.get(k) for k in ("max_height", "max_far", "max_density", "min_green_ratio", "setback_m")
    }
    outline = shapely.from_wkb(bytes(row["geom"]))
    summary: dict[str, Any] = {
        "id": int(row["id"]),
        "code": row.get("code"),
        "name": row.get("name"),
        "land_use": row.get("land_use"),
        "area_m2": round(float(row["area_m2"]), 3),
        "limits": {k: v for k, v in limits.items() if v is not None},
        "geometry": shapely.geometry.mapping(outline),
    }
    setback = limits.get("setback_m")
    if setback and context.model.zone_epsg is not None:
        inner = shapely.buffer(geometry.parcel_in_zone(context), -float(setback), join_style="mitre")
        if not inner.is_empty:
            summary["setback_line"] = shapely.geometry.mapping(geometry.to_lonlat(inner, context.model.zone_epsg))
    return summary
