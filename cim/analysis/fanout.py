"""The health check's service-coverage stage fanned out per district over parallel database backends.

The coverage stage (seven radius tests per residential building) is the health check's largest cost and is
independent per district: :func:`coverage_partition` computes one partition's district rows in its own
connection (its own PostgreSQL backend) from committed data only, so partitions run side by side on a
:class:`concurrent.futures.ThreadPoolExecutor` (one backend per thread) or on a Dask cluster
(``distributed.Client.get_executor()``, the executor the tile builder takes), while the calling backend
goes on with the other stages. Coverage results are counts, so the whole scope's row is the exact sum of
the district rows: a fanned-out run gives the same values as a single-backend one (tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from cim.db import analysis_queries as q

COUNT_COLUMNS = ("n_res", "park", "greenway", "cs300", "cs500", "cs1000", "school", "kindergarten")
"""The columns of :func:`cim.db.analysis_queries.residential_coverage` (all counts)."""


def coverage_partition(url: str, codes: Sequence[str]) -> list[dict[str, Any]]:
    """Per-district coverage rows of the districts ``codes``, computed in a new connection to ``url``.

    A module-level function of plain arguments, so that a Dask worker in another process can run it.
    """
    from cim.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            q.create_district_scope(conn, None, codes=list(codes))
            q.create_building_scope(conn, residential_only=True)
            q.create_service_facilities(conn)
            rows = q.residential_coverage(conn)
    finally:
        engine.dispose()
    return [{k: (int(v) if k in COUNT_COLUMNS else v) for k, v in r.items()} for r in rows if not r["is_total"]]


def partitions(districts: Sequence[Mapping[str, Any]], n: int) -> list[list[str]]:
    """District codes split into at most ``n`` groups of similar built-up area (largest first, greedy)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(n, len(districts))))]
    load = [0.0] * len(groups)
    for d in sorted(districts, key=lambda d: (-float(d["built_up_km2"] or 0.0), str(d["code"]))):
        i = load.index(min(load))
        groups[i].append(str(d["code"]))
        load[i] += float(d["built_up_km2"] or 0.0) or 1.0
    return [g for g in groups if g]


def submit_coverage(executor: Executor, url: str, groups: Sequence[Sequence[str]]) -> list[Future[Any]]:
    """Start :func:`coverage_partition` for each group of district codes on ``executor``."""
    return [executor.submit(coverage_partition, url, list(g)) for g in groups]


def merge_coverage(parts: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """District rows of every partition plus the whole scope's row (``is_total`` 1): the sum of the counts."""
    rows = [dict(r) for part in parts for r in part]
    total: dict[str, Any] = {"district_code": None, "is_total": 1}
    total.update({k: sum(int(r[k]) for r in rows) for k in COUNT_COLUMNS})
    return [*sorted(rows, key=lambda r: str(r["district_code"])), total]


__all__ = ["coverage_partition", "merge_coverage", "partitions", "submit_coverage"]
