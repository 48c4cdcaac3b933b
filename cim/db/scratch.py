"""Whole databases on the platform's server, made and removed by tests and benchmarks.

A new database is either cloned from a template (fast, already migrated) or made empty and brought to the
head migration with PostGIS and the optional extensions.
"""

from __future__ import annotations

import re

import psycopg

from cim.db.cluster import ensure_extensions
from cim.db.engine import connect_url
from cim.db.migrate import upgrade_to_head

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def database_on(server_url: str, name: str) -> str:
    """The libpq URL of database ``name`` on the server of ``server_url`` (any database of that server)."""
    base, _, _ = connect_url(server_url).split("?")[0].rpartition("/")
    return f"{base}/{name}"


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid database name {name!r}")
    return name


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (a clone of ``template``, or empty and migrated to the head); return its URL."""
    admin = database_on(server_url, "postgres")
    clause = f' TEMPLATE "{_checked(template)}"' if template is not None else ""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{_checked(name)}"{clause}')
    url = database_on(server_url, name)
    if template is None:
        with psycopg.connect(url, autocommit=True) as conn:
            ensure_extensions(conn)
        upgrade_to_head(url)
    return url


def drop_database(server_url: str, name: str, *, timeout_s: float | None = None) -> None:
    """Drop database ``name`` if it exists, ending its sessions; ``timeout_s`` bounds the wait for locks."""
    with psycopg.connect(database_on(server_url, "postgres"), autocommit=True) as conn:
        if timeout_s is not None:
            conn.execute(f"SET statement_timeout = '{int(timeout_s * 1000)}ms'")
        conn.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')
