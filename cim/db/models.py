"""The database schema as SQLAlchemy 2.0 / GeoAlchemy2 models.

The schema itself is created by the Alembic migrations in ``cim/db/migrations`` (never by ``create_all``
in production paths); these models describe it for queries and are checked against the migrations by a test.

Frames: 2D / 2.5D geometry in EPSG:4490 (lon/lat degrees, heights in metres of normal height, 1985 datum);
3D meshes in EPSG:4479 (CGCS2000 geocentric metres). Rows with validity (``valid_from``/``valid_to``) keep
history: the live row has ``valid_to IS NULL``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cim.crs import CGCS2000, CGCS2000_GEOCENTRIC

SRID_2D = CGCS2000  # the names models use for cim.crs.CGCS2000 and CGCS2000_GEOCENTRIC
SRID_3D = CGCS2000_GEOCENTRIC

ROLES = ("viewer", "planner", "designer", "reviewer", "archivist", "admin", "sensor")
SAFETY_CLASSES = ("A", "B", "C", "D")


def _geom(kind: str, srid: int = SRID_2D) -> Geometry:
    # Spatial indexes are created explicitly by the migrations (GiST), so GeoAlchemy2 must not add its own.
    return Geometry(geometry_type=kind, srid=srid, spatial_index=False)


def _now() -> Any:
    return func.now()


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, list[Any]: JSONB}


class Dataset(Base):
    """Every ingested source: IFC model, vector layer, raster; one row per version of a source."""

    __tablename__ = "dataset"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # ifc | vector | raster
    layer: Mapped[str | None] = mapped_column(String(32))  # buildings | facilities | parcels | dem | …
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    crs_in: Mapped[str | None] = mapped_column(Text)
    georef_level: Mapped[int | None] = mapped_column(SmallInteger)  # LoGeoRef 20/30/40/50 for IFC
    schema_name: Mapped[str | None] = mapped_column(String(32))  # IFC2X3, IFC4, IFC4X3_ADD2, GPKG…
    model_key: Mapped[str | None] = mapped_column(Text, index=True)  # IfcProject GlobalId, layer key…
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(String(16), default="loaded", server_default="loaded")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    extent: Mapped[Any] = mapped_column(_geom("POLYGON"), nullable=True)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("status IN ('loading','loaded','superseded','failed')", name="dataset_status"),)


class District(Base):
    """Administrative areas (province, city, district, street) with population."""

    __tablename__ = "district"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str | None] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(String(32))
    population: Mapped[int | None] = mapped_column(BigInteger)
    built_up_area_km2: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(_geom("MULTIPOLYGON"))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"), index=True)


class Building(Base):
    """A building or IFC 4.3 facility (bridge, road…): footprint, heights, use, safety class."""

    __tablename__ = "building"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    footprint: Mapped[Any] = mapped_column(_geom("MULTIPOLYGON"))
    base_height: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")  # normal height, m
    height: Mapped[float] = mapped_column(Float)  # metres above base
    storeys: Mapped[int | None] = mapped_column(SmallInteger)
    gross_floor_area: Mapped[float | None] = mapped_column(Float)  # m²
    use: Mapped[str | None] = mapped_column(String(32))
    year_built: Mapped[int | None] = mapped_column(SmallInteger)
    structure: Mapped[str | None] = mapped_column(String(32))
    safety_class: Mapped[str | None] = mapped_column(String(1))
    cim_level: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    facility_type: Mapped[str | None] = mapped_column(String(32))  # IfcBuilding, IfcBridge, IfcRoad…
    ifc_global_id: Mapped[str | None] = mapped_column(String(22))
    district_code: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(Text)  # feature id in the source
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"), index=True)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("safety_class IS NULL OR safety_class IN ('A','B','C','D')", name="building_safety_class"),
        CheckConstraint("height >= 0", name="building_height_nonnegative"),
        CheckConstraint("cim_level BETWEEN 1 AND 7", name="building_cim_level"),
    )


class Element(Base):
    """An IFC product with a body representation: attributes, properties and its triangle mesh.

    ``mesh`` is a TIN in geocentric CGCS2000 (EPSG:4479): standard PostGIS, and read fast by the tile
    builder because every triangle has the same WKB size.
    """

    __tablename__ = "element"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    global_id: Mapped[str] = mapped_column(String(22), index=True)
    ifc_class: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    type_name: Mapped[str | None] = mapped_column(Text)
    storey: Mapped[str | None] = mapped_column(Text)
    material: Mapped[str | None] = mapped_column(Text)
    color: Mapped[list[Any] | None] = mapped_column()  # [r, g, b, a], 0..1
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    mesh: Mapped[Any] = mapped_column(_geom("TINZ", SRID_3D), nullable=True)
    triangle_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    location: Mapped[Any] = mapped_column(_geom("POINTZ"), nullable=True)  # centre, normal height
    extent: Mapped[Any] = mapped_column(_geom("POLYGON"), nullable=True)  # 2D bbox
    min_height: Mapped[float | None] = mapped_column(Float)
    max_height: Mapped[float | None] = mapped_column(Float)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"), index=True)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


ELEMENT_ATTRIBUTES = ("global_id", "ifc_class", "name", "type_name", "storey", "material")
"""The columns of :class:`Element` that describe it (IFC attributes), in the order the API lists them."""


class Facility(Base):
    """A municipal facility: pipe, manhole, hydrant, lamp, road, bridge, park, shelter, fire station, school…"""

    __tablename__ = "facility"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(_geom("GEOMETRY"))
    diameter_mm: Mapped[float | None] = mapped_column(Float)
    depth_m: Mapped[float | None] = mapped_column(Float)  # burial depth to the pipe axis / top
    invert_start_m: Mapped[float | None] = mapped_column(Float)  # normal heights
    invert_end_m: Mapped[float | None] = mapped_column(Float)
    material: Mapped[str | None] = mapped_column(Text)
    pressure_class: Mapped[str | None] = mapped_column(String(16))
    width_m: Mapped[float | None] = mapped_column(Float)
    road_class: Mapped[str | None] = mapped_column(String(32))
    capacity: Mapped[float | None] = mapped_column(Float)  # people (shelter), pupils (school)…
    area_m2: Mapped[float | None] = mapped_column(Float)
    district_code: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"), index=True)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class _PlanningArea:
    """Columns shared by parcels and planning zones: an outline and the limits a BIM pre-review checks.

    ``sort_order`` keeps the migrations' column order: the class's own columns stand before ``geom``
    (``sort_order=-1``) or after it (default).
    """

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-2)
    code: Mapped[str | None] = mapped_column(String(64), index=True, sort_order=-2)
    name: Mapped[str | None] = mapped_column(Text, sort_order=-2)
    geom: Mapped[Any] = mapped_column(_geom("MULTIPOLYGON"), sort_order=-1)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}", sort_order=1)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="RESTRICT"), index=True, sort_order=1)
    max_height: Mapped[float | None] = mapped_column(Float, sort_order=1)  # metres
    max_far: Mapped[float | None] = mapped_column(Float, sort_order=1)  # floor-area ratio
    max_density: Mapped[float | None] = mapped_column(Float, sort_order=1)  # building coverage, 0..1
    min_green_ratio: Mapped[float | None] = mapped_column(Float, sort_order=1)  # 0..1
    setback_m: Mapped[float | None] = mapped_column(Float, sort_order=1)


class Parcel(_PlanningArea, Base):
    """A land parcel (地块) with its planning limits."""

    __tablename__ = "parcel"

    land_use: Mapped[str | None] = mapped_column(String(32), sort_order=-1)
    district_code: Mapped[str | None] = mapped_column(String(32))


class PlanningZone(_PlanningArea, Base):
    """A regulatory planning zone (控规单元 / height-control zone) with its limits."""

    __tablename__ = "planning_zone"

    zone_type: Mapped[str | None] = mapped_column(String(32), sort_order=-1)


class Tileset(Base):
    """A built 3D Tiles tileset (or terrain layer) and where its files are."""

    __tablename__ = "tileset"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="3dtiles", server_default="3dtiles")
    path: Mapped[str] = mapped_column(Text)
    layers: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    bounds: Mapped[Any] = mapped_column(_geom("POLYGON"), nullable=True)
    min_height: Mapped[float | None] = mapped_column(Float)
    max_height: Mapped[float | None] = mapped_column(Float)
    tile_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    feature_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    status: Mapped[str] = mapped_column(String(16), default="ready", server_default="ready")
    built_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Review(Base):
    """A BIM pre-review of an uploaded IFC model, with its report."""

    __tablename__ = "review"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    file_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # queued | running | reviewed | error | approved | …
    passed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    report: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    parcel_id: Mapped[int | None] = mapped_column(ForeignKey("parcel.id", ondelete="SET NULL"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id", ondelete="SET NULL"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # 0002_review: the lifecycle of a review (upload → run → reviewer's decision → ingest)
    path: Mapped[str | None] = mapped_column(Text)  # <data_dir>/reviews/<id>/<file_name>
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    parcel_ref: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")  # IDS files, checks
    verdict: Mapped[str | None] = mapped_column(String(8))  # pass | fail
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(16))  # approve | reject
    decision_comment: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    approval: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")  # ingest + tiles result

    __table_args__ = (
        CheckConstraint(
            "status IN ('queued','running','reviewed','passed','failed','error','approving','approved',"
            "'approval_failed','rejected')",
            name="review_status",
        ),
        CheckConstraint("verdict IS NULL OR verdict IN ('pass','fail')", name="review_verdict"),
        CheckConstraint("decision IS NULL OR decision IN ('approve','reject')", name="review_decision"),
    )


class ModelVersion(Base):
    """An archived as-built model version (one OCFL version of the model's object), or a deletion tombstone.

    Digests are hex: ``sha512`` (the OCFL content address), ``sha256`` (OCFL fixity) and ``sm3`` (GB/T 32905,
    kept here and in the ledger only, since OCFL fixity takes registered algorithms).
    """

    __tablename__ = "model_version"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_key: Mapped[str] = mapped_column(Text, index=True)
    version: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str | None] = mapped_column(Text)
    storage_key: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    author: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id", ondelete="SET NULL"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    kind: Mapped[str] = mapped_column(String(16), default="version", server_default="version")
    object_id: Mapped[str | None] = mapped_column(Text)
    sha512: Mapped[str | None] = mapped_column(String(128))
    sm3: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str | None] = mapped_column(String(64))
    review_id: Mapped[int | None] = mapped_column(ForeignKey("review.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    ledger_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("model_key", "version", name="model_version_key_version"),
        CheckConstraint("kind IN ('version','tombstone')", name="model_version_kind"),
    )


class ApiKey(Base):
    """An API key: only a slow hash is stored; ``prefix`` finds the row without scanning hashes."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "role IN ('viewer','planner','designer','reviewer','archivist','admin','sensor')", name="api_key_role"
        ),
    )


