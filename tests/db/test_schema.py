"""The schema comes from the Alembic migrations and matches the models: typed SRIDs, GiST everywhere."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from cim.db.migrate import alembic_config, current_revisions, head_revisions
from cim.db.models import SPATIAL_COLUMNS, Base

CORE_TABLES = {
    "dataset",
    "building",
    "element",
    "facility",
    "parcel",
    "planning_zone",
    "district",
    "tileset",
    "review",
    "model_version",
    "api_key",
    "audit_log",
}


def test_migrations_create_every_core_table_at_the_head_revision(engine: Engine) -> None:
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))}
        assert tables >= CORE_TABLES
        assert set(current_revisions(conn)) == set(head_revisions())


def test_geometry_columns_have_typed_srids(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns WHERE f_table_schema='public'"
            )
        ).all()
    found = {(t, c): (srid, kind) for t, c, srid, kind in rows}
    assert found[("building", "footprint")] == (4490, "MULTIPOLYGON")
    assert found[("element", "mesh")] == (4479, "TIN")
    assert found[("facility", "geom")][0] == 4490
    assert {(t, c) for t, cols in SPATIAL_COLUMNS.items() for c in cols} == set(found)


def test_every_geometry_column_has_a_gist_index(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT t.relname, a.attname
                FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid
                JOIN pg_am am ON am.oid = i.relam AND am.amname = 'gist'
                JOIN pg_class t ON t.oid = x.indrelid
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey)
                """
            )
        ).all()
    indexed = {(t, c) for t, c in rows}
    for table, columns in SPATIAL_COLUMNS.items():
        for column in columns:
            assert (table, column) in indexed, f"{table}.{column} has no GiST index"


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": lambda obj, name, type_, reflected, compare_to: (
                    not (type_ == "table" and reflected and compare_to is None)
                    and not (type_ == "index" and name is not None and name.endswith("_gist"))
                )
            },
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(db_url: str, engine: Engine) -> None:
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "base")
    with engine.connect() as conn:
        assert current_revisions(conn) == ()
        left = conn.execute(text("SELECT count(*) FROM pg_tables WHERE tablename = 'building'")).scalar_one()
        assert left == 0
    command.upgrade(cfg, "heads")
    with engine.connect() as conn:
        assert set(current_revisions(conn)) == set(head_revisions())
