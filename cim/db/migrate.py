"""Alembic migrations, run programmatically (no alembic.ini needed at run time)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from cim.db.engine import make_engine, sqlalchemy_url
from cim.errors import DatabaseError

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the platform's migrations on ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation treats % specially; URL-quoted passwords contain it.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def head_revisions() -> tuple[str, ...]:
    """The head revision(s) of the migration scripts."""
    return tuple(ScriptDirectory(str(MIGRATIONS)).get_heads())


def current_revisions(conn: Connection) -> tuple[str, ...]:
    """The revision(s) the database is at; empty when it was never migrated."""
    return tuple(MigrationContext.configure(conn).get_current_heads())


def upgrade_to_head(url: str) -> tuple[str, ...]:
    """Apply every pending migration; return the database's revisions afterwards."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if set(current_revisions(conn)) == set(head_revisions()):
                return head_revisions()
        try:
            command.upgrade(alembic_config(url), "heads")
        except Exception as exc:  # alembic and the driver raise many types; report one line
            raise DatabaseError(f"migration failed: {str(exc).splitlines()[0]}") from exc
        with engine.connect() as conn:
            return current_revisions(conn)
    finally:
        engine.dispose()


def require_head(conn: Connection) -> None:
    """Raise :class:`DatabaseError` unless the schema is at the head revision."""
    current = set(current_revisions(conn))
    heads = set(head_revisions())
    if current != heads:
        shown = ", ".join(sorted(current)) or "none"
        raise DatabaseError(f"the database schema is at revision {shown}, not at the head; run `cim db migrate`")
