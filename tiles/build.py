"""``build_tileset``: live database features → an OGC 3D Tiles 1.1 tileset (+ quantized-mesh terrain).

Steps: read column arrays from PostGIS (one repeatable-read snapshot), partition feature points with a
quadtree over EPSG:4490, render each tile (:mod:`tiles.render`) in-process or on an executor, write the
files incrementally (content hashes), assemble ``tileset.json`` with ``region`` bounding volumes and
register the ``tileset`` row. Refinement is REPLACE: parents carry simplified LOD1 blocks of their largest
buildings, leaves every LOD1 block, except buildings with IFC elements, whose elements are drawn instead.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql import insert

from cim import crs
from cim.db.engine import connect_url
from cim.db.models import Tileset
from cim.dem import live_dem
from cim.errors import TilesError
from cim.settings import Settings
from cim.values import TILESET_NAME, TILESET_NAME_RULE
from tiles import partition
from tiles.implicit import SUBTREE_LEVELS, TILESET_SCHEMA, implicit_root
from tiles.output import IncrementalWriter
from tiles.render import BuildingSource, TileJob, TileResult, close_connections, render_tile
from tiles.schema import SCHEMA
from tiles.source import BBox, Columns, read_building_points, read_elements, read_facilities
from tiles.terrain import build_terrain

LAYERS = ("buildings", "elements", "facilities", "terrain")
COMPRESSIONS = ("none", "meshopt", "draco")
LEAF_CAPACITY = 3000.0
PARENT_CAPACITY = 250
ELEMENT_TRIANGLES_PER_UNIT = 40.0
ERROR_DIVISOR = 16.0
MIN_TILESET_ERROR = 200.0


@dataclass
class TileBuildReport:
    """What a build produced (paths absolute; counts of features drawn at leaf level)."""

    name: str
    path: str
    layers: list[str]
    compress: str
    tiles: int = 0
    written: int = 0
    kept: int = 0
    deleted: int = 0
    buildings: int = 0
    elements: int = 0
    facilities: int = 0
    terrain_tiles: int = 0
    terrain_max_level: int | None = None
    bytes: int = 0
    bounds: list[float] | None = None
    min_height: float | None = None
    max_height: float | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _check(name: str, layers: tuple[str, ...] | list[str], compress: str, jobs: int) -> list[str]:
    if not TILESET_NAME.match(name):
        raise TilesError(f"tileset name {name!r} is invalid: use {TILESET_NAME_RULE}")
    chosen = [layer.strip() for layer in layers if layer.strip()]
    unknown = sorted(set(chosen) - set(LAYERS))
    if unknown or not chosen:
        raise TilesError(f"unknown layers {unknown or chosen}; choose among {', '.join(LAYERS)}")
    if compress not in COMPRESSIONS:
        raise TilesError(f"unknown compression {compress!r}; use one of {', '.join(COMPRESSIONS)}")
    if jobs < 1:
        raise TilesError("--jobs must be at least 1")
    return [layer for layer in LAYERS if layer in chosen]


def _element_points(
    elements: Columns, zeta: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Lon/lat of each element's first vertex and its weight (triangles / ELEMENT_TRIANGLES_PER_UNIT)."""
    from cim.db.tin import tin_triangles

    n = len(elements)
    first = np.zeros((n, 3))
    weight = np.ones(n)
    for i, w in enumerate(elements["wkb"]):
        t = tin_triangles(bytes(w))
        if len(t):
            first[i] = t.reshape(-1, 3).mean(axis=0)
            weight[i] = 1.0 + len(t) / ELEMENT_TRIANGLES_PER_UNIT
    if n:
        lon, lat, _ = crs.geocentric_to_geodetic(first, height_anomaly=zeta)
    else:
        lon = lat = np.zeros(0)
    return np.asarray(lon), np.asarray(lat), weight


@contextmanager
def _render_pool(executor: Executor | None, jobs: int) -> Iterator[Executor | None]:
    """The executor that renders tiles: the caller's, else a process pool of ``jobs`` workers (or none)."""
    own_pool: ProcessPoolExecutor | None = None
    if executor is None and jobs > 1:
        # Start the workers before the data is read, so that the forked workers stay small.
        own_pool = ProcessPoolExecutor(max_workers=jobs)
        for warm in [own_pool.submit(int) for _ in range(jobs)]:
            warm.result()
    try:
        yield executor or own_pool
    finally:
        close_connections()
        if own_pool is not None:
            own_pool.shutdown(cancel_futures=True)


