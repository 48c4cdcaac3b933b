"""Vector ingest: GIS layers (buildings, facilities, parcels, planning zones, districts) into PostGIS.

Read with pyogrio's Arrow stream in batches, transformed to EPSG:4490 with vectorised pyproj (through
:mod:`cim.crs`), repaired and cast with vectorised shapely, and written with binary COPY of EWKB
(:mod:`cim.db.bulk`). One ingest is one transaction: a failure leaves nothing behind. Re-ingesting the same
bytes for the same target is a no-op; a changed file supersedes the previous version of the same target
(buildings and facilities keep their old rows as history).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import pyarrow as pa
import pyogrio
import pyogrio.raw
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, delete, func
from sqlalchemy.exc import DBAPIError

from cim import crs as cimcrs
from cim.db import bulk
from cim.db.bulk import CopyColumn
from cim.db.datasets import (
    LiveDataset,
    file_sha256,
    insert_dataset,
    live_dataset_for_model,
    supersede_dataset,
    update_dataset,
)
from cim.db.models import Parcel, PlanningZone
from cim.dem import live_dem, sample_heights
from cim.errors import CimError, IngestError
from cim.settings import Settings
from cim.vocabulary import FACILITY_KINDS
from cim.zorder import lonlat_order
from ingest import vector_geometry as vg
from ingest import vector_values as vv
from ingest.fields import colliding_field_renames, resolve_mapping, target_of
from ingest.formats import VECTOR_LAYERS, IngestReport
from ingest.pipeline import ordered_map, prefetch
from ingest.vector_source import (
    IngestConfig,
    choose_layer,
    dbf_encoding,
    load_config,
    open_options,
    source_crs,
    with_field_names,
)

LAYERS = VECTOR_LAYERS
"""``--layer`` values → (table, geometry column) (defined with the format registration, :mod:`ingest.formats`)."""

BATCH_SIZE = 32_768
REBUILD_INDEX_FROM = 10_000
"""Loads of at least this many features (and a quarter of the rows already there) drop the table's GiST index
and its foreign keys, and rebuild them after COPY, in the same transaction: building a GiST index in one go is
several times faster than maintaining it row by row, and validating ``dataset_id`` in one join instead of one
trigger call per row halves the server's COPY time. The table (and ``dataset``, referenced by the foreign key)
is locked against other writers and readers meanwhile."""

SPACE_ORDER_FROM = 10_000
"""Rows of a batch from which it is written in space order (see :func:`_in_space_order`)."""
PREPARE_WORKERS = 2
"""Threads preparing and encoding batches at once (shapely, pyproj and Arrow release the GIL)."""

ProgressCallback = Callable[[int, int | None], None]


@dataclass
class VectorIngestReport(IngestReport):
    """What one vector ingest did. ``skipped`` is True when the same bytes were already loaded (no-op)."""

    path: str
    layer: str
    kind: str | None = None
    source_layer: str | None = None
    read: int = 0
    stored: int = 0
    repaired: int = 0
    skipped_empty: int = 0
    skipped_geometry_type: int = 0
    skipped_invalid: int = 0
    converted_to_point: int = 0
    base_heights_from_dem: int = 0
    heights_from_storeys: int = 0
    heights_defaulted: int = 0
    mapping: dict[str, str] = field(default_factory=dict)
    renamed_fields: dict[str, str] = field(default_factory=dict)
    """Source fields kept under another name because theirs was taken (``{original → stored}``)."""

    @property
    def skipped_features(self) -> int:
        """Features read but not stored (empty, of the wrong geometry type, or invalid beyond repair)."""
        return self.skipped_empty + self.skipped_geometry_type + self.skipped_invalid

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``--json`` document of ``cim ingest vector``)."""
        out = super().to_dict()
        out["skipped_features"] = self.skipped_features
        return out


@dataclass
class _Job:
    layer: str
    kind: str | None
    mapping: dict[str, str]
    config: IngestConfig
    source: cimcrs.SourceCrs
    geometry_column: str
    fid_column: str | None
    attribute_columns: list[str]
    field_names: tuple[list[str], list[str]]
    """The source's field names and the names they are read under (see :func:`colliding_field_renames`)."""
    dem_path: Path | None
    report: VectorIngestReport
    bounds: list[float] = field(default_factory=lambda: [np.inf, np.inf, -np.inf, -np.inf])


class PartialIngestError(IngestError):
    """One file of a multi-file ingest failed: nothing of it (or of the files after it) was stored; the
    datasets of the files before it were (``stored``: their reports)."""

    def __init__(self, message: str, stored: list[VectorIngestReport]) -> None:
        super().__init__(message)
        self.stored = stored


