"""The database: the private cluster, engines, migrations and status queries."""

from cim.db.engine import connect_url, database_url, make_engine, sqlalchemy_url

__all__ = ["connect_url", "database_url", "make_engine", "sqlalchemy_url"]
