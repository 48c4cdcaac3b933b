"""Initial schema: datasets, buildings, elements, facilities, planning layers, districts, tilesets,
reviews, archive, API keys, audit log, jobs and analysis results, with GiST indexes on every geometry.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 08:03:16.784854
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cim.crs import CGCS2000_GEOCENTRIC
from cim.db.migrations import ddl

revision: str = "0001"
down_revision: str | None = None

SPATIAL_INDEXES = (
    ("dataset", "extent"),
    ("district", "geom"),
    ("building", "footprint"),
    ("element", "mesh"),
    ("element", "location"),
    ("element", "extent"),
    ("facility", "geom"),
    ("parcel", "geom"),
    ("planning_zone", "geom"),
    ("tileset", "bounds"),
    ("analysis_result", "geom"),
)


def upgrade() -> None:
    """Apply this revision."""
    ddl.create_table(
        "analysis_run",
        *ddl.required(kind=sa.String(length=32)),
        ddl.jsonb("parameters"),
        ddl.jsonb("inputs"),
        *ddl.required(software_version=sa.String(length=32)),
        sa.Column("status", sa.String(length=16), server_default="succeeded", nullable=False),
        ddl.jsonb("summary"),
        ddl.created("started_at"),
        *ddl.moments("finished_at"),
        indexes=("kind",),
    )
    ddl.create_table(
        "api_key",
        *ddl.required(name=sa.Text(), role=sa.String(length=16), prefix=sa.String(length=16), key_hash=sa.Text()),
        ddl.created(),
        *ddl.moments("last_used_at", "revoked_at"),
        sa.CheckConstraint(
            "role IN ('viewer','planner','designer','reviewer','archivist','admin')",
            name="api_key_role",
        ),
        sa.UniqueConstraint("prefix"),
    )
    ddl.create_table(
        "dataset",
        *ddl.required(name=sa.Text(), kind=sa.String(length=32)),
        *ddl.optional(layer=sa.String(length=32)),
        *ddl.required(path=sa.Text(), sha256=sa.String(length=64)),
        *ddl.optional(size_bytes=sa.BigInteger(), crs_in=sa.Text(), georef_level=sa.SmallInteger()),
        *ddl.optional(schema_name=sa.String(length=32), model_key=sa.Text()),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="loaded", nullable=False),
        ddl.jsonb("counts"),
        ddl.jsonb("summary"),
        ddl.geometry("extent", "POLYGON"),
        *ddl.optional(replaces_id=sa.BigInteger()),
        ddl.created(),
        *ddl.moments("superseded_at"),
        sa.CheckConstraint(
            "status IN ('loading','loaded','superseded','failed')",
            name="dataset_status",
        ),
        ddl.fk("replaces_id", "dataset", "SET NULL"),
        indexes=("kind", "model_key", "sha256"),
    )
    ddl.create_table(
        "tileset",
        *ddl.required(name=sa.String(length=64)),
        sa.Column("kind", sa.String(length=16), server_default="3dtiles", nullable=False),
        *ddl.required(path=sa.Text()),
        ddl.jsonb("layers", "[]"),
        ddl.geometry("bounds", "POLYGON"),
        *ddl.optional(min_height=sa.Float(), max_height=sa.Float()),
        sa.Column("tile_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("feature_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), server_default="0", nullable=False),
        ddl.jsonb("options"),
        sa.Column("status", sa.String(length=16), server_default="ready", nullable=False),
        ddl.created("built_at"),
        sa.UniqueConstraint("name"),
    )
    ddl.create_table(
        "analysis_result",
        *ddl.required(run_id=sa.BigInteger(), indicator=sa.String(length=64)),
        *ddl.optional(district_code=sa.String(length=32), value=sa.Float(), unit=sa.String(length=32)),
        ddl.geometry("geom"),
        ddl.jsonb("attributes"),
        ddl.fk("run_id", "analysis_run", "CASCADE"),
        indexes=("indicator", "run_id"),
    )
    ddl.create_table(
        "audit_log",
        ddl.created("at"),
        *ddl.optional(api_key_id=sa.BigInteger(), actor=sa.Text()),
        *ddl.required(action=sa.String(length=64)),
        *ddl.optional(target=sa.Text()),
        *ddl.required(outcome=sa.String(length=16)),
        *ddl.optional(client=sa.Text()),
        ddl.jsonb("detail"),
        ddl.fk("api_key_id", "api_key", "SET NULL"),
        indexes=("at",),
    )
    ddl.create_table(
        "building",
        *ddl.optional(name=sa.Text(), address=sa.Text()),
        ddl.geometry("footprint", "MULTIPOLYGON", nullable=False),
        sa.Column("base_height", sa.Float(), server_default="0", nullable=False),
        *ddl.required(height=sa.Float()),
        *ddl.optional(storeys=sa.SmallInteger(), gross_floor_area=sa.Float(), use=sa.String(length=32)),
        *ddl.optional(year_built=sa.SmallInteger(), structure=sa.String(length=32), safety_class=sa.String(length=1)),
        sa.Column("cim_level", sa.SmallInteger(), server_default="2", nullable=False),
        *ddl.optional(facility_type=sa.String(length=32), ifc_global_id=sa.String(length=22)),
        *ddl.optional(district_code=sa.String(length=32), source_id=sa.Text()),
        ddl.jsonb("attributes"),
        *ddl.required(dataset_id=sa.BigInteger()),
        *ddl.valid_period(),
        sa.CheckConstraint(
            "safety_class IS NULL OR safety_class IN ('A','B','C','D')",
            name="building_safety_class",
        ),
        sa.CheckConstraint("cim_level BETWEEN 1 AND 7", name="building_cim_level"),
        sa.CheckConstraint("height >= 0", name="building_height_nonnegative"),
        ddl.fk("dataset_id", "dataset", "RESTRICT"),
        indexes=("dataset_id",),
    )
    ddl.create_table(
        "district",
        *ddl.required(code=sa.String(length=32), name=sa.Text()),
        *ddl.optional(level=sa.String(length=16), parent_code=sa.String(length=32), population=sa.BigInteger()),
        *ddl.optional(built_up_area_km2=sa.Float()),
        ddl.geometry("geom", "MULTIPOLYGON", nullable=False),
        ddl.jsonb("attributes"),
        *ddl.optional(dataset_id=sa.BigInteger()),
        ddl.fk("dataset_id", "dataset", "RESTRICT"),
        sa.UniqueConstraint("code"),
        indexes=("dataset_id",),
    )
    ddl.create_table(
        "facility",
        *ddl.required(kind=sa.String(length=32)),
        *ddl.optional(name=sa.Text()),
        ddl.geometry("geom", nullable=False),
        *ddl.optional(diameter_mm=sa.Float(), depth_m=sa.Float(), invert_start_m=sa.Float(), invert_end_m=sa.Float()),
        *ddl.optional(material=sa.Text(), pressure_class=sa.String(length=16), width_m=sa.Float()),
        *ddl.optional(road_class=sa.String(length=32), capacity=sa.Float(), area_m2=sa.Float()),
        *ddl.optional(district_code=sa.String(length=32), source_id=sa.Text()),
        ddl.jsonb("attributes"),
        *ddl.required(dataset_id=sa.BigInteger()),
        *ddl.valid_period(),
        ddl.fk("dataset_id", "dataset", "RESTRICT"),
        indexes=("dataset_id", "kind"),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.UUID(), nullable=False),
        *ddl.required(kind=sa.String(length=32)),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        ddl.jsonb("params"),
        *ddl.json_optional("result"),
        *ddl.optional(error=sa.Text(), api_key_id=sa.BigInteger()),
        ddl.created(),
        *ddl.moments("started_at", "finished_at"),
        sa.CheckConstraint("status IN ('queued','running','succeeded','failed')", name="job_status"),
        ddl.fk("api_key_id", "api_key", "SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    _create_planning_table("parcel", "land_use", *ddl.optional(district_code=sa.String(length=32)))
    _create_planning_table("planning_zone", "zone_type")
    ddl.create_table(
        "element",
        *ddl.required(global_id=sa.String(length=22), ifc_class=sa.String(length=64)),
        *ddl.optional(name=sa.Text(), type_name=sa.Text(), storey=sa.Text(), material=sa.Text()),
        *ddl.json_optional("color"),
        ddl.jsonb("properties"),
        ddl.geometry("mesh", "TINZ", srid=CGCS2000_GEOCENTRIC, dimension=3),
        sa.Column("triangle_count", sa.Integer(), server_default="0", nullable=False),
        ddl.geometry("location", "POINTZ", dimension=3),
        ddl.geometry("extent", "POLYGON"),
        *ddl.optional(min_height=sa.Float(), max_height=sa.Float(), building_id=sa.BigInteger()),
        *ddl.required(dataset_id=sa.BigInteger()),
        *ddl.valid_period(),
        ddl.fk("building_id", "building", "SET NULL"),
        ddl.fk("dataset_id", "dataset", "RESTRICT"),
        indexes=("building_id", "dataset_id", "global_id", "ifc_class"),
    )
    ddl.create_table(
        "model_version",
        *ddl.required(model_key=sa.Text(), version=sa.Integer(), file_name=sa.Text(), storage_key=sa.Text()),
        *ddl.required(sha256=sa.String(length=64), size_bytes=sa.BigInteger()),
        *ddl.optional(author=sa.Text(), message=sa.Text()),
        ddl.jsonb("summary"),
        *ddl.optional(building_id=sa.BigInteger(), dataset_id=sa.BigInteger(), parent_id=sa.BigInteger()),
        ddl.created(),
        ddl.fk("building_id", "building", "SET NULL"),
        ddl.fk("dataset_id", "dataset", "SET NULL"),
        ddl.fk("parent_id", "model_version", "SET NULL"),
        sa.UniqueConstraint("model_key", "version", name="model_version_key_version"),
        indexes=("model_key",),
    )
    ddl.create_table(
        "review",
        *ddl.required(file_name=sa.Text(), sha256=sa.String(length=64), status=sa.String(length=16)),
        sa.Column("passed", sa.Boolean(), server_default="false", nullable=False),
        ddl.jsonb("report"),
        *ddl.optional(parcel_id=sa.BigInteger(), building_id=sa.BigInteger()),
        *ddl.optional(dataset_id=sa.BigInteger(), api_key_id=sa.BigInteger()),
        ddl.created(),
        ddl.fk("api_key_id", "api_key", "SET NULL"),
        ddl.fk("building_id", "building", "SET NULL"),
        ddl.fk("dataset_id", "dataset", "SET NULL"),
        ddl.fk("parcel_id", "parcel", "SET NULL"),
        indexes=("sha256",),
    )
    ddl.create_gist_indexes(SPATIAL_INDEXES, nd=("mesh",))


def _create_planning_table(table: str, kind: str, *after_geom: sa.Column) -> None:
    """``parcel`` and ``planning_zone``: the same planning limits over a multipolygon; ``kind`` names its class."""
    ddl.create_table(
        table,
        *ddl.optional(code=sa.String(length=64), name=sa.Text()),
        *ddl.optional(**{kind: sa.String(length=32)}),
        ddl.geometry("geom", "MULTIPOLYGON", nullable=False),
        *after_geom,
        ddl.jsonb("attributes"),
        *ddl.required(dataset_id=sa.BigInteger()),
        *ddl.optional(max_height=sa.Float(), max_far=sa.Float(), max_density=sa.Float(), min_green_ratio=sa.Float()),
        *ddl.optional(setback_m=sa.Float()),
        ddl.fk("dataset_id", "dataset", "RESTRICT"),
        indexes=("code", "dataset_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    ddl.drop_table("review", "sha256")
    ddl.drop_table("model_version", "model_key")
    ddl.drop_table("element", "ifc_class", "global_id", "dataset_id", "building_id", spatial=True)
    ddl.drop_table("planning_zone", "dataset_id", "code", spatial=True)
    ddl.drop_table("parcel", "dataset_id", "code", spatial=True)
    op.drop_table("job")
    ddl.drop_table("facility", "kind", "dataset_id", spatial=True)
    ddl.drop_table("district", "dataset_id", spatial=True)
    ddl.drop_table("building", "dataset_id", spatial=True)
    ddl.drop_table("audit_log", "at")
    ddl.drop_table("analysis_result", "run_id", "indicator", spatial=True)
    ddl.drop_table("tileset", spatial=True)
    ddl.drop_table("dataset", "sha256", "model_key", "kind", spatial=True)
    op.drop_table("api_key")
    ddl.drop_table("analysis_run", "kind")