class VectorOptions(TypedDict, total=False):
    """The options of :func:`ingest_vector` and :func:`ingest_vectors` besides the target ``layer``.

    ``kind``: a key of :data:`cim.vocabulary.FACILITY_KINDS` (facilities only). ``crs`` overrides the file's
    CRS (any form :func:`cim.crs.parse_crs` accepts); ``where``: an OGR SQL filter on source attributes;
    ``mapping``: ``TARGET → SOURCE`` field overrides; ``config``: an ingest TOML (see :class:`IngestConfig`);
    ``encoding``: the DBF code page of a Shapefile (GBK, GB18030, UTF-8…) when it cannot be detected;
    ``source_layer``: the layer of a multi-layer file; ``progress``: called with (features read so far,
    total or None)."""

    kind: str | None
    crs: str | None
    where: str | None
    mapping: Mapping[str, str] | None
    config: Path | None
    encoding: str | None
    source_layer: str | None
    progress: ProgressCallback | None


def ingest_vector(
    engine: Engine, path: Path, settings: Settings, *, layer: str, **options: Unpack[VectorOptions]
) -> VectorIngestReport:
    """Load one vector layer into the platform database (one transaction) and report what happened.

    ``layer``: buildings | facilities | parcels | planning | districts; the options: :class:`VectorOptions`.
    Geometry is stored in EPSG:4490 (lon/lat degrees); heights in metres.
    """
    return ingest_vectors(engine, [path], settings, layer=layer, **options)[0]


@dataclass
class _Plan:
    """One file of an ingest, opened and checked before any write: its layer, fields, CRS and digest."""

    path: Path
    chosen: str | None
    encoding: str | None
    options: dict[str, str]
    info: dict[str, Any]
    fields: list[str]
    names: list[str]
    renamed: dict[str, str]
    resolved: dict[str, str]
    source: cimcrs.SourceCrs
    sha: str
    model_key: str
    total: int


def _plan(
    path: Path,
    layer: str,
    kind: str | None,
    crs: str | None,
    where: str | None,
    mapping: Mapping[str, str] | None,
    cfg: IngestConfig,
    encoding: str | None,
    source_layer: str | None,
) -> _Plan:
    if not path.exists():
        raise IngestError(f"{path} does not exist")
    chosen = choose_layer(path, source_layer, layer, kind)
    enc = encoding or dbf_encoding(path)
    options = open_options(path)
    try:
        info = pyogrio.read_info(path, layer=chosen, encoding=enc, **options)
    except Exception as exc:
        raise IngestError(f"cannot read {path.name}: {exc}") from exc
    fields = [str(f) for f in info["fields"]]
    renamed = colliding_field_renames(fields, [info.get("fid_column"), info.get("geometry_name")])
    names = [renamed.get(f, f) for f in fields]
    resolved = resolve_mapping(layer, names, {**cfg.mapping, **(mapping or {})}, renamed)
    source = source_crs(info.get("crs"), crs, cfg, path)
    return _Plan(
        path=path,
        chosen=chosen,
        encoding=enc,
        options=options,
        info=info,
        fields=fields,
        names=names,
        renamed=renamed,
        resolved=resolved,
        source=source,
        sha=file_sha256(path),
        model_key="|".join([path.name, chosen or "", layer, kind or "", where or ""]),
        total=int(info.get("features") or -1),
    )


