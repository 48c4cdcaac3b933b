"""Connected "bathtub" inundation on the ingested DEM.

Water rises to a level ``H`` (normal height, metres, 1985 datum) from the seeds, the live water bodies
(or one seed point), and floods every DEM cell lower than ``H`` that is 8-connected to a seed through cells
lower than ``H`` (low ground behind higher ground stays dry). Given a water volume instead, the level is
found by bisection so that Σ (H − z) × cell area over flooded land cells equals the volume.

Flooded land (outside the water bodies) is vectorised with ``rasterio.features.shapes`` and transformed to
EPSG:4490; each polygon carries its depth statistics. Buildings and facilities intersecting the flooded
polygons are reported as affected. Cell areas are metric: the raster's own units when projected, else each
row's cell measured in its Gauss–Krüger zone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine
from numpy.typing import NDArray
from sqlalchemy import Engine

from cim import crs
from cim.analysis.report import JsonReport
from cim.db import analysis_queries as q
from cim.db.runs import ResultRow, add_results, finish_run, run_transaction, start_run
from cim.dem import live_dem
from cim.errors import AnalysisError

MAX_CELLS = 40_000_000
"""Largest DEM (cells) read in one piece; larger rasters must be clipped before a flood analysis."""


@dataclass
class FloodGrid:
    """A DEM held in memory for flood analysis: heights (NaN = nodata), transform, CRS, cell areas (m²)."""

    z: NDArray[np.float64]
    transform: Affine
    source: crs.SourceCrs
    cell_area: NDArray[np.float64]  # per row, m²


def load_grid(path: Path) -> FloodGrid:
    """Read a DEM GeoTIFF (first band) with per-row metric cell areas."""
    with rasterio.open(path) as src:
        if src.width * src.height > MAX_CELLS:
            raise AnalysisError(f"DEM {path} has {src.width * src.height} cells; clip it below {MAX_CELLS} cells")
        z = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        transform = src.transform
        source = crs.parse_crs(src.crs.to_wkt()) if src.crs is not None else crs.parse_crs(crs.CGCS2000)
    rows = np.arange(z.shape[0])
    if source.is_geographic:
        col = z.shape[1] / 2
        xs = np.array([[col, col + 1, col + 1, col]] * len(rows))
        ys = np.stack([rows, rows, rows + 1, rows + 1], axis=1).astype(np.float64)
        lon, lat = _xy(transform, xs, ys)
        lon_c, lat_c = crs.transform_xy(np.asarray(lon), np.asarray(lat), source, crs.CGCS2000)
        gk = crs.gk_zone_epsg(float(np.nanmean(lon_c)))
        ex, ny = crs.transform_xy(lon_c.ravel(), lat_c.ravel(), crs.CGCS2000, gk)
        ex, ny = ex.reshape(-1, 4), ny.reshape(-1, 4)
        area = 0.5 * np.abs(np.sum(ex * np.roll(ny, -1, axis=1) - np.roll(ex, -1, axis=1) * ny, axis=1))
    else:
        area = np.full(len(rows), abs(transform.a * transform.e - transform.b * transform.d))
    return FloodGrid(z, transform, source, area.astype(np.float64))


def _xy(
    t: Affine, cols: NDArray[np.float64], rows: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Affine transform of column/row arrays to x/y."""
    return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f


def _components(candidate: NDArray[np.bool_], seeds: NDArray[np.bool_], transform: Affine) -> NDArray[np.bool_]:
    """Cells of ``candidate`` 8-connected to any seed cell."""
    if not (candidate & seeds).any():
        return np.zeros(candidate.shape, dtype=bool)
    shapes = [
        shapely.geometry.shape(g)
        for g, _ in rasterio.features.shapes(
            candidate.astype(np.uint8), mask=candidate, connectivity=8, transform=transform
        )
    ]
    seed_rows, seed_cols = np.nonzero(seeds & candidate)
    sx, sy = _xy(transform, seed_cols.astype(np.float64) + 0.5, seed_rows.astype(np.float64) + 0.5)
    pts = shapely.points(np.asarray(sx), np.asarray(sy))
    tree = shapely.STRtree(shapes)
    hit = np.unique(tree.query(pts, predicate="intersects")[1])
    if hit.size == 0:
        return np.zeros(candidate.shape, dtype=bool)
    mask = rasterio.features.rasterize(
        [(shapes[i], 1) for i in hit], out_shape=candidate.shape, transform=transform, fill=0, dtype="uint8"
    )
    return (mask == 1) & candidate


