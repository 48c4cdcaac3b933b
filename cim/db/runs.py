"""The run table: analysis runs (``analysis_run``) and their results (``analysis_result``), written and read.

A run records its kind, parameters, the loaded datasets it read (``inputs``), the software version, its
state and summary; its results are values per indicator and district with an optional EPSG:4490 geometry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, insert, text, update

from cim import __version__
from cim.db.models import AnalysisRun


def _rows(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(text(sql), params)]


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
    inputs = {"datasets": input_datasets(conn)}
    return int(
        conn.execute(
            insert(AnalysisRun)
            .values(kind=kind, parameters=parameters, inputs=inputs, software_version=__version__, status="running")
            .returning(AnalysisRun.id)
        ).scalar_one()
    )


def add_results(conn: Connection, run_id: int, rows: list[ResultRow]) -> None:
    """Insert result rows of a run with one ``COPY`` (the server parses the EWKT and the JSON text).

    A health check of a province stores hundreds of thousands of parcel rows; building multi-row ``INSERT``
    statements for them cost about 400 µs a row in SQL compilation and parameter binding, ``COPY`` a few.
    """
    if not rows:
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = "COPY analysis_result (run_id, indicator, district_code, value, unit, geom, attributes) FROM STDIN"
    with raw.cursor() as cur, cur.copy(statement) as copy:
        for r in rows:
            copy.write_row((run_id, r.indicator, r.district_code, r.value, r.unit, r.ewkt, json.dumps(r.attributes)))


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


def input_datasets(conn: Connection) -> list[dict[str, Any]]:
    """The loaded datasets an analysis reads (id, name, kind, layer, version)."""
    return _rows(
        conn,
        "SELECT id, name, kind, layer, version FROM dataset WHERE status = 'loaded' ORDER BY id",
    )


def latest_run_id(conn: Connection, kind: str, parameters: dict[str, Any] | None = None) -> int | None:
    """The newest succeeded run of ``kind`` (whose parameters contain ``parameters`` when given)."""
    value = conn.execute(
        text(
            """
            SELECT id FROM analysis_run
             WHERE kind = :kind AND status = 'succeeded'
               AND (CAST(:params AS jsonb) IS NULL OR parameters @> CAST(:params AS jsonb))
             ORDER BY id DESC LIMIT 1
            """
        ),
        {"kind": kind, "params": json.dumps(parameters) if parameters is not None else None},
    ).scalar()
    return int(value) if value is not None else None


def run_results(conn: Connection, run_id: int, indicator: str | None = None) -> list[dict[str, Any]]:
    """Results of a run (geometry as GeoJSON in lon/lat), optionally of one indicator."""
    return _rows(
        conn,
        """
        SELECT r.id, r.indicator, r.district_code, r.value, r.unit, r.attributes,
               CASE WHEN r.geom IS NULL THEN NULL ELSE ST_AsGeoJSON(r.geom, 7)::json END AS geometry
          FROM analysis_result r
         WHERE r.run_id = :run AND (CAST(:indicator AS text) IS NULL OR r.indicator = CAST(:indicator AS text))
         ORDER BY r.id
        """,
        run=run_id,
        indicator=indicator,
    )


def run_row(conn: Connection, run_id: int) -> dict[str, Any] | None:
    """One stored run (id, kind, parameters, inputs, software version, status, summary, times) or ``None``."""
    rows = _rows(
        conn,
        """
        SELECT id, kind, parameters, inputs, software_version, status, summary, started_at, finished_at
          FROM analysis_run WHERE id = :run
        """,
        run=run_id,
    )
    return rows[0] if rows else None


def runs(conn: Connection, kind: str, limit: int) -> list[dict[str, Any]]:
    """Stored runs of ``kind``, newest first."""
    return _rows(
        conn,
        """
        SELECT id, kind, parameters, inputs, software_version, status, summary, started_at, finished_at
          FROM analysis_run WHERE kind = :kind ORDER BY id DESC LIMIT :limit
        """,
        kind=kind,
        limit=limit,
    )
