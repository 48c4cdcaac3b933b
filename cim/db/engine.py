"""Which database to use and how to connect to it.

``DATABASE_URL`` (any PostGIS ≥ 3.3) wins everywhere; otherwise the private cluster under the data
directory is started on demand and its schema brought to the head migration.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, create_engine

from cim.db.cluster import PrivateCluster
from cim.errors import DatabaseError
from cim.settings import Settings


def sqlalchemy_url(url: str) -> str:
    """A libpq URL (``postgresql://…``) as SQLAlchemy wants it for psycopg 3 (``postgresql+psycopg://…``)."""
    if url.startswith(("postgresql+psycopg://", "postgresql+psycopg2://")):
        return url
    m = re.match(r"^(postgres|postgresql)://", url)
    if not m:
        raise DatabaseError("DATABASE_URL must start with postgresql:// (a PostgreSQL/PostGIS database)")
    return "postgresql+psycopg://" + url[m.end() :]


def connect_url(url: str) -> str:
    """A SQLAlchemy or libpq URL as libpq (``psql``, psycopg) wants it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def database_url(settings: Settings, *, migrate: bool = True) -> str:
    """The libpq URL of the platform's database; starts the private cluster when no ``DATABASE_URL`` is set.

    With ``migrate`` the private cluster's schema is brought to the head revision (an external
    ``DATABASE_URL`` is migrated only by ``cim db migrate``, never implicitly).
    """
    if settings.database_url:
        return connect_url(settings.database_url)
    url = PrivateCluster(settings.data_path).up()
    if migrate:
        from cim.db.migrate import upgrade_to_head

        upgrade_to_head(url)
    return url


def make_engine(url: str, **kwargs: object) -> Engine:
    """A SQLAlchemy engine on ``url`` (libpq or SQLAlchemy form) with connection health checks."""
    options: dict[str, object] = {"pool_pre_ping": True, "future": True}
    options.update(kwargs)
    return create_engine(sqlalchemy_url(url), **options)


def make_app_engine(settings: Settings, primary_url: str, **kwargs: object) -> Engine:
    """The service's engine: on ``primary_url``, routing reads to ``settings.read_replica_url`` when one is set.

    With a read replica the result is a :class:`~cim.db.routing.RoutingEngine` (see there for which
    connections go where); the connections name themselves ``cim-api`` and ``cim-api-read`` in
    ``pg_stat_activity``.
    """
    if not settings.read_replica_url:
        return make_engine(primary_url, **kwargs)
    from cim.db.routing import RoutingEngine

    primary = make_engine(primary_url, connect_args={"application_name": "cim-api", "connect_timeout": 5}, **kwargs)
    replica = make_engine(
        connect_url(settings.read_replica_url),
        connect_args={"application_name": "cim-api-read", "connect_timeout": 5},
        **kwargs,
    )
    return RoutingEngine(primary, replica, max_lag_seconds=settings.read_replica_max_lag_seconds)
