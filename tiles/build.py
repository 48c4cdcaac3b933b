"""``build_tileset``: live database features → an OGC 3D Tiles 1.1 tileset (+ quantized-mesh terrain).

Steps: read each chosen tile class's column arrays from PostGIS (one repeatable-read snapshot; the classes
come from the registry :mod:`tiles.classes`; a build too large to hold whole is read grid cell by grid cell,
:mod:`tiles.stream`), partition their points with a quadtree over EPSG:4490, render
each tile (:mod:`tiles.render`) in-process or on an executor, write the files incrementally (content hashes),
assemble ``tileset.json`` with ``region`` bounding volumes and register the ``tileset`` row. Refinement is
REPLACE: parents carry simplified features of the classes that appear in parents (the largest buildings'
LOD1 blocks), leaves every feature, except rows whose attached rows replace them (a building with IFC
elements: its elements are drawn instead of its block).
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects.postgresql import insert

from cim.crs import CGCS2000
from cim.db.engine import connect_url
from cim.db.models import Tileset
from cim.dem import live_dem
from cim.errors import TilesError
from cim.settings import Settings
from cim.values import TILESET_NAME, TILESET_NAME_RULE
from tiles import classes, partition
from tiles.implicit import implicit_root, tileset_schema
from tiles.options import COMPRESSIONS, OutputOptions, TilingOptions, with_overrides
from tiles.output import IncrementalWriter
from tiles.render import TileJob, TileResult, render_tile
from tiles.source import BuildingSource, Columns, close_connections
from tiles.stream import Stream, partition_data, stream_plan
from tiles.terrain import build_terrain

ERROR_DIVISOR = 16.0
IN_FLIGHT = 16
"""Tiles submitted to the render executor and not yet written, at most."""
MIN_TILESET_ERROR = 200.0


@dataclass
class TileBuildReport:
    """What a build produced (paths absolute; ``features``: per layer, the features drawn at leaf level,
    also readable as attributes and top-level keys of :meth:`to_dict`: ``report.buildings``)."""

    name: str
    path: str
    layers: list[str]
    compress: str
    tiles: int = 0
    written: int = 0
    kept: int = 0
    deleted: int = 0
    features: dict[str, int] = field(default_factory=dict)
    terrain_tiles: int = 0
    terrain_max_level: int | None = None
    bytes: int = 0
    bounds: list[float] | None = None
    min_height: float | None = None
    max_height: float | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    partitions: int = 0

    def __getattr__(self, name: str) -> int:
        if name.startswith("_") or name == "features":
            raise AttributeError(name)
        if name in (c.layer for c in classes.registered()):
            return self.features.get(name, 0)
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with one key per content layer: its feature count)."""
        return {**{c.layer: 0 for c in classes.registered()}, **self.features, **asdict(self)}

    def summary(self) -> str:
        """One line for people: tiles, files and features per layer."""
        counts = ", ".join(f"{v} {k}" for k, v in self.features.items())
        streamed = f", streamed in {self.partitions} partitions" if self.partitions else ""
        return (
            f"tileset {self.name}: {self.tiles} tiles ({self.written} written, {self.kept} kept, {self.deleted} "
            f"deleted), {counts or 'no features'}{streamed}, {self.terrain_tiles} terrain tiles, "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s → {self.path}/tileset.json"
        )


