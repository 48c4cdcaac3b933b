"""The faster service-coverage query gives the previous query's counts, and a fanned-out run gives the same values.

The reference is the coverage query as it was before the per-group facility tables (seven independent
``EXISTS`` tests against one index over every kind, kept here verbatim) as the oracle; its counts of the seven
columns are written out from their names.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from cim.analysis import fanout
from cim.analysis.health_check import HealthCheckReport, run_health_check
from cim.db import analysis_queries as q
from cim.settings import Settings
from sample_models.district import generate_district
from sample_models.load import load_district

RADII = ("park", "greenway", "cs300", "cs500", "cs1000", "school", "kindergarten")
"""The coverage columns: per district and in total, how many residential buildings each test covers."""
PREVIOUS_COVERAGE_SQL = f"""
SELECT district_code, GROUPING(district_code) AS is_total, count(*) AS n_res,
       {", ".join(f"count(*) FILTER (WHERE {c}) AS {c}" for c in RADII)}
  FROM (
    SELECT b.district_code,
           EXISTS (SELECT 1 FROM hc_fac f WHERE f.kind IN ('park','green_space') AND f.area_m2 >= 2000
                      AND ST_DWithin(f.g, b.c, 500)
                      AND (f.area_m2 >= 5000 OR ST_DWithin(f.g, b.c, 300))) AS park,
           EXISTS (SELECT 1 FROM hc_fac f WHERE f.kind = 'greenway' AND ST_DWithin(f.g, b.c, 1000)) AS greenway,
           EXISTS (SELECT 1 FROM hc_fac f WHERE f.kind IN ('community_service','clinic')
                      AND ST_DWithin(f.g, b.c, 300)) AS cs300,
           EXISTS (SELECT 1 FROM hc_fac f WHERE f.kind IN ('community_service','clinic')
                      AND ST_DWithin(f.g, b.c, 500)) AS cs500,
           EXISTS (SELECT 1 FROM hc_fac f WHERE f.kind IN ('community_service','clinic')
                      AND ST_DWithin(f.g, b.c, 1000)) AS cs1000,
           EXISTS (SELECT 1 FROM hc_fac f WHERE f.kind = 'school' AND ST_DWithin(f.g, b.c, 500)) AS school,
           EXISTS (SELECT 1 FROM hc_fac f WHERE f.kind = 'kindergarten'
                      AND ST_DWithin(f.g, b.c, 300)) AS kindergarten
      FROM hc_bldg b WHERE b.residential) s
 GROUP BY GROUPING SETS ((district_code), ())
"""


@pytest.fixture
def sample_city(engine: Engine, settings: Settings, tmp_path: Path) -> Engine:
    """The generated sample district (three districts, every facility kind) loaded through the ingest paths."""
    load_district(engine, settings, generate_district(tmp_path / "district", buildings=1500))
    return engine


def _key(row: dict[str, Any]) -> tuple[int, str]:
    return int(row["is_total"]), str(row["district_code"])


def _comparable(report: HealthCheckReport) -> list[tuple[Any, ...]]:
    return sorted(
        ((v.code, v.district_code or "", v.value, v.meets, sorted(v.detail.items())) for v in report.values),
        key=lambda t: (t[0], t[1]),
    )


def test_coverage_query_counts_equal_the_previous_query(sample_city: Engine) -> None:
    with sample_city.begin() as conn:
        q.create_district_scope(conn, None)
        q.create_building_scope(conn)
        q.create_service_facilities(conn)
        new = sorted(q.residential_coverage(conn), key=_key)
        old = sorted((dict(r._mapping) for r in conn.execute(text(PREVIOUS_COVERAGE_SQL))), key=_key)
    assert new == old
    total = new[-1]
    assert total["is_total"] and total["n_res"] > 300
    # The sample covers some but not all houses for several radii, so the comparison is not trivially 0 = 0.
    assert any(0 < total[k] < total["n_res"] for k in ("park", "cs300", "kindergarten", "school"))


def test_fanned_out_health_check_equals_the_single_backend_run(sample_city: Engine) -> None:
    single = run_health_check(sample_city)
    with ThreadPoolExecutor(max_workers=2) as pool:
        threads = run_health_check(sample_city, executor=pool, partitions=2)
    assert threads.parameters["coverage_partitions"] == 2
    assert _comparable(threads) == _comparable(single)
    assert threads.parcels == single.parcels


def test_fanned_out_health_check_on_a_local_dask_cluster(sample_city: Engine) -> None:
    from dask.distributed import Client, LocalCluster

    single = run_health_check(sample_city)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        dask = run_health_check(sample_city, executor=client.get_executor(), partitions=3)
    assert dask.parameters["coverage_partitions"] == 3
    assert _comparable(dask) == _comparable(single)


def test_partitions_balance_districts_and_merge_sums_counts() -> None:
    districts = [{"code": c, "built_up_km2": a} for c, a in (("A", 5.0), ("B", 3.0), ("C", 2.0), ("D", 0.0))]
    groups = fanout.partitions(districts, 2)
    assert sorted(c for g in groups for c in g) == ["A", "B", "C", "D"] and len(groups) == 2
    assert fanout.partitions(districts, 10) == [["A"], ["B"], ["C"], ["D"]]
    part = [{"district_code": "A", "is_total": 0, **dict.fromkeys(fanout.COUNT_COLUMNS, 2)}]
    merged = fanout.merge_coverage([part, [{**part[0], "district_code": "B"}]])
    assert merged[-1]["is_total"] == 1 and merged[-1]["n_res"] == 4 and len(merged) == 3