def flooded_cells(grid: FloodGrid, seeds: NDArray[np.bool_], level: float) -> NDArray[np.bool_]:
    """Cells flooded at ``level``: below it and connected to a seed (seed cells always count as water)."""
    valid = ~np.isnan(grid.z)
    candidate = (valid & (grid.z < level)) | seeds
    return _components(candidate, seeds, grid.transform)


def flood_volume(grid: FloodGrid, water: NDArray[np.bool_], flooded: NDArray[np.bool_], level: float) -> float:
    """Water volume (m³) above flooded land cells (outside the water bodies) at ``level``."""
    land = flooded & ~water & ~np.isnan(grid.z)
    depth = np.where(land, level - np.nan_to_num(grid.z), 0.0)
    return float((np.clip(depth, 0, None) * grid.cell_area[:, None]).sum())


def level_for_volume(grid: FloodGrid, seeds: NDArray[np.bool_], water: NDArray[np.bool_], volume: float) -> float:
    """The water level (m) whose connected flood holds ``volume`` m³ (bisection to 0.5 % or 1 mm)."""
    seed_z = grid.z[seeds & ~np.isnan(grid.z)]
    low = float(np.nanmin(seed_z)) if seed_z.size else float(np.nanmin(grid.z))
    high = float(np.nanmax(grid.z))
    if flood_volume(grid, water, flooded_cells(grid, seeds, high), high) < volume:
        raise AnalysisError(f"a volume of {volume:.0f} m³ overtops the whole DEM; give a smaller volume or a level")
    for _ in range(40):
        mid = (low + high) / 2
        v = flood_volume(grid, water, flooded_cells(grid, seeds, mid), mid)
        if abs(v - volume) <= 0.005 * volume or high - low < 1e-3:
            return mid
        low, high = (mid, high) if v < volume else (low, mid)
    return (low + high) / 2


@dataclass
class FloodReport(JsonReport):
    """A flood run: level, flooded land polygons (GeoJSON lon/lat with depth statistics), affected features."""

    run_id: int | None
    level: float
    volume_m3: float
    flooded_area_km2: float
    depth: dict[str, float | None]
    polygons: list[dict[str, Any]]
    affected_building_ids: list[int]
    affected_facilities: list[dict[str, Any]]
    seeds: str
    dem_dataset_id: int
    seconds: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)

    def feature_collection(self) -> dict[str, Any]:
        """Flooded polygons as a GeoJSON FeatureCollection (lon/lat) with depth stats and affected building ids."""
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": p["geometry"],
                    "properties": {k: v for k, v in p.items() if k != "geometry"},
                }
                for p in self.polygons
            ],
            "level": self.level,
            "depth": self.depth,
            "affected_building_ids": self.affected_building_ids,
        }


