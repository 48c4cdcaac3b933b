"""Column, key and index builders the migration scripts share.

Every migration that has run on a database must keep emitting the same DDL, so these helpers are frozen:
a change here changes the schema of every revision that imports them. ``tests/db/test_schema.py`` compares
the migrated schema with :mod:`cim.db.models`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import SchemaItem

from cim.crs import CGCS2000

_op: Any = op
"""Alembic's operations proxy, untyped: GeoAlchemy2 registers ``create/drop_geospatial_table`` on it at import."""

TypeSpec = Any
"""A SQLAlchemy type class or instance (``sa.Text``, ``sa.String(32)``)."""


def ident(name: str = "id") -> sa.Column[Any]:
    """The ``bigint NOT NULL`` key column of a table (its primary key is declared apart)."""
    return sa.Column(name, sa.BigInteger(), nullable=False)


def required(**types: TypeSpec) -> list[sa.Column[Any]]:
    """``NOT NULL`` columns without a default, in the order given (``name=type``)."""
    return [sa.Column(name, type_, nullable=False) for name, type_ in types.items()]


def optional(**types: TypeSpec) -> list[sa.Column[Any]]:
    """Nullable columns without a default, in the order given (``name=type``)."""
    return [sa.Column(name, type_, nullable=True) for name, type_ in types.items()]


def jsonb(name: str, default: str = "{}") -> sa.Column[Any]:
    """A ``jsonb NOT NULL`` column whose server default is the JSON text ``default``."""
    return sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), server_default=default, nullable=False)


def json_optional(*names: str) -> list[sa.Column[Any]]:
    """Nullable ``jsonb`` columns without a default."""
    return [sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=True) for name in names]


def json_required(*names: str) -> list[sa.Column[Any]]:
    """``jsonb NOT NULL`` columns without a default."""
    return [sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=False) for name in names]


def created(name: str = "created_at") -> sa.Column[Any]:
    """A ``timestamptz NOT NULL DEFAULT now()`` column."""
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def moments(*names: str) -> list[sa.Column[Any]]:
    """Nullable ``timestamptz`` columns (when something happened, if it did)."""
    return [sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in names]


def valid_period() -> list[sa.Column[Any]]:
    """``valid_from`` (now by default) and ``valid_to`` (null while the row is live) of a versioned row."""
    return [created("valid_from"), *moments("valid_to")]


def geometry(
    name: str, geometry_type: str = "GEOMETRY", *, srid: int = CGCS2000, dimension: int = 2, nullable: bool = True
) -> sa.Column[Any]:
    """A PostGIS geometry column of ``srid`` (CGCS2000 lon/lat by default); its GiST index is made apart."""
    type_ = Geometry(
        geometry_type=geometry_type,
        srid=srid,
        dimension=dimension,
        spatial_index=False,
        from_text="ST_GeomFromEWKT",
        name="geometry",
        nullable=nullable,
    )
    return sa.Column(name, type_, nullable=nullable)


def fk(column: str, table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    """A foreign key from ``column`` to ``table.id``."""
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], ondelete=ondelete)


def create_indexes(table: str, *columns: str) -> None:
    """One plain B-tree index ``ix_<table>_<column>`` a column."""
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def drop_indexes(table: str, *columns: str) -> None:
    """Drop the indexes :func:`create_indexes` made, in the order given."""
    for column in columns:
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)


def create_gist_indexes(pairs: tuple[tuple[str, str], ...], *, nd: tuple[str, ...] = ()) -> None:
    """A GiST index ``<table>_<column>_gist`` per (table, column); columns named in ``nd`` get the N-D opclass."""
    for table, column in pairs:
        opclass = " gist_geometry_ops_nd" if column in nd else ""
        op.execute(f"CREATE INDEX {table}_{column}_gist ON {table} USING gist ({column}{opclass})")


def create_table(name: str, *elements: SchemaItem, indexes: tuple[str, ...] = ()) -> None:
    """Create table ``name`` keyed by a ``bigint`` ``id`` (first column, primary key) with ``elements`` between.

    A table with a geometry column is made by GeoAlchemy2's ``create_geospatial_table``; each column named in
    ``indexes`` gets a B-tree index (:func:`create_indexes`).
    """
    spatial = any(isinstance(e, sa.Column) and isinstance(e.type, Geometry) for e in elements)
    create = _op.create_geospatial_table if spatial else op.create_table
    create(name, ident(), *elements, sa.PrimaryKeyConstraint("id"))
    create_indexes(name, *indexes)


def drop_table(name: str, *indexes: str, spatial: bool = False) -> None:
    """Drop the B-tree ``indexes`` of table ``name`` (in the order given), then the table."""
    drop_indexes(name, *indexes)
    (_op.drop_geospatial_table if spatial else op.drop_table)(name)
