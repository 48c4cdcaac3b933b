"""Storage of analysis runs (``analysis_run``) and their results (``analysis_result``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, update

from cim import __version__
from cim.db import analysis_queries as q
from cim.db.models import AnalysisResult, AnalysisRun


def checked_code(value: str | None, what: str = "district code") -> str | None:
    """``value`` when it is a usable code (≤ 64 characters, no control characters); else AnalysisError."""
    from cim.errors import AnalysisError

    if value is not None and (len(value) > 64 or any(ord(ch) < 32 for ch in value)):
        raise AnalysisError(f"invalid {what} {value[:64]!r}: at most 64 printable characters")
    return value


@dataclass
class ResultRow:
    """One stored value: indicator per district, a flooded polygon, a building in breach…

    ``ewkt`` is an EPSG:4490 geometry as EWKT (``SRID=4490;POLYGON(...)``, lon/lat) or ``None``.
    """

    indicator: str
    value: float | None
    unit: str | None = None
    district_code: str | None = None
    ewkt: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def start_run(conn: Connection, kind: str, parameters: dict[str, Any]) -> int:
    """Insert a run row (inputs = loaded datasets, software version = ``cim.__version__``); return its id."""
    inputs = {"datasets": q.input_datasets(conn)}
    return int(
        conn.execute(
            insert(AnalysisRun)
            .values(kind=kind, parameters=parameters, inputs=inputs, software_version=__version__, status="running")
            .returning(AnalysisRun.id)
        ).scalar_one()
    )


def add_results(conn: Connection, run_id: int, rows: list[ResultRow], *, batch: int = 500) -> None:
    """Insert result rows of a run."""
    for start in range(0, len(rows), batch):
        values = [
            {
                "run_id": run_id,
                "indicator": r.indicator,
                "district_code": r.district_code,
                "value": r.value,
                "unit": r.unit,
                "geom": func.ST_GeomFromEWKT(r.ewkt) if r.ewkt else None,
                "attributes": r.attributes,
            }
            for r in rows[start : start + batch]
        ]
        if values:
            conn.execute(insert(AnalysisResult).values(values))


def finish_run(conn: Connection, run_id: int, summary: dict[str, Any]) -> dt.datetime:
    """Mark a run succeeded with its summary; return the finish time."""
    finished = dt.datetime.now(dt.UTC)
    conn.execute(
        update(AnalysisRun)
        .where(AnalysisRun.id == run_id)
        .values(status="succeeded", summary=summary, finished_at=finished)
    )
    return finished


@contextmanager
def run_transaction(engine: Engine, *, store: bool = True) -> Iterator[Connection]:
    """One transaction for a whole analysis; committed when ``store``, else rolled back (a preview)."""
    with engine.connect() as conn, conn.begin() as tx:
        yield conn
        if not store:
            tx.rollback()