def run_flood(
    engine: Engine,
    *,
    level: float | None = None,
    volume: float | None = None,
    seed: tuple[float, float] | str | None = None,
    store: bool = True,
) -> FloodReport:
    """Flood the live DEM to ``level`` metres (or with ``volume`` m³) from water bodies, a seed (lon, lat),
    or, with ``seed="active-alarms"`` (:data:`SEED_ACTIVE_ALARMS`), from every active waterlogging point
    (a manhole whose water-level alarm is raised, :func:`cim.db.alarms.active_waterlogging_points`).

    Raises :class:`AnalysisError` when no DEM is loaded, neither or both of level/volume are given, or no
    seed lies on the DEM.
    """
    started = time.perf_counter()
    if (level is None) == (volume is None):
        raise AnalysisError("give exactly one of a water level (--level, metres) or a water volume (--volume, m³)")
    if volume is not None and not 0 < volume < 1e15:
        raise AnalysisError("the water volume must be a positive number of m³")
    if level is not None and not -1000 < level < 10_000:
        raise AnalysisError("the water level must be a height in metres between -1,000 and 10,000")
    if isinstance(seed, str) and seed != SEED_ACTIVE_ALARMS:
        raise AnalysisError(f"seed must be a longitude/latitude or {SEED_ACTIVE_ALARMS!r}; got {seed!r}")
    if isinstance(seed, tuple) and not (-180 <= seed[0] <= 180 and -90 <= seed[1] <= 90):
        raise AnalysisError(f"seed {seed} is not a longitude/latitude in degrees")
    timings: dict[str, float] = {}
    with run_transaction(engine, store=store) as conn:
        dem = live_dem(conn)
        if dem is None:
            raise AnalysisError("no DEM is loaded; ingest one with `cim ingest raster --kind dem FILE`")
        if not dem.path.exists():
            raise AnalysisError(f"the DEM file {dem.path} of dataset {dem.dataset_id} is missing; re-ingest the DEM")
        grid = load_grid(dem.path)
        water = np.zeros(grid.z.shape, dtype=bool)
        seed_points: list[tuple[float, float]] = []
        if seed == SEED_ACTIVE_ALARMS:
            seed_points = active_alarm_seeds(conn)
            seeds = _seed_cells(grid, seed_points)
            if not seeds.any():
                raise AnalysisError(
                    f"none of the {len(seed_points)} active waterlogging points lies on the DEM's data"
                    if seed_points
                    else "no waterlogging point is active (no manhole water-level alarm is raised)"
                )
            seed_text = f"{len(seed_points)} active waterlogging points ({int(seeds.sum())} DEM cells)"
        elif isinstance(seed, tuple):
            seeds = _seed_cells(grid, [seed])
            if not seeds.any():
                raise AnalysisError(f"seed point {seed} lies outside the DEM's data")
            seed_text = f"point {seed[0]:.6f},{seed[1]:.6f}"
        else:
            bodies = [shapely.from_wkb(w) for w in q.water_bodies_wkb(conn)]
            if not bodies:
                raise AnalysisError("no water bodies are stored; ingest them or give a seed point (--seed LON,LAT)")
            local = [crs.transform_geometry(b, crs.CGCS2000, grid.source) for b in bodies]
            water = rasterio.features.rasterize(
                [(g, 1) for g in local],
                out_shape=grid.z.shape,
                transform=grid.transform,
                fill=0,
                dtype="uint8",
                all_touched=True,
            ).astype(bool)
            if not water.any():
                raise AnalysisError("no water body overlaps the DEM; give a seed point (--seed LON,LAT)")
            seeds = water
            seed_text = f"{len(bodies)} water bodies"
        timings["read"] = round(time.perf_counter() - started, 3)
        if volume is not None:
            level = level_for_volume(grid, seeds, water, volume)
        assert level is not None
        flooded = flooded_cells(grid, seeds, level)
        land = flooded & ~water & ~np.isnan(grid.z)
        timings["flood"] = round(time.perf_counter() - started, 3)
        depth_grid = np.where(land, level - grid.z, np.nan)
        vol = flood_volume(grid, water, flooded, level)
        polygons, union = _polygons(grid, land, depth_grid)
        depths = depth_grid[land]
        stats: dict[str, float | None] = {
            "min": float(depths.min()) if depths.size else None,
            "mean": float(depths.mean()) if depths.size else None,
            "p90": float(np.percentile(depths, 90)) if depths.size else None,
            "max": float(depths.max()) if depths.size else None,
        }
        seed_param: Any = list(seed) if isinstance(seed, tuple) else seed
        params = {"level": level, "volume": volume, "seed": seed_param, "dem": dem.dataset_id}
        if seed_points:
            params["seed_points"] = [list(p) for p in seed_points]
        run_id = start_run(conn, "flood", params)
        rows: list[ResultRow] = []
        area_km2 = 0.0
        affected: dict[str, list[dict[str, Any]]] = {"buildings": [], "facilities": []}
        for p in polygons:
            p["area_km2"] = q.geodesic_area_km2(conn, p["ewkt"])
            area_km2 += p["area_km2"]
        if union is not None:
            affected = q.features_intersecting(conn, f"SRID={crs.CGCS2000};{union.wkt}")
            for p in polygons:
                geom = shapely.from_wkt(p["ewkt"].split(";", 1)[1])
                p["affected_building_ids"] = [
                    b["id"] for b in q.features_intersecting(conn, f"SRID={crs.CGCS2000};{geom.wkt}")["buildings"]
                ]
        for p in polygons:
            attrs = {k: v for k, v in p.items() if k not in ("ewkt", "geometry")}
            rows.append(ResultRow("flood_polygon", p["area_km2"], "km²", None, p["ewkt"], attrs))
        for b in affected["buildings"]:
            rows.append(ResultRow("flood_building", None, None, attributes={"building_id": b["id"]}))
        for fac in affected["facilities"]:
            rows.append(
                ResultRow("flood_facility", None, None, attributes={"facility_id": fac["id"], "kind": fac["kind"]})
            )
        add_results(conn, run_id, rows)
        building_ids = [int(b["id"]) for b in affected["buildings"]]
        summary = {
            "level": level,
            "area_km2": area_km2,
            "volume_m3": vol,
            "depth": stats,
            "buildings": len(building_ids),
            "facilities": len(affected["facilities"]),
        }
        finish_run(conn, run_id, summary)
    for p in polygons:
        p.pop("ewkt", None)
    return FloodReport(
        run_id if store else None,
        float(level),
        vol,
        area_km2,
        stats,
        polygons,
        building_ids,
        affected["facilities"],
        seed_text,
        dem.dataset_id,
        time.perf_counter() - started,
        timings,
    )