class AuditLog(Base):
    """Every write through the API or the command line: who, what, when, outcome."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    actor: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | failed
    client: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class Job(Base):
    """An asynchronous job started through the API (ingest an upload, rebuild tiles…)."""

    __tablename__ = "job"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("status IN ('queued','running','succeeded','failed')", name="job_status"),)


class AnalysisRun(Base):
    """One run of a CIM+ analysis: inputs, parameters, time and software version."""

    __tablename__ = "analysis_run"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # health-check | flood | gas-proximity | …
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    software_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="succeeded", server_default="succeeded")
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AnalysisResult(Base):
    """One value (indicator per district, flooded area, affected building…) of an analysis run."""

    __tablename__ = "analysis_result"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_run.id", ondelete="CASCADE"), index=True)
    indicator: Mapped[str] = mapped_column(String(64), index=True)
    district_code: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(32))
    geom: Mapped[Any] = mapped_column(_geom("GEOMETRY"), nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class ArchiveObject(Base):
    """One archived model: its OCFL object (id and path in the storage root) and its current head version."""

    __tablename__ = "archive_object"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_key: Mapped[str] = mapped_column(Text, unique=True)
    object_id: Mapped[str] = mapped_column(Text, unique=True)
    object_path: Mapped[str] = mapped_column(Text)
    head_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ArchiveLedger(Base):
    """The append-only ledger: entry ``seq`` has ``entry_hash = SM3(prev_hash ‖ canonical JSON of the entry)``."""

    __tablename__ = "archive_ledger"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # put | get | delete | decision | audit
    model_key: Mapped[str | None] = mapped_column(Text, index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    audit_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (CheckConstraint("kind IN ('put','get','delete','decision','audit')", name="archive_ledger_kind"),)


class ArchiveLedgerQueue(Base):
    """Audit-log rows waiting to be chained into the ledger (filled by a trigger on ``audit_log``)."""

    __tablename__ = "archive_ledger_queue"

    audit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ArchiveLedgerRoot(Base):
    """The Merkle root (SM3) of one UTC day's ledger entries, kept once the day is over."""

    __tablename__ = "archive_ledger_root"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    root: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


SPATIAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "dataset": ("extent",),
    "district": ("geom",),
    "building": ("footprint",),
    "element": ("mesh", "location", "extent"),
    "facility": ("geom",),
    "parcel": ("geom",),
    "planning_zone": ("geom",),
    "tileset": ("bounds",),
    "analysis_result": ("geom",),
}
"""Every geometry column, each with a GiST index created by the migrations."""


# -- IoT sensing (OGC SensorThings API 1.1 entities, alarms) ------------------------------------------------------
# Geometries in EPSG:4490 (lon/lat degrees); the SensorThings JSON carries them as GeoJSON in the same order.


class _StaEntity:
    """Columns every SensorThings entity but the Observation starts with: its id, name and description."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-2)
    name: Mapped[str] = mapped_column(Text, sort_order=-2)
    description: Mapped[str] = mapped_column(Text, default="", server_default="", sort_order=-2)


class StaThing(_StaEntity, Base):
    """A SensorThings Thing; may stand for a CIM building or facility (its Location is then that geometry)."""

    __tablename__ = "sta_thing"

    properties: Mapped[dict[str, Any] | None] = mapped_column()
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id", ondelete="SET NULL"), index=True)


class _StaPlace(_StaEntity):
    """A Location or FeatureOfInterest: its GeoJSON (the class's own column) between ``encoding_type`` and
    the geometry it gives in EPSG:4490, then ``properties``."""

    encoding_type: Mapped[str] = mapped_column(Text, default="application/geo+json", sort_order=-1)
    geom: Mapped[Any] = mapped_column(_geom("GEOMETRY"), nullable=True, sort_order=1)
    properties: Mapped[dict[str, Any] | None] = mapped_column(sort_order=1)


class StaLocation(_StaPlace, Base):
    """A SensorThings Location: the GeoJSON as given and its geometry in EPSG:4490."""

    __tablename__ = "sta_location"

    location: Mapped[dict[str, Any]] = mapped_column()


class StaThingLocation(Base):
    """The current Location(s) of a Thing."""

    __tablename__ = "sta_thing_location"

    thing_id: Mapped[int] = mapped_column(ForeignKey("sta_thing.id", ondelete="CASCADE"), primary_key=True)
    location_id: Mapped[int] = mapped_column(
        ForeignKey("sta_location.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class StaHistoricalLocation(Base):
    """When a Thing was (moved) at its Location(s)."""

    __tablename__ = "sta_historical_location"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    thing_id: Mapped[int] = mapped_column(ForeignKey("sta_thing.id", ondelete="CASCADE"), index=True)


class StaHistoricalLocationLocation(Base):
    """The Locations of one HistoricalLocation."""

    __tablename__ = "sta_historical_location_location"

    historical_location_id: Mapped[int] = mapped_column(
        ForeignKey("sta_historical_location.id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[int] = mapped_column(
        ForeignKey("sta_location.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class StaSensor(_StaEntity, Base):
    """A SensorThings Sensor (the instrument and its metadata)."""

    __tablename__ = "sta_sensor"

    encoding_type: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[str] = mapped_column("metadata", Text)
    properties: Mapped[dict[str, Any] | None] = mapped_column()


class StaObservedProperty(Base):
    """A SensorThings ObservedProperty (what is observed: water level, CH4 concentration…)."""

    __tablename__ = "sta_observed_property"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    definition: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    properties: Mapped[dict[str, Any] | None] = mapped_column()


class StaDatastream(_StaEntity, Base):
    """A SensorThings Datastream; ``retention_days`` bounds how long its observations are kept."""

    __tablename__ = "sta_datastream"

    observation_type: Mapped[str] = mapped_column(Text)
    unit_of_measurement: Mapped[dict[str, Any]] = mapped_column()
    properties: Mapped[dict[str, Any] | None] = mapped_column()
    phenomenon_time_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    phenomenon_time_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result_time_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result_time_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    retention_days: Mapped[int | None] = mapped_column(Integer)
    thing_id: Mapped[int] = mapped_column(ForeignKey("sta_thing.id", ondelete="CASCADE"), index=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sta_sensor.id", ondelete="CASCADE"), index=True)
    observed_property_id: Mapped[int] = mapped_column(
        ForeignKey("sta_observed_property.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (CheckConstraint("retention_days IS NULL OR retention_days > 0", name="sta_datastream_retention"),)


class StaFeatureOfInterest(_StaPlace, Base):
    """A SensorThings FeatureOfInterest; ``location_id`` marks one generated from a Thing's Location."""

    __tablename__ = "sta_feature_of_interest"

    feature: Mapped[dict[str, Any]] = mapped_column()
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("sta_location.id", ondelete="SET NULL"), unique=True, sort_order=2
    )