def ingest_vectors(
    engine: Engine, paths: Sequence[Path], settings: Settings, *, layer: str, **options: Unpack[VectorOptions]
) -> list[VectorIngestReport]:
    """Load the same layer from several files (one dataset each) in one transaction; one report per file.

    The options are those of :func:`ingest_vector`, applied to every file. Every file is opened and checked
    (layer, fields, CRS) before anything is written. Each file loads under its own savepoint, so a file that
    fails stores nothing, and neither do the files after it; the files before it are kept and
    :class:`PartialIngestError` (its ``stored``: their reports) says so. A large load drops and rebuilds the
    table's GiST index and foreign keys once for all the files (see :data:`REBUILD_INDEX_FROM`).
    ``progress`` is called with (features read so far, total over all files or None).
    """
    started = time.perf_counter()
    _ = settings  # the data directory is not needed: vector rows live in the database only
    kind, where, progress = options.get("kind"), options.get("where"), options.get("progress")
    if layer not in LAYERS:
        raise IngestError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    if layer == "facilities":
        if kind is None or kind not in FACILITY_KINDS:
            raise IngestError(f"--layer facilities needs --kind, one of: {', '.join(FACILITY_KINDS)}")
    elif kind is not None:
        raise IngestError("--kind applies to --layer facilities only")
    if not paths:
        raise IngestError("no files to ingest")
    cfg = load_config(options.get("config"))
    crs, mapping, encoding = options.get("crs"), options.get("mapping"), options.get("encoding")
    source_layer = options.get("source_layer")
    plans = [_plan(Path(path), layer, kind, crs, where, mapping, cfg, encoding, source_layer) for path in paths]
    known = all(plan.total >= 0 for plan in plans)
    grand_total = sum(max(plan.total, 0) for plan in plans)
    try:
        reports, failure = _ingest_plans(
            engine, plans, layer, kind, where, cfg, grand_total if known else None, progress
        )
    except CimError:
        raise
    except Exception as exc:  # the bulk-load DDL, or the commit
        raise _ingest_error(
            plans[0].path if len(plans) == 1 else Path(", ".join(p.path.name for p in plans)), exc
        ) from exc
    if failure is not None:
        raise failure
    if len(plans) == 1:
        reports[0].wall_time_s = round(time.perf_counter() - started, 3)
    return reports


def _ingest_plans(
    engine: Engine,
    plans: Sequence[_Plan],
    layer: str,
    kind: str | None,
    where: str | None,
    cfg: IngestConfig,
    grand_total: int | None,
    progress: ProgressCallback | None,
) -> tuple[list[VectorIngestReport], PartialIngestError | None]:
    """The transaction of :func:`ingest_vectors`: the files' reports, and the failure that stopped it (if any)."""
    reports: list[VectorIngestReport] = []
    failure: PartialIngestError | None = None
    with engine.begin() as conn:
        big = _bulk_load(conn, layer, sum(max(plan.total, 0) for plan in plans))
        table, geom_col = LAYERS[layer]
        foreign_keys: list[tuple[str, str]] = []
        if big:
            # The bulk path alters the table and its foreign key to dataset: lock both first thing (dataset
            # first), so that two ingests never each hold a lock the other one needs to upgrade.
            conn.exec_driver_sql(f"LOCK TABLE dataset, {table} IN ACCESS EXCLUSIVE MODE")
        previous = [live_dataset_for_model(conn, plan.model_key, "vector") for plan in plans]
        changed = [prev is None or prev.sha256 != plan.sha for plan, prev in zip(plans, previous, strict=True)]
        if big and not all(changed):  # unchanged files are skipped: is the rest still a bulk load?
            big = _bulk_load(conn, layer, sum(max(p.total, 0) for p, c in zip(plans, changed, strict=True) if c))
        if big:
            foreign_keys = bulk.drop_foreign_keys(conn, table)
            bulk.drop_spatial_index(conn, table, geom_col)
        dem = live_dem(conn) if layer == "buildings" else None
        done = 0
        for plan, prev in zip(plans, previous, strict=True):
            file_started = time.perf_counter()

            def advance(read: int, _total: int | None, offset: int = done) -> None:
                if progress is not None:
                    progress(offset + read, grand_total)

            try:
                with conn.begin_nested():
                    report = _ingest_planned(
                        conn, plan, prev, layer, kind, where, cfg, dem.path if dem is not None else None, advance
                    )
            except Exception as exc:
                error = _ingest_error(plan.path, exc)
                if not any(not r.skipped for r in reports):
                    raise error from exc  # nothing stored: the whole transaction rolls back
                kept = ", ".join(Path(r.path).name for r in reports)
                failure = PartialIngestError(
                    f"{plan.path.name}: {error}; nothing of it or of the files after it was stored (kept: {kept})",
                    reports,
                )
                failure.__cause__ = error
                break
            report.wall_time_s = round(time.perf_counter() - file_started, 3)
            reports.append(report)
            done += max(plan.total, report.read)
        if big:
            bulk.restore_foreign_keys(conn, table, foreign_keys)
            bulk.create_spatial_index(conn, table, geom_col)
    return reports, failure


def _ingest_error(path: Path, exc: Exception) -> CimError:
    """The project error to raise for a failed file (database refusals and reading errors worded for users)."""
    if isinstance(exc, CimError):
        return exc
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        return IngestError(f"{path.name}: the database refused the data ({detail}); nothing was stored")
    if isinstance(exc, pyogrio.errors.DataSourceError | pyogrio.errors.DataLayerError | pyogrio.errors.FieldError):
        return IngestError(f"cannot read {path.name}: {exc}; nothing was stored")
    if isinstance(exc, ValueError | RuntimeError | OSError):
        return IngestError(f"{path.name}: {exc}; nothing was stored")
    raise exc