SEED_ACTIVE_ALARMS = "active-alarms"
"""The ``seed`` of a flood run from the active waterlogging points (raised manhole water-level alarms)."""


def parse_seed(text: str | None) -> tuple[float, float] | str | None:
    """A seed given as text: ``"LON,LAT"`` in degrees, ``"active-alarms"`` (:data:`SEED_ACTIVE_ALARMS`) or none.

    >>> parse_seed("114.30,30.58")
    (114.3, 30.58)
    """
    if text is None or text.strip() == SEED_ACTIVE_ALARMS:
        return None if text is None else SEED_ACTIVE_ALARMS
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        raise AnalysisError(
            f"seed must be LON,LAT in degrees (e.g. 114.30,30.58) or {SEED_ACTIVE_ALARMS}; got {text!r}"
        ) from None
    return (lon, lat)


def active_alarm_seeds(conn: Any) -> list[tuple[float, float]]:
    """(lon, lat) in degrees (EPSG:4490) of the active waterlogging points marked by sensor alarms."""
    from cim.db.alarms import active_waterlogging_points

    return [(float(p["lon"]), float(p["lat"])) for p in active_waterlogging_points(conn)]


def _seed_cells(grid: FloodGrid, points: list[tuple[float, float]]) -> NDArray[np.bool_]:
    """Seed mask: the DEM cell (with data) under each (lon, lat) point; points off the data are left out."""
    seeds = np.zeros(grid.z.shape, dtype=bool)
    if not points:
        return seeds
    x, y = crs.transform_xy([p[0] for p in points], [p[1] for p in points], crs.CGCS2000, grid.source)
    cols, rows = _xy(~grid.transform, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    for r, c in zip(np.floor(rows).astype(int), np.floor(cols).astype(int), strict=True):
        if 0 <= r < grid.z.shape[0] and 0 <= c < grid.z.shape[1] and not np.isnan(grid.z[r, c]):
            seeds[r, c] = True
    return seeds


def _polygons(
    grid: FloodGrid, land: NDArray[np.bool_], depth: NDArray[np.float64]
) -> tuple[list[dict[str, Any]], shapely.Geometry | None]:
    if not land.any():
        return [], None
    parts = [
        shapely.geometry.shape(g)
        for g, _ in rasterio.features.shapes(land.astype(np.uint8), mask=land, connectivity=8, transform=grid.transform)
    ]
    labels = rasterio.features.rasterize(
        [(g, i + 1) for i, g in enumerate(parts)], out_shape=land.shape, transform=grid.transform, fill=0, dtype="int32"
    )
    labels = np.where(land, labels, 0)
    out: list[dict[str, Any]] = []
    lonlat = []
    for i, part in enumerate(parts):
        cells = labels == i + 1
        d = depth[cells]
        geom = crs.transform_geometry(part, grid.source, crs.CGCS2000)
        lonlat.append(geom)
        out.append(
            {
                "cells": int(cells.sum()),
                "depth_max": float(d.max()) if d.size else None,
                "depth_mean": float(d.mean()) if d.size else None,
                "volume_m3": float((d * np.broadcast_to(grid.cell_area[:, None], land.shape)[cells]).sum()),
                "geometry": shapely.geometry.mapping(geom),
                "ewkt": f"SRID={crs.CGCS2000};{geom.wkt}",
            }
        )
    return out, shapely.union_all(lonlat)