class StaObservation(Base):
    """A SensorThings Observation, in a table partitioned by month of ``phenomenon_time``.

    Numeric results are in ``result_number`` (what thresholds and the latest-value overlay read); every
    result is also kept as JSON in ``result`` so strings, booleans and objects round-trip exactly. One
    observation per datastream and phenomenon time: that makes redelivered MQTT messages idempotent.
    """

    __tablename__ = "sta_observation"

    id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, server_default=text("nextval('sta_observation_id_seq')"), autoincrement=False
    )
    phenomenon_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    phenomenon_time_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[Any] = mapped_column(JSONB, nullable=True)
    result_number: Mapped[float | None] = mapped_column(Float)
    result_quality: Mapped[Any] = mapped_column(JSONB, nullable=True)
    valid_time_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    valid_time_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    parameters: Mapped[dict[str, Any] | None] = mapped_column()
    # No foreign keys (migration 0006): each batch locks its datastreams and features of interest once
    # (cim.db.sensing.lock_datastreams, existing_features); delete triggers on both tables cascade.
    datastream_id: Mapped[int] = mapped_column(BigInteger)
    feature_of_interest_id: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("datastream_id", "phenomenon_time", name="sta_observation_datastream_time"),
        Index("sta_observation_phenomenon_time_brin", "phenomenon_time", postgresql_using="brin"),
        Index("sta_observation_foi", "feature_of_interest_id"),
        {"postgresql_partition_by": "RANGE (phenomenon_time)"},
    )