def build_tileset(
    engine: Engine,
    settings: Settings,
    name: str,
    *,
    out: Path | None = None,
    layers: tuple[str, ...] | list[str] = LAYERS,
    bbox: BBox | None = None,
    compress: str = "none",
    jobs: int = 1,
    executor: Executor | None = None,
    leaf_capacity: float = LEAF_CAPACITY,
    parent_capacity: int = PARENT_CAPACITY,
    implicit: bool = False,
    subtree_levels: int = SUBTREE_LEVELS,
) -> TileBuildReport:
    """Build (or incrementally rebuild) tileset ``name`` from the live rows of the database.

    ``bbox`` is (west, south, east, north) in CGCS2000 degrees; ``out`` defaults to
    ``settings.data_path / "tiles" / name``. ``jobs`` > 1 renders tiles in a process pool; an ``executor``
    (any :class:`concurrent.futures.Executor`, e.g. a Dask client's) takes precedence. ``implicit`` writes
    the same tiles as an implicit quadtree (``implicitTiling`` + binary subtrees of ``subtree_levels``
    levels, see :mod:`tiles.implicit`) instead of an explicit tree. Raises
    :class:`TilesError` on bad arguments or when there is nothing to build.
    """
    t0 = time.perf_counter()
    chosen = _check(name, layers, compress, jobs)
    with _render_pool(executor, jobs) as pool:
        if bbox is not None and not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise TilesError("bbox must be west,south,east,north with west < east and south < north (degrees)")
        out_dir = (out or settings.data_path / "tiles" / name).expanduser().resolve()
        zeta = settings.height_anomaly
        report = TileBuildReport(name=name, path=str(out_dir), layers=chosen, compress=compress)
        empty = Columns({})
        with engine.connect() as conn:
            # One snapshot for everything: the workers import it to read their buildings.
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            source = BuildingSource(connect_url(engine.url.render_as_string(hide_password=False)), snapshot)
            buildings = read_building_points(conn, bbox) if "buildings" in chosen else empty
            elements = read_elements(conn, bbox) if "elements" in chosen else empty
            facilities = read_facilities(conn, bbox) if "facilities" in chosen else empty
            dem = live_dem(conn) if ("terrain" in chosen or "facilities" in chosen) else None
            report.timings["read"] = time.perf_counter() - t0
            nb, ne, nf = len(buildings), len(elements), len(facilities)
            dem_path = str(dem.path) if dem is not None else None
            if "terrain" in chosen and dem is None and nb + ne + nf == 0:
                raise TilesError("no DEM was ingested (cim ingest raster --kind dem) and there are no features to tile")
            if "terrain" not in chosen and nb + ne + nf == 0:
                raise TilesError(
                    f"no live features in the layers {', '.join(chosen)} (inside the bbox): nothing to tile"
                )
            out_dir.mkdir(parents=True, exist_ok=True)
            writer = IncrementalWriter(out_dir)
            root_tile: dict[str, Any] | None = None
            if nb + ne + nf:
                root_tile = _features(
                    report,
                    writer,
                    buildings,
                    elements,
                    facilities,
                    zeta,
                    dem_path,
                    compress,
                    pool,
                    source,
                    leaf_capacity,
                    parent_capacity,
                    implicit,
                    subtree_levels,
                )
            conn.rollback()
        report.timings["tiles"] = time.perf_counter() - t0 - report.timings["read"]
        options: dict[str, Any] = {"compress": compress, "implicit": implicit}
        if "terrain" in chosen and dem is not None:
            t1 = time.perf_counter()
            summary = build_terrain(dem.path, writer.put, zeta)
            report.terrain_tiles = summary.tiles
            report.terrain_max_level = summary.max_level
            options["terrain"] = "terrain"
            if root_tile is None:
                report.bounds = list(summary.bounds)
                report.min_height, report.max_height = summary.min_height, summary.max_height
            report.timings["terrain"] = time.perf_counter() - t1
        if root_tile is not None:
            tileset = {
                "asset": {"version": "1.1", "generator": "cim tiles"},
                "schema": TILESET_SCHEMA if implicit else SCHEMA,
                "geometricError": max(float(root_tile["geometricError"]) * 2.0, MIN_TILESET_ERROR),
                "root": root_tile,
            }
            writer.put("tileset.json", json.dumps(tileset, separators=(",", ":")).encode("utf-8"))
        report.deleted = writer.finish()
        report.written, report.kept, report.bytes = writer.written, writer.kept, writer.bytes
        report.seconds = time.perf_counter() - t0
        _register(engine, report, options)
        return report


