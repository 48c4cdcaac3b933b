"""One SQL query on its own connection, for tests that check what a command stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, text


def one(engine: Engine, sql: str, **params: Any) -> Row[Any]:
    """The single row ``sql`` (bound ``params``) returns; an error when it returns none or more."""
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    """The single value of the single row ``sql`` (bound ``params``) returns."""
    return one(engine, sql, **params)[0]