class StaLatest(Base):
    """The latest observation of each datastream (what live overlays and dashboards read)."""

    __tablename__ = "sta_latest"

    datastream_id: Mapped[int] = mapped_column(ForeignKey("sta_datastream.id", ondelete="CASCADE"), primary_key=True)
    observation_id: Mapped[int] = mapped_column(BigInteger)
    phenomenon_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    result: Mapped[Any] = mapped_column(JSONB, nullable=True)
    result_number: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class SensorAlarmRule(Base):
    """A threshold rule on one datastream or on every datastream of an observed property.

    ``kind``: ``over`` / ``under`` (result against ``threshold``), ``rate`` (absolute change per minute
    over ``threshold``), ``nodata`` (no observation for ``minutes``).
    """

    __tablename__ = "sensor_alarm_rule"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[float | None] = mapped_column(Float)
    minutes: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16), default="warning", server_default="warning")
    datastream_id: Mapped[int | None] = mapped_column(ForeignKey("sta_datastream.id", ondelete="CASCADE"), index=True)
    observed_property_id: Mapped[int | None] = mapped_column(
        ForeignKey("sta_observed_property.id", ondelete="CASCADE"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint("kind IN ('over','under','rate','nodata')", name="sensor_alarm_rule_kind"),
        CheckConstraint("severity IN ('info','warning','critical')", name="sensor_alarm_rule_severity"),
        CheckConstraint("(datastream_id IS NULL) <> (observed_property_id IS NULL)", name="sensor_alarm_rule_target"),
    )


class SensorAlarm(Base):
    """An alarm event: raised by a rule on a datastream, active until cleared (``cleared_at``)."""

    __tablename__ = "sensor_alarm"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("sensor_alarm_rule.id", ondelete="CASCADE"), index=True)
    datastream_id: Mapped[int] = mapped_column(ForeignKey("sta_datastream.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(_geom("GEOMETRY"), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    raised_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id", ondelete="SET NULL"))


SPATIAL_COLUMNS.update(
    {
        "sta_location": ("geom",),
        "sta_feature_of_interest": ("geom",),
        "sensor_alarm": ("geom",),
    }
)