def _cell_error(z: int) -> float:
    size_deg = 360.0 if z < 0 else partition.cell_size(z)
    return size_deg * partition.EARTH_DEG_M / ERROR_DIVISOR


def _features(
    report: TileBuildReport,
    writer: IncrementalWriter,
    buildings: Columns,
    elements: Columns,
    facilities: Columns,
    zeta: float,
    dem_path: str | None,
    compress: str,
    executor: Executor | None,
    source: BuildingSource,
    leaf_capacity: float,
    parent_capacity: int,
    implicit: bool,
    subtree_levels: int,
) -> dict[str, Any]:
    nb, ne, nf = len(buildings), len(elements), len(facilities)
    b_ids = buildings["id"] if nb else np.zeros(0, np.int64)
    e_lon, e_lat, e_w = _element_points(elements, zeta) if ne else (np.zeros(0), np.zeros(0), np.zeros(0))
    e_bid = elements["building_id"] if ne else np.zeros(0, np.int64)
    # Elements of a building go with the building's point; the building's LOD1 block is then skipped at leaves.
    pos = np.searchsorted(b_ids, e_bid)
    pos = np.clip(pos, 0, max(nb - 1, 0))
    attached = (nb > 0) & (b_ids[pos] == e_bid) if nb else np.zeros(ne, bool)
    b_weight = np.ones(nb)
    np.add.at(b_weight, pos[attached], e_w[attached])
    has_elements = np.zeros(nb, bool)
    has_elements[pos[attached]] = True
    orphan = np.nonzero(~attached)[0]
    lon = np.concatenate(
        [buildings["cx"] if nb else np.zeros(0), e_lon[orphan], facilities["px"] if nf else np.zeros(0)]
    )
    lat = np.concatenate(
        [buildings["cy"] if nb else np.zeros(0), e_lat[orphan], facilities["py"] if nf else np.zeros(0)]
    )
    weight = np.concatenate([b_weight, e_w[orphan], np.ones(nf)])
    kind = np.concatenate([np.zeros(nb, np.int8), np.ones(len(orphan), np.int8), np.full(nf, 2, np.int8)])
    ref = np.concatenate([np.arange(nb), orphan, np.arange(nf)]).astype(np.int64)
    root = partition.quadtree(lon, lat, weight, leaf_capacity)
    # Element ids per building index, for leaves.
    elem_of_b: dict[int, list[int]] = {}
    for i in np.nonzero(attached)[0]:
        elem_of_b.setdefault(int(pos[i]), []).append(int(i))
    importance = (buildings["area"] * np.maximum(buildings["height"], 0.1)) if nb else np.zeros(0)
    jobs_list: list[TileJob] = []
    for node in root.walk():
        k, r = kind[node.idx], ref[node.idx]
        bidx = np.sort(r[k == 0])
        key = node.key if node.z >= 0 else "root"
        if node.children:
            if len(bidx) == 0:
                continue
            top = bidx[np.argsort(-importance[bidx], kind="stable")[:parent_capacity]]
            jobs_list.append(
                TileJob(
                    key,
                    building_ids=buildings["id"][np.sort(top)],
                    source=source,
                    simplified=True,
                    height_anomaly=zeta,
                    compress=compress,
                )
            )
            continue
        lod1 = bidx[~has_elements[bidx]]
        eidx = sorted([j for b in bidx[has_elements[bidx]] for j in elem_of_b[int(b)]] + r[k == 1].tolist())
        fidx = np.sort(r[k == 2])
        jobs_list.append(
            TileJob(
                key,
                building_ids=buildings["id"][lod1] if len(lod1) else None,
                source=source,
                elements=elements.take(np.asarray(eidx, dtype=np.int64)) if eidx else None,
                facilities=facilities.take(fidx) if len(fidx) else None,
                dem_path=dem_path,
                height_anomaly=zeta,
                compress=compress,
            )
        )
    results: dict[str, TileResult] = {}

    def _store(res: TileResult) -> None:
        for c in res.contents:
            if implicit:
                continue  # written by tiles.implicit under implicit addresses
            writer.put(f"content/{res.key}-{c.layer}.glb", c.glb, c.sha256)
            c.glb = b""
        results[res.key] = res

    # build_tileset's _render_pool owns the executor (or None: render here) and closes connections after.
    if executor is None:
        for job in jobs_list:
            _store(render_tile(job))
    else:
        futures: list[Future[TileResult]] = [executor.submit(render_tile, job) for job in jobs_list]
        for fut in futures:
            _store(fut.result())
    leaf_counts = {"buildings": 0, "elements": 0, "facilities": 0}
    for node in root.walk():
        if not node.children:
            res = results.get(node.key if node.z >= 0 else "root")
            if res is not None:
                for c, v in res.counts.items():
                    leaf_counts[c] += v
    report.buildings, report.elements, report.facilities = (
        leaf_counts["buildings"] + int(has_elements.sum()),
        leaf_counts["elements"],
        leaf_counts["facilities"],
    )
    report.tiles = len(results)
    tile = _tile_json(root, results, np.eye(4))
    if tile is None:
        raise TilesError("no feature produced any geometry (empty footprints or meshes?)")
    region = tile["boundingVolume"]["region"]
    if implicit:
        tile = implicit_root(root, results, writer.put, _cell_error, subtree_levels)
    report.bounds = [math.degrees(v) for v in region[:4]]
    report.min_height, report.max_height = region[4] - zeta, region[5] - zeta
    return tile