def _ingest_planned(
    conn: Connection,
    plan: _Plan,
    previous: LiveDataset | None,
    layer: str,
    kind: str | None,
    where: str | None,
    cfg: IngestConfig,
    dem_path: Path | None,
    progress: ProgressCallback | None,
) -> VectorIngestReport:
    """Load one checked file inside the caller's transaction (the bulk-load DDL is the caller's); ``previous``:
    the live dataset of the same target (skipped when its bytes are the same, else superseded), or None."""
    path, chosen, info = plan.path, plan.chosen, plan.info
    report = VectorIngestReport(path=str(path.resolve()), layer=layer, kind=kind, source_layer=chosen)
    report.mapping = plan.resolved
    report.renamed_fields = plan.renamed
    source = plan.source
    report.crs_in = source.key if source.pipeline_to_cgcs2000 is None else source.name
    if previous is not None and previous.sha256 == plan.sha:
        report.dataset_id = int(previous.id)
        report.skipped = True
        return report
    dataset_id = insert_dataset(
        conn,
        name=path.stem if chosen is None or chosen == path.stem else f"{path.stem}:{chosen}",
        kind="vector",
        layer=layer,
        path=str(path.resolve()),
        sha256=plan.sha,
        size_bytes=path.stat().st_size,
        crs_in=report.crs_in,
        schema_name=str(info.get("driver") or "")[:32] or None,
        model_key=plan.model_key,
        status="loading",
        summary={
            "kind": kind,
            "source_layer": chosen,
            "where": where,
            "mapping": plan.resolved,
            "renamed_fields": plan.renamed,
        },
    )
    report.dataset_id = dataset_id
    job = _Job(
        layer=layer,
        kind=kind,
        mapping=plan.resolved,
        config=cfg,
        source=source,
        geometry_column="",
        fid_column=None,
        attribute_columns=[],
        field_names=(plan.fields, plan.names),
        dem_path=dem_path,
        report=report,
    )
    features = plan.total if plan.total > 0 else None
    _load(conn, job, _Source(path, chosen, plan.encoding, plan.options, where, features), dataset_id, progress)
    if previous is not None:
        _retire(conn, layer, int(previous.id))
        report.superseded_dataset_id = int(previous.id)
    _finish_dataset(conn, job, dataset_id)
    return report


@dataclass(frozen=True)
class _Source:
    """Where one ingest reads from: the file, its layer, DBF encoding, GDAL open options and OGR SQL filter."""

    path: Path
    layer: str | None
    encoding: str | None
    open_options: dict[str, str]
    where: str | None
    features: int | None
    """Feature count the driver reports (None when unknown)."""


def _load(conn: Connection, job: _Job, source: _Source, dataset_id: int, progress: ProgressCallback | None) -> None:
    table = LAYERS[job.layer].table
    try:
        stream = pyogrio.raw.open_arrow(
            source.path,
            layer=source.layer,
            encoding=source.encoding,
            where=source.where,
            batch_size=BATCH_SIZE,
            return_fids=True,
            use_pyarrow=True,
            **source.open_options,
        )
    except Exception as exc:
        hint = " (check the --where expression)" if source.where else ""
        raise IngestError(f"cannot read {source.path.name}{hint}: {exc}") from exc
    with stream as (meta, reader):
        reader = with_field_names(reader, *job.field_names)
        job.fid_column = meta.get("fid_column") or None
        batches = _batches(job, reader, meta, dataset_id, source.features, progress)
        if job.layer == "districts":
            for columns in batches:
                job.report.stored += bulk.upsert_columns(conn, table, columns, key="code")
        else:
            # Read in a worker thread and prepare + encode PREPARE_WORKERS batches at once in others (GIL-free
            # shapely/pyproj/Arrow work) while the server digests the previous ones.
            raw = _raw_batches(job, reader, meta)
            chunks = _prepare_parallel(job, raw, dataset_id, source.features, progress)
            prepared = prefetch(chunks, name="vector-ingest-prepare")
            try:
                bulk.copy_encoded(conn, table, prepared)
            finally:
                prepared.close()  # stops the workers before the source closes


def _bulk_load(conn: Connection, layer: str, total: int) -> bool:
    """Whether this load takes the drop-and-rebuild path (see :data:`REBUILD_INDEX_FROM`)."""
    table = LAYERS[layer].table
    return (
        layer in {"buildings", "facilities"}
        and total >= REBUILD_INDEX_FROM
        and total * 4 >= bulk.estimated_rows(conn, table)
    )


