"""Reading back what an ingest or a build stored: the rows of one SQL query, in one short connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, text


def rows(engine: Engine, sql: str, **params: Any) -> list[Row[Any]]:
    """Every row of ``sql`` (SQLAlchemy ``:name`` parameters)."""
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())