def _tile_json(node: partition.Node, results: dict[str, TileResult], acc: NDArray[np.float64]) -> dict[str, Any] | None:
    res = results.get(node.key if node.z >= 0 else "root")
    tile: dict[str, Any] = {}
    regions: list[list[float]] = []
    here = acc
    if res is not None:
        relative = np.linalg.inv(acc) @ res.matrix  # tile transforms compose from the root down
        tile["transform"] = relative.T.ravel().tolist()
        here = res.matrix
        items = [
            {"uri": f"content/{res.key}-{c.layer}.glb", "boundingVolume": {"region": c.region}} for c in res.contents
        ]
        if len(items) == 1:
            tile["content"] = items[0]
        else:
            tile["contents"] = items  # one content per feature class: one property table per glTF
        regions.append(res.region)
    children = [c for c in (_tile_json(ch, results, here) for ch in node.children) if c is not None]
    if res is None and not children:
        return None
    for c in children:
        regions.append(c["boundingVolume"]["region"])
    r = np.array(regions)
    region = [r[:, 0].min(), r[:, 1].min(), r[:, 2].max(), r[:, 3].max(), r[:, 4].min(), r[:, 5].max()]
    tile["boundingVolume"] = {"region": [float(v) for v in region]}
    tile["geometricError"] = _cell_error(node.z) if children else 0.0
    tile["refine"] = "REPLACE"
    if children:
        tile["children"] = children
    order = ["boundingVolume", "geometricError", "refine", "transform", "content", "contents", "children"]
    return {k: tile[k] for k in order if k in tile}


def _register(engine: Engine, report: TileBuildReport, options: dict[str, Any]) -> None:
    bounds = report.bounds
    values: dict[str, Any] = {
        "name": report.name,
        "kind": "3dtiles",
        "path": report.path,
        "layers": report.layers,
        "min_height": report.min_height,
        "max_height": report.max_height,
        "tile_count": report.tiles,
        "feature_count": report.buildings + report.elements + report.facilities,
        "size_bytes": report.bytes,
        "options": options,
        "status": "ready",
    }
    with engine.begin() as conn:
        stmt = insert(Tileset).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[Tileset.name], set_={**values, "built_at": text("now()")})
        conn.execute(stmt)
        if bounds is not None:
            conn.execute(
                text("UPDATE tileset SET bounds = ST_MakeEnvelope(:w, :s, :e, :n, 4490) WHERE name = :name"),
                {"w": bounds[0], "s": bounds[1], "e": bounds[2], "n": bounds[3], "name": report.name},
            )
