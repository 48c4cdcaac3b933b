"""A toy health-check indicator: the share of buildings taller than 24 m (高层建筑占比), with its own query.

It is what a new indicator looks like: one :class:`~cim.analysis.indicators.Indicator` (definition, query,
computation) registered with ``INDICATORS.register``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, text

from cim.analysis.indicators import Indicator, Measure, Scope


def tall_building_counts(conn: Connection) -> Mapping[str | None, Mapping[str, Any]]:
    """Buildings and those above 24 m per district of the health check's scope (None = the whole scope)."""
    rows = conn.execute(
        text(
            """
            SELECT district_code, GROUPING(district_code) AS is_total, count(*) AS n,
                   count(*) FILTER (WHERE height > 24) AS tall
              FROM hc_bldg GROUP BY GROUPING SETS ((district_code), ())
            """
        )
    )
    return {None if r.is_total else r.district_code: {"n": r.n, "tall": r.tall} for r in rows}


def tall_building_share(scope: Scope) -> Measure:
    """Share (%) of the scope's buildings taller than 24 m."""
    row = scope.queried["tall_building_share"]
    n = float(row.get("n", 0))
    return (100.0 * row.get("tall", 0) / n if n else None), {"tall": row.get("tall", 0), "of": n}


TALL_BUILDINGS = Indicator(
    "tall_building_share",
    "高层建筑占比",
    "share of high-rise buildings",
    "buildings taller than 24 m ÷ buildings × 100",
    "%",
    None,
    "info",
    "GB 50352-2019 民用建筑设计统一标准 (high-rise above 24 m)",
    compute=tall_building_share,
    query=tall_building_counts,
)