_Chunk = tuple[list[str], int, bytes]
_COUNTERS = (
    "skipped_empty",
    "repaired",
    "skipped_geometry_type",
    "skipped_invalid",
    "converted_to_point",
    "base_heights_from_dem",
    "heights_from_storeys",
    "heights_defaulted",
)


def _raw_batches(job: _Job, reader: pa.RecordBatchReader, meta: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    """The source's non-empty record batches (counted as read); sets the job's geometry/attribute columns."""
    _set_columns(job, reader.schema, meta)
    for batch in reader:
        if batch.num_rows:
            job.report.read += batch.num_rows
            yield batch


def _prepare_encoded(job: _Job, batch: pa.RecordBatch, dataset_id: int) -> tuple[_Job, list[_Chunk]]:
    """Prepare and encode one batch on a private copy of the job (safe in a worker thread)."""
    local = replace(
        job,
        report=VectorIngestReport(path=job.report.path, layer=job.layer),
        bounds=[np.inf, np.inf, -np.inf, -np.inf],
    )
    columns = _prepare(local, batch, dataset_id)
    return local, list(bulk.encode_batches([columns])) if columns is not None else []


def _merge(job: _Job, local: _Job, chunks: Sequence[_Chunk]) -> None:
    report = job.report
    for name in _COUNTERS:
        setattr(report, name, getattr(report, name) + getattr(local.report, name))
    report.stored += sum(n for _, n, _ in chunks)
    job.source = local.source
    report.crs_in = local.report.crs_in or report.crs_in
    b, lb = job.bounds, local.bounds
    b[0], b[1], b[2], b[3] = min(b[0], lb[0]), min(b[1], lb[1]), max(b[2], lb[2]), max(b[3], lb[3])


def _prepare_parallel(
    job: _Job,
    batches: Iterator[pa.RecordBatch],
    dataset_id: int,
    total: int | None,
    progress: ProgressCallback | None,
) -> Generator[_Chunk, None, None]:
    """Encoded COPY chunks of the batches, in source order, prepared by PREPARE_WORKERS threads."""

    def prepare(batch: pa.RecordBatch) -> tuple[_Job, list[_Chunk]]:
        return _prepare_encoded(job, batch, dataset_id)

    for local, chunks in ordered_map(prepare, batches, PREPARE_WORKERS, name="vector-ingest-encode"):
        _merge(job, local, chunks)
        if progress is not None:
            progress(job.report.read, total)
        yield from chunks


def _set_columns(job: _Job, schema: pa.Schema, meta: Mapping[str, Any]) -> None:
    geom_name = _geometry_column(schema, meta)
    job.geometry_column = geom_name
    fid = meta.get("fid_column") or None
    reserved = {geom_name, fid, *job.mapping.values()}
    job.attribute_columns = [n for n in schema.names if n not in reserved and n != "OGC_FID"]


def _batches(
    job: _Job,
    reader: pa.RecordBatchReader,
    meta: dict[str, Any],
    dataset_id: int,
    total: int | None,
    progress: ProgressCallback | None,
) -> Iterator[list[CopyColumn]]:
    _set_columns(job, reader.schema, meta)
    for batch in reader:
        if batch.num_rows == 0:
            continue
        job.report.read += batch.num_rows
        columns = _prepare(job, batch, dataset_id)
        if progress is not None:
            progress(job.report.read, total)
        if columns is not None:
            yield columns


def _geometry_column(schema: pa.Schema, meta: Mapping[str, Any]) -> str:
    name = meta.get("geometry_name") or ""
    if name and name in schema.names:
        return str(name)
    for f in schema:
        md = f.metadata or {}
        if md.get(b"ARROW:extension:name") == b"geoarrow.wkb":
            return str(f.name)
    if "wkb_geometry" in schema.names:
        return "wkb_geometry"
    raise IngestError("the source layer has no geometry column")


def _prepare(job: _Job, batch: pa.RecordBatch, dataset_id: int) -> list[CopyColumn] | None:
    report = job.report
    column = batch.column(job.geometry_column)
    # Usual footprints (one-ring 2D polygons): transform the coordinates inside the WKB bytes with NumPy and
    # build shapely objects once, from the result (for the validity check); else the general path.
    simple = vg.simple_polygons(column) if job.layer != "facilities" else None
    if simple is not None:
        coords, job.source = vg.transform_rings(simple.coords, simple.points, job.source)
        simple = simple.with_coords(coords)
        # Strictly convex quadrilaterals (most footprints) are valid: no shapely objects at all (their areas
        # and, for DEM base heights, centroids come from the ring coordinates).
        ring = simple.convex_quads()
        if ring is not None:
            report.crs_in = job.source.key if job.source.pipeline_to_cgcs2000 is None else job.source.name
            return _quad_columns(job, batch, simple, ring, dataset_id)
        geoms, unreadable = vg.read_wkb(simple.wkb().to_numpy(zero_copy_only=False))
        present = vg.drop_empty(geoms)
        report.skipped_invalid += int((~present).sum())
        geoms, unreadable = geoms[present], unreadable[present]
        if not len(geoms):
            return None
    else:
        geoms, unreadable = vg.read_wkb(column.to_numpy(zero_copy_only=False))
        present = vg.drop_empty(geoms)
        report.skipped_invalid += int((~present & unreadable).sum())
        report.skipped_empty += int((~present & ~unreadable).sum())
        geoms, unreadable = geoms[present], unreadable[present]
        if not len(geoms):
            return None
        if shapely.has_z(geoms).any():
            geoms = shapely.force_2d(geoms)
        job.source = vg.to_cgcs2000(geoms, job.source)
    report.crs_in = job.source.key if job.source.pipeline_to_cgcs2000 is None else job.source.name
    if job.layer == "facilities":
        assert job.kind is not None
        kept, mask, repaired, converted = vg.as_kind(geoms, FACILITY_KINDS[job.kind].geometry, unreadable)
        report.converted_to_point += converted
    else:
        kept, mask, repaired = vg.as_multipolygons(geoms, unreadable)
    report.repaired += repaired
    polygonal = job.layer != "facilities" or FACILITY_KINDS[job.kind or ""].geometry == "polygon"
    invalid = vg.beyond_repair(geoms, mask, unreadable, polygonal)
    report.skipped_invalid += int(invalid.sum())
    report.skipped_geometry_type += int((~mask & ~invalid).sum())
    if not len(kept):
        return None
    rows = np.flatnonzero(present)[mask]
    sub = batch.take(pa.array(rows)) if len(rows) != batch.num_rows else batch
    bounds = shapely.bounds(kept)
    _grow_bounds(job, bounds)
    # simple.ewkb(): the same bytes vg.ewkb(kept, multi=True) writes, without going through shapely
    whole = simple is not None and not repaired and mask.all() and present.all()
    footprints = simple.ewkb() if simple is not None and whole else vg.ewkb(kept, multi=polygonal)
    return _in_space_order(_columns(job, sub, kept, footprints, dataset_id), bounds)


def _quad_columns(
    job: _Job, batch: pa.RecordBatch, simple: vg.SimplePolygons, ring: NDArray[np.float64], dataset_id: int
) -> list[CopyColumn]:
    """The columns of a batch of valid quadrilaterals, with bounds and areas from their coordinates."""
    bounds = vg.ring_bounds(ring)
    _grow_bounds(job, bounds)
    area = vg.metric_area_of(vg.ring_areas(ring), bounds) if job.layer == "buildings" else None
    return _in_space_order(_columns(job, batch, None, simple.ewkb(), dataset_id, area=area, ring=ring), bounds)


def _in_space_order(columns: list[CopyColumn], bounds: NDArray[np.float64]) -> list[CopyColumn]:
    """A batch of :data:`SPACE_ORDER_FROM` rows or more in Z-order of the centres of their bounds (small ones
    as they came): the rows of one area then share heap pages, which a tile's or a bbox query's read of
    scattered rows (random source order: 1 row per page) turns into a few pages per batch."""
    if len(bounds) < SPACE_ORDER_FROM:
        return columns
    order = lonlat_order((bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2)
    return bulk.take_rows(columns, order)


def _grow_bounds(job: _Job, xy: NDArray[np.float64]) -> None:
    b = job.bounds
    b[0], b[1] = min(b[0], float(np.nanmin(xy[:, 0]))), min(b[1], float(np.nanmin(xy[:, 1])))
    b[2], b[3] = max(b[2], float(np.nanmax(xy[:, 2]))), max(b[3], float(np.nanmax(xy[:, 3])))


def _columns(
    job: _Job,
    sub: pa.RecordBatch,
    kept: vg.GeomArray | None,
    footprints: pa.Array,
    dataset_id: int,
    *,
    area: NDArray[np.float64] | None = None,
    ring: NDArray[np.float64] | None = None,
) -> list[CopyColumn]:
    """All COPY columns of the kept features: geometry (EWKB), dataset id, the layer's columns, attributes.

    ``kept`` (the geometries, EPSG:4490) may be None for buildings when ``area`` (m²) and ``ring`` (their
    rings as an (n, points, 2) lon/lat array) are given, and for parcels, planning zones and districts."""
    n = sub.num_rows
    common = [
        CopyColumn(LAYERS[job.layer].geometry, "geometry", footprints),
        CopyColumn("dataset_id", "int8", np.asarray(dataset_id, dtype=np.int64)),
    ]
    extra: dict[str, pa.Array] = {}
    if job.layer == "buildings":
        columns = _building_columns(job, sub, kept, extra, area, ring)
    elif job.layer == "facilities":
        assert kept is not None
        columns = _facility_columns(job, sub, kept)
    else:
        columns = _generic_columns(job, sub, kept)
    if job.layer != "districts":
        attrs = vv.attributes_json(sub, job.attribute_columns, extra)
        columns.append(CopyColumn("attributes", "jsonb", attrs))
    elif job.attribute_columns:
        columns.append(CopyColumn("attributes", "jsonb", vv.attributes_json(sub, job.attribute_columns, {})))
    assert all(not isinstance(c.values, np.ndarray) or c.values.ndim == 0 or len(c.values) == n for c in columns)
    return common + columns


def _source(job: _Job, batch: pa.RecordBatch, column: str) -> pa.Array | None:
    name = job.mapping.get(column)
    return batch.column(name) if name is not None else None


def _values(job: _Job, batch: pa.RecordBatch, column: str) -> Any:
    """The converted values of a target column (NULLs when the source has no such field)."""
    col = _source(job, batch, column)
    target = target_of(job.layer, column)
    n = batch.num_rows
    if col is None:
        return pa.nulls(n, pa.string()) if target.kind in {"text", "safety", "use"} else np.full(n, np.nan)
    if target.kind == "text":
        return vv.text(col)
    if target.kind == "safety":
        return vv.safety_class(col)
    if target.kind == "year":
        return vv.year(col)
    if target.kind == "ratio":
        return vv.ratio(col)
    return vv.number(col)


def _int_column(name: str, pgtype: str, values: np.ndarray, lo: float, hi: float) -> CopyColumn:
    bad = ~np.isfinite(values) | (values < lo) | (values > hi)
    return CopyColumn(name, pgtype, np.where(bad, 0, np.rint(np.nan_to_num(values))).astype(np.int64), null=bad)


def _fid_text(job: _Job, batch: pa.RecordBatch, given: pa.Array) -> pa.Array:
    if job.fid_column and job.fid_column in batch.schema.names:
        fids = vv.text(batch.column(job.fid_column))
        return pa.array(pa.chunked_array([given]).to_pandas().fillna(fids.to_pandas()), type=pa.string())
    return given


def _building_columns(
    job: _Job,
    batch: pa.RecordBatch,
    geoms: vg.GeomArray | None,
    extra: dict[str, pa.Array],
    area: NDArray[np.float64] | None = None,
    ring: NDArray[np.float64] | None = None,
) -> list[CopyColumn]:
    report = job.report
    n = batch.num_rows
    height = _values(job, batch, "height")
    storeys = _values(job, batch, "storeys")
    storeys = np.where(storeys > 0, storeys, np.nan)
    from_storeys = ~(height > 0) & np.isfinite(storeys)
    defaulted = ~(height > 0) & ~np.isfinite(storeys)
    height = np.where(
        height > 0, height, np.where(from_storeys, storeys * job.config.storey_height, job.config.default_height)
    )
    report.heights_from_storeys += int(from_storeys.sum())
    report.heights_defaulted += int(defaulted.sum())
    base = _values(job, batch, "base_height")
    if job.dem_path is not None and (~np.isfinite(base)).any():
        need = ~np.isfinite(base)
        if ring is not None:
            lon, lat = vg.ring_centroids(ring[need])
        else:
            assert geoms is not None
            lon, lat = vg.centroids(geoms[need])
        sampled = sample_heights(job.dem_path, lon, lat)
        base[need] = sampled
        report.base_heights_from_dem += int(np.isfinite(sampled).sum())
    base = np.where(np.isfinite(base), base, 0.0)
    if area is None:
        assert geoms is not None
        area = vg.metric_area(geoms)
    gfa = np.where(np.isfinite(storeys), area * storeys, np.nan)
    use_col = _source(job, batch, "use")
    if use_col is not None:
        uses, unknown = vv.building_use(use_col, job.config.uses)
        extra["use_source"] = unknown
    else:
        uses = pa.nulls(n, pa.string())
    source_id = _fid_text(job, batch, _values(job, batch, "source_id"))
    return [
        CopyColumn("name", "text", _values(job, batch, "name")),
        CopyColumn("address", "text", _values(job, batch, "address")),
        CopyColumn("base_height", "float8", base),
        CopyColumn("height", "float8", height),
        _int_column("storeys", "int2", storeys, 0, 32767),
        CopyColumn("gross_floor_area", "float8", gfa),
        CopyColumn("use", "text", uses),
        _int_column("year_built", "int2", _values(job, batch, "year_built"), 1000, 2100),
        CopyColumn("structure", "text", _values(job, batch, "structure")),
        CopyColumn("safety_class", "text", _values(job, batch, "safety_class")),
        CopyColumn("cim_level", "int2", np.asarray(2, dtype=np.int64)),
        CopyColumn("district_code", "text", _values(job, batch, "district_code")),
        CopyColumn("source_id", "text", source_id),
    ]


_FACILITY_FLOATS = ("diameter_mm", "depth_m", "invert_start_m", "invert_end_m", "width_m", "capacity")
_FACILITY_TEXTS = ("name", "material", "pressure_class", "road_class", "district_code")


def _facility_columns(job: _Job, batch: pa.RecordBatch, geoms: vg.GeomArray) -> list[CopyColumn]:
    assert job.kind is not None
    columns = [CopyColumn("kind", "text", job.kind)]
    columns += [CopyColumn(c, "text", _values(job, batch, c)) for c in _FACILITY_TEXTS]
    columns += [CopyColumn(c, "float8", _values(job, batch, c)) for c in _FACILITY_FLOATS]
    area = _values(job, batch, "area_m2")
    if FACILITY_KINDS[job.kind].geometry == "polygon":
        area = np.where(np.isfinite(area), area, vg.metric_area(geoms))
    columns.append(CopyColumn("area_m2", "float8", area))
    columns.append(CopyColumn("source_id", "text", _fid_text(job, batch, _values(job, batch, "source_id"))))
    return columns


def _generic_columns(job: _Job, batch: pa.RecordBatch, geoms: vg.GeomArray | None) -> list[CopyColumn]:
    columns: list[CopyColumn] = []
    for target in _targets(job.layer):
        if target.column == "code" and job.layer == "districts":
            codes = _values(job, batch, "code")
            if codes.null_count:
                raise IngestError(
                    f"{codes.null_count} districts have no code: name the code field with --map code=FIELD"
                )
            columns.append(CopyColumn("code", "text", codes))
            continue
        values = _values(job, batch, target.column)
        if target.column == "population":
            columns.append(_int_column("population", "int8", values, 0, 9e15))
        elif target.column == "built_up_area_km2":
            columns.append(CopyColumn(target.column, "float8", values))
        elif target.kind in {"text", "safety", "use"}:
            if job.layer == "districts" and target.column == "name":
                codes = _values(job, batch, "code")
                values = pa.array(values.to_pandas().fillna(codes.to_pandas()), type=pa.string())
            columns.append(CopyColumn(target.column, "text", values))
        else:
            columns.append(CopyColumn(target.column, "float8", values))
    return columns


def _targets(layer: str) -> Sequence[Any]:
    from ingest.fields import DEFAULT_FIELDS

    return DEFAULT_FIELDS[layer]


def _retire(conn: Connection, layer: str, dataset_id: int) -> None:
    """Retire the previous version of the same target: history rows get ``valid_to``, others go."""
    if layer == "parcels":
        conn.execute(delete(Parcel).where(Parcel.dataset_id == dataset_id))
    elif layer == "planning":
        conn.execute(delete(PlanningZone).where(PlanningZone.dataset_id == dataset_id))
    supersede_dataset(conn, dataset_id)


def _finish_dataset(conn: Connection, job: _Job, dataset_id: int) -> None:
    r = job.report
    counts = {
        "read": r.read,
        "stored": r.stored,
        "repaired": r.repaired,
        "skipped_empty": r.skipped_empty,
        "skipped_geometry_type": r.skipped_geometry_type,
        "skipped_invalid": r.skipped_invalid,
        "converted_to_point": r.converted_to_point,
        "base_heights_from_dem": r.base_heights_from_dem,
    }
    update_dataset(conn, dataset_id, status="loaded", counts=counts, crs_in=r.crs_in)
    w, s, e, n = job.bounds
    if np.isfinite([w, s, e, n]).all():
        extent = func.ST_MakeEnvelope(w, s, max(e, w + 1e-9), max(n, s + 1e-9), cimcrs.CGCS2000)
        update_dataset(conn, dataset_id, extent=extent)
