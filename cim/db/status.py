"""What ``cim db status`` reports: server and PostGIS versions, schema revision, row counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from cim.db.migrate import current_revisions, head_revisions
from cim.db.models import Base


@dataclass
class DatabaseStatus:
    """Versions, schema revision and per-table row counts of a reachable database."""

    postgresql_version: str
    postgis_version: str
    extensions: dict[str, str]
    schema_revision: list[str]
    head_revision: list[str]
    at_head: bool
    row_counts: dict[str, int] = field(default_factory=dict)


def database_status(conn: Connection) -> DatabaseStatus:
    """Read versions, the schema revision and exact row counts of the platform's tables."""
    pg = conn.execute(text("SHOW server_version")).scalar_one()
    postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    extensions = {str(n): str(v) for n, v in conn.execute(text("SELECT extname, extversion FROM pg_extension"))}
    current = sorted(current_revisions(conn))
    heads = sorted(head_revisions())
    counts: dict[str, int] = {}
    if current:
        existing = {
            str(r[0]) for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
        }
        for table in sorted(Base.metadata.tables):
            if table in existing:
                # Table names come from our own metadata, never from input.
                counts[table] = int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    return DatabaseStatus(
        postgresql_version=str(pg),
        postgis_version=str(postgis),
        extensions=extensions,
        schema_revision=current,
        head_revision=heads,
        at_head=current == heads,
        row_counts=counts,
    )