def _check(name: str, tiling: TilingOptions, output: OutputOptions) -> list[str]:
    if not TILESET_NAME.match(name):
        raise TilesError(f"tileset name {name!r} is invalid: use {TILESET_NAME_RULE}")
    known = classes.layers()
    chosen = [layer.strip() for layer in (tiling.layers or known) if layer.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        raise TilesError(f"unknown layers {unknown or chosen}; choose among {', '.join(known)}")
    if output.compress not in COMPRESSIONS:
        raise TilesError(f"unknown compression {output.compress!r}; use one of {', '.join(COMPRESSIONS)}")
    if output.jobs < 1:
        raise TilesError("--jobs must be at least 1")
    if tiling.partition_rows < 1:
        raise TilesError("--partition-rows must be at least 1 (buildings held at once)")
    bbox = tiling.bbox
    if bbox is not None and not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        raise TilesError("bbox must be west,south,east,north with west < east and south < north (degrees)")
    return [layer for layer in known if layer in chosen]


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


@dataclass(frozen=True)
class _Context:
    """What every tile of one build shares."""

    source: BuildingSource
    height_anomaly: float
    dem_path: str | None
    compress: str
    executor: Executor | None


def build_tileset(
    engine: Engine,
    settings: Settings,
    name: str,
    tiling: TilingOptions | None = None,
    output: OutputOptions | None = None,
    *,
    executor: Executor | None = None,
    **overrides: Any,
) -> TileBuildReport:
    """Build (or incrementally rebuild) tileset ``name`` from the live rows of the database.

    ``tiling`` says what to tile (layers, bbox, capacities, implicit tiling: :class:`TilingOptions`),
    ``output`` where and how (:class:`OutputOptions`); keyword ``overrides`` replace single fields of either
    (``layers=["buildings"]``, ``compress="meshopt"``). A build of more than ``partition_rows`` counted rows
    (buildings) is streamed partition by partition (:mod:`tiles.stream`) into the same tileset, so that its
    memory follows the partition, not the province. ``jobs`` > 1 renders tiles in a process pool; an
    ``executor`` (any :class:`concurrent.futures.Executor`, e.g. a Dask client's) takes precedence.
    ``implicit`` writes the same tiles as implicit quadtrees (see :mod:`tiles.implicit`). Raises
    :class:`TilesError` on bad arguments or when there is nothing to build.
    """
    t0 = time.perf_counter()
    tiling, output = with_overrides(tiling, output, overrides)
    chosen = _check(name, tiling, output)
    content = [classes.get(layer) for layer in chosen if layer != classes.TERRAIN]
    with_terrain = classes.TERRAIN in chosen
    with _render_pool(executor, output.jobs) as pool:
        out_dir = (output.out or settings.data_path / "tiles" / name).expanduser().resolve()
        zeta = settings.height_anomaly
        report = TileBuildReport(name=name, path=str(out_dir), layers=chosen, compress=output.compress)
        with engine.connect() as conn:
            # One snapshot for everything: the workers import it to read their buildings.
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            source = BuildingSource(connect_url(engine.url.render_as_string(hide_password=False)), snapshot)
            stream = stream_plan(conn, content, tiling, zeta)
            data = {c.layer: c.read(conn, tiling.bbox) for c in content} if stream is None else {}
            dem = live_dem(conn) if (with_terrain or any(c.needs_dem for c in content)) else None
            report.timings["read"] = time.perf_counter() - t0
            total = sum(len(cols) for cols in data.values()) if stream is None else stream.total
            if with_terrain and dem is None and total == 0:
                raise TilesError("no DEM was ingested (cim ingest raster --kind dem) and there are no features to tile")
            if not with_terrain and total == 0:
                raise TilesError(
                    f"no live features in the layers {', '.join(chosen)} (inside the bbox): nothing to tile"
                )
            out_dir.mkdir(parents=True, exist_ok=True)
            writer = IncrementalWriter(out_dir)
            root_tile: dict[str, Any] | None = None
            if total:
                ctx = _Context(source, zeta, str(dem.path) if dem is not None else None, output.compress, pool)
                build = _Build(report, writer, ctx, tiling)
                if stream is None:
                    root, _, jobs = _part_jobs(build, {k: v for k, v in data.items() if len(v)})
                else:
                    root, jobs = stream.coarse, _streamed_jobs(build, conn, stream)
                    report.partitions = sum(1 for node in root.walk() if not node.children)
                root_tile = _features(build, root, jobs)
            conn.rollback()
        report.timings["tiles"] = time.perf_counter() - t0 - report.timings["read"]
        options: dict[str, Any] = {"compress": output.compress, "implicit": tiling.implicit}
        if with_terrain and dem is not None:
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
                "schema": tileset_schema() if tiling.implicit else classes.schema(),
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


@dataclass
class _Attachment:
    """Rows of class ``layer`` that go with a row of their owner class (and replace it at leaves)."""

    layer: str
    owner: str
    attached: NDArray[np.bool_]
    owner_row: NDArray[np.int64]
    members: dict[int, list[int]]


def _attachments(data: dict[str, Columns], points: dict[str, list[NDArray[np.float64]]]) -> list[_Attachment]:
    """Attach the rows of classes with an owner to their owner's rows; the owner's weights grow by theirs."""
    out: list[_Attachment] = []
    for layer in data:
        c = classes.get(layer)
        if c.owner is None or c.owner not in data:
            continue
        owner_ids = data[c.owner]["id"]  # sorted: every read orders by id
        ref = np.asarray(data[layer][c.owner_column], dtype=np.int64)
        pos = np.clip(np.searchsorted(owner_ids, ref), 0, len(owner_ids) - 1)
        attached = owner_ids[pos] == ref
        np.add.at(points[c.owner][2], pos[attached], points[layer][2][attached])
        members: dict[int, list[int]] = {}
        for i in np.nonzero(attached)[0]:
            members.setdefault(int(pos[i]), []).append(int(i))
        out.append(_Attachment(layer, c.owner, attached, pos, members))
    return out


def _top(values: NDArray[np.float64], k: int) -> NDArray[np.bool_]:
    """A mask of the ``k`` largest ``values``, ties to the first: what a stable sort by decreasing value would
    take, found by partition (a parent holds hundreds of thousands of points, it keeps 250)."""
    keep = np.ones(len(values), bool)
    if len(values) <= k:
        return keep
    kth = np.partition(-values, k - 1)[k - 1]
    keep = -values < kth
    ties = np.flatnonzero(-values == kth)[: k - int(keep.sum())]
    keep[ties] = True
    return keep


@dataclass
class _Build:
    """What the parts of one build share and accumulate: the report, the writer, feature counts per layer."""

    report: TileBuildReport
    writer: IncrementalWriter
    ctx: _Context
    tiling: TilingOptions
    counts: dict[str, int] = field(default_factory=dict)


def _features(build: _Build, root: partition.Node, parts: Iterator[TileJob]) -> dict[str, Any]:
    """Render every tile job of ``parts`` (here or on the executor), then assemble the tree under ``root``
    (complete once ``parts`` is exhausted) into the root tile."""
    ctx, tiling = build.ctx, build.tiling
    results: dict[str, TileResult] = {}

    def _store(res: TileResult) -> None:
        for c in res.contents:
            if tiling.implicit:
                continue  # written by tiles.implicit under implicit addresses
            build.writer.put(f"content/{res.key}-{c.layer}.glb", c.glb, c.sha256)
            c.glb = b""
        results[res.key] = res

    # build_tileset's _render_pool owns the executor (or None: render here) and closes connections after.
    if ctx.executor is None:
        for job in parts:
            _store(render_tile(job))
    else:
        # A bounded window of tiles in flight: jobs are made, and results written, as the workers go (and
        # while the next partition of a streamed build is read).
        window: deque[Future[TileResult]] = deque()
        for job in parts:
            window.append(ctx.executor.submit(render_tile, job))
            if len(window) >= IN_FLIGHT:
                _store(window.popleft().result())
        while window:
            _store(window.popleft().result())
    counts = dict(build.counts)
    for node in root.walk():
        if not node.children:
            res = results.get(node.key if node.z >= 0 else "root")
            if res is not None:
                for layer, v in res.counts.items():
                    counts[layer] = counts.get(layer, 0) + v
    report = build.report
    report.features = counts
    report.tiles = len(results)
    tile = _tile_json(root, results, np.eye(4))
    if tile is None:
        raise TilesError("no feature produced any geometry (empty footprints or meshes?)")
    region = tile["boundingVolume"]["region"]
    if tiling.implicit:
        tile = implicit_root(root, results, build.writer.put, _cell_error, tiling.subtree_levels)
    report.bounds = [math.degrees(v) for v in region[:4]]
    report.min_height, report.max_height = region[4] - ctx.height_anomaly, region[5] - ctx.height_anomaly
    return tile


def _part_jobs(
    build: _Build, data: dict[str, Columns], cell: partition.Node | None = None
) -> tuple[partition.Node, dict[str, Columns], Iterator[TileJob]]:
    """The quadtree of ``data`` (rooted at ``cell``, a partition of a streamed build, else the smallest cell
    holding every point), the rows each in-parents class offers the tiles above (its top
    ``parent_capacity`` of the part) and one job per tile, made as the renderers take them."""
    ctx, tiling = build.ctx, build.tiling
    layers = list(data)
    points = {
        layer: [np.asarray(a) for a in classes.get(layer).points(data[layer], ctx.height_anomaly)] for layer in layers
    }
    points = {layer: [p[0], p[1], np.array(p[2], dtype=np.float64)] for layer, p in points.items()}
    links = _attachments(data, points)
    replaced = {layer: np.zeros(len(data[layer]), bool) for layer in layers}
    free = {layer: np.ones(len(data[layer]), bool) for layer in layers}
    for link in links:
        replaced[link.owner][list(link.members)] = True
        free[link.layer] = ~link.attached
    rows = {layer: np.nonzero(free[layer])[0] for layer in layers}
    lon = np.concatenate([points[layer][0][rows[layer]] for layer in layers])
    lat = np.concatenate([points[layer][1][rows[layer]] for layer in layers])
    weight = np.concatenate([points[layer][2][rows[layer]] for layer in layers])
    kind = np.concatenate([np.full(len(rows[layer]), i, np.int16) for i, layer in enumerate(layers)])
    ref = np.concatenate([rows[layer] for layer in layers]).astype(np.int64)
    in_parents = {
        layer: classes.get(layer).importance(data[layer]) for layer in layers if classes.get(layer).in_parents
    }
    offsets = dict(zip(layers, np.cumsum([0] + [len(rows[layer]) for layer in layers]).tolist(), strict=False))

    def parent_rows(idx: NDArray[np.int64]) -> NDArray[np.int64]:
        """What a parent tile draws of its points: the top ``parent_capacity`` of each in-parents class."""
        kept = []
        for layer, importance in in_parents.items():
            i = layers.index(layer)
            pos = np.sort(idx[kind[idx] == i])
            kept.append(pos[_top(importance[ref[pos]], tiling.parent_capacity)])
        return np.sort(np.concatenate(kept)) if kept else idx[:0]

    offered: dict[str, Columns] = {}
    if cell is not None:
        top = parent_rows(np.arange(len(ref), dtype=np.int64))
        offered = {layer: data[layer].take(np.sort(ref[top[kind[top] == layers.index(layer)]])) for layer in in_parents}
    root = partition.quadtree(lon, lat, weight, tiling.leaf_capacity, parent_rows, root=cell)
    del lon, lat, weight
    zeta, compress = ctx.height_anomaly, ctx.compress
    owners = {link.owner for link in links}
    for layer in layers:
        build.counts[layer] = build.counts.get(layer, 0) + int(replaced[layer].sum())

    def jobs() -> Iterator[TileJob]:
        """Each node lets go of its points once shipped."""
        for node in root.walk():
            r = ref[node.idx]
            key = node.key if node.z >= 0 else "root"
            here = {layer: r[(node.idx >= offsets[layer]) & (node.idx < offsets[layer] + len(rows[layer]))]
                    for layer in layers}  # fmt: skip
            node.idx = node.idx[:0]
            if node.children:
                parts = {
                    layer: classes.get(layer).ship(data[layer].take(np.sort(here[layer])))
                    for layer in in_parents
                    if len(here[layer])
                }
                if parts:
                    yield TileJob(key, parts, ctx.source, True, None, zeta, compress)
                continue
            for link in links:
                owned = here[link.owner][replaced[link.owner][here[link.owner]]]
                extra = [j for o in owned for j in link.members[int(o)]]
                here[link.layer] = np.sort(np.r_[here[link.layer], np.asarray(extra, np.int64)]).astype(np.int64)
            for layer in layers:
                if layer in owners:
                    here[layer] = here[layer][~replaced[layer][here[layer]]]
            parts = {k: classes.get(k).ship(data[k].take(np.sort(i))) for k, i in here.items() if len(i)}
            yield TileJob(key, parts, ctx.source, False, ctx.dem_path, zeta, compress)

    return root, offered, jobs()


def _streamed_jobs(build: _Build, conn: Connection, stream: Stream) -> Iterator[TileJob]:
    """The tile jobs of a streamed build: partition by partition (each read, tiled into its cell of the
    coarse tree and let go), each inner node of the coarse tree after its children, drawing the top
    ``parent_capacity`` of what they offer (the top of a union is within the union of the tops)."""
    ctx, k = build.ctx, build.tiling.parent_capacity

    def visit(node: partition.Node) -> Generator[TileJob, None, dict[str, Columns]]:
        if not node.children:
            data = partition_data(conn, stream, node, ctx.height_anomaly)
            node.idx = node.idx[:0]
            if not data:
                return {}
            _, offered, jobs = _part_jobs(build, data, node)
            yield from jobs
            return offered
        offers: list[dict[str, Columns]] = []
        for child in node.children:
            offers.append((yield from visit(child)))
        node.idx = node.idx[:0]
        merged: dict[str, Columns] = {}
        for layer in [c.layer for c in classes.registered() if any(c.layer in o for o in offers)]:
            cols = [o[layer] for o in offers if layer in o]
            union = functools.reduce(Columns.concat, cols[1:], cols[0])
            union = union.take(np.argsort(np.asarray(union["id"]), kind="stable"))
            merged[layer] = union.take(np.flatnonzero(_top(classes.get(layer).importance(union), k)))
        parts = {layer: classes.get(layer).ship(cols) for layer, cols in merged.items()}
        if parts:
            key = node.key if node.z >= 0 else "root"
            yield TileJob(key, parts, ctx.source, True, None, ctx.height_anomaly, ctx.compress)
        return merged

    yield from visit(stream.coarse)


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
        "feature_count": sum(report.features.values()),
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
                text(f"UPDATE tileset SET bounds = ST_MakeEnvelope(:w, :s, :e, :n, {CGCS2000}) WHERE name = :name"),
                {"w": bounds[0], "s": bounds[1], "e": bounds[2], "n": bounds[3], "name": report.name},
            )
