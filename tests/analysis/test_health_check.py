"""Health-check indicators on tiny hand-built fixtures; expected values are worked out by hand here."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text

from cim.analysis.health_check import run_health_check
from cim.analysis.indicators import INDICATORS
from tests import factories as f
from tests.analysis.local import Local, geodesic_area_m2, geodesic_length_m

WUHAN = Local(114.30, 30.58)


def _district(conn: Connection, frame: Local, code: str = "A", population: int = 10_000, **kw: object) -> None:
    f.district(conn, code, frame.box(0, 0, 6000, 6000), population, **kw)


def _home(conn: Connection, ds: int, frame: Local, x: float, y: float, **kw: object) -> int:
    values: dict[str, object] = {"use": "residential", "district_code": "A"}
    values.update(kw)
    return f.building(conn, ds, frame.box(x, y, 10, 10), **values)


def test_registry_has_at_least_14_documented_indicators() -> None:
    assert len(INDICATORS) >= 14
    for ind in INDICATORS:
        assert ind.zh and ind.en and ind.formula and ind.source
        assert ind.direction in ("higher", "lower", "info")
    assert len({i.code for i in INDICATORS}) == len(INDICATORS)


def test_park_coverage_uses_300_m_for_small_parks_and_500_m_for_large(engine: Engine) -> None:
    with engine.begin() as conn:
        ds = f.dataset(conn)
        _district(conn, WUHAN)
        f.facility(conn, ds, "park", WUHAN.box(0, 0, 60, 60))  # 3,600 m²: 300 m radius, east edge at x = 30
        f.facility(conn, ds, "green_space", WUHAN.box(0, 1500, 100, 100))  # 10,000 m²: 500 m, east edge x = 50
        f.facility(conn, ds, "park", WUHAN.box(0, -1500, 40, 40))  # 1,600 m²: too small to count
        _home(conn, ds, WUHAN, 30 + 250, 0)  # 250 m from the small park: covered
        _home(conn, ds, WUHAN, 30 + 360, 0)  # 360 m: not covered
        _home(conn, ds, WUHAN, 50 + 450, 1500)  # 450 m from the large park: covered
        _home(conn, ds, WUHAN, 50 + 560, 1500)  # 560 m: not covered
        _home(conn, ds, WUHAN, 20 + 100, -1500)  # 100 m from a park below 2,000 m²: not covered
        f.building(conn, ds, WUHAN.box(60, 0, 10, 10), use="office", district_code="A")  # not housing
    report = run_health_check(engine)
    assert report.value("park_service_coverage", "A") == pytest.approx(100 * 2 / 5)
    assert report.value("park_service_coverage") == pytest.approx(40.0)


def test_greenway_and_life_circle_school_kindergarten_coverage(engine: Engine) -> None:
    with engine.begin() as conn:
        ds = f.dataset(conn)
        _district(conn, WUHAN)
        f.facility(conn, ds, "greenway", WUHAN.line((-1000, -2000), (-1000, 2000)))
        f.facility(conn, ds, "community_service", WUHAN.point(0, 0))
        f.facility(conn, ds, "school", WUHAN.point(0, 0))
        f.facility(conn, ds, "kindergarten", WUHAN.point(0, 0))
        # Distances of the centroids from the service point at (0, 0) and from the greenway at x = -1000.
        for x in (-200, 400, 800, 1200):
            _home(conn, ds, WUHAN, x, 0)
    report = run_health_check(engine)
    # greenway within 1,000 m: x = -200 (800 m) only; x = 400 is 1,400 m away
    assert report.value("greenway_service_coverage", "A") == pytest.approx(25.0)
    # 300 m: {-200}; 500 m: {-200, 400}; 1,000 m: {-200, 400, 800}
    assert report.value("community_service_5min_coverage", "A") == pytest.approx(25.0)
    assert report.value("community_service_10min_coverage", "A") == pytest.approx(50.0)
    assert report.value("community_service_15min_coverage", "A") == pytest.approx(75.0)
    assert report.value("school_service_coverage", "A") == pytest.approx(50.0)  # 500 m
    assert report.value("kindergarten_service_coverage", "A") == pytest.approx(25.0)  # 300 m


def test_road_density_shelter_per_capita_waterlogging_and_population_density(engine: Engine) -> None:
    road_in = WUHAN.line((-1000, 0), (1000, 0))
    road_half = WUHAN.line((2000, 1000), (4000, 1000))  # only the 1,000 m west of x = 3,000 lies inside
    with engine.begin() as conn:
        ds = f.dataset(conn)
        _district(conn, WUHAN, population=40_000, built_up_area_km2=2.0)
        f.facility(conn, ds, "road", road_in, road_class="arterial")
        f.facility(conn, ds, "road", road_half, road_class="branch")
        f.facility(conn, ds, "shelter", WUHAN.box(500, 500, 100, 100), area_m2=20_000.0)
        f.facility(conn, ds, "shelter", WUHAN.box(-500, 500, 100, 100))  # area from geometry: 10,000 m²
        f.facility(conn, ds, "shelter", WUHAN.box(3500, 500, 100, 100), area_m2=99_999.0)  # outside
        for i in range(3):
            f.facility(conn, ds, "waterlogging_point", WUHAN.point(100 * i, -100))
        f.facility(conn, ds, "waterlogging_point", WUHAN.point(5000, 0))  # outside
    report = run_health_check(engine)
    road_km = (geodesic_length_m(road_in) + geodesic_length_m(road_half) / 2) / 1000
    assert report.value("road_network_density", "A") == pytest.approx(road_km / 2.0, rel=0.01)
    assert report.value("shelter_area_per_capita", "A") == pytest.approx(30_000 / 40_000, rel=0.01)
    assert report.value("waterlogging_point_density", "A") == pytest.approx(3 / 2.0)
    assert report.value("population_density", "A") == pytest.approx(20_000.0)
    assert report.value("high_density_area", "A") == pytest.approx(2.0)


def test_high_density_area_counts_only_districts_above_15000_per_km2(engine: Engine) -> None:
    east = Local(114.40, 30.58)
    with engine.begin() as conn:
        _district(conn, WUHAN, "A", population=14_000, built_up_area_km2=1.0)
        _district(conn, east, "B", population=48_000, built_up_area_km2=3.0)  # 16,000 / km²
    report = run_health_check(engine)
    assert report.value("high_density_area", "A") == 0.0
    assert report.value("high_density_area", "B") == pytest.approx(3.0)
    assert report.value("high_density_area") == pytest.approx(3.0)
    assert report.value("population_density") == pytest.approx(62_000 / 4.0)
    only_b = run_health_check(engine, district="B")
    assert only_b.districts == ["B"]


def test_heights_ages_and_safety_classes(engine: Engine) -> None:
    with engine.begin() as conn:
        ds = f.dataset(conn)
        _district(conn, WUHAN)
        _home(conn, ds, WUHAN, 0, 0, height=85.0, year_built=2024, safety_class="A")  # new, > 80 m
        _home(conn, ds, WUHAN, 100, 0, height=120.0, year_built=2010, safety_class="B")  # old-new, > 100 m
        _home(conn, ds, WUHAN, 200, 0, height=18.0, year_built=1995, safety_class="C")  # old estate, unsafe
        _home(conn, ds, WUHAN, 300, 0, height=12.0, year_built=1988, safety_class="D")  # old estate, unsafe
        _home(conn, ds, WUHAN, 400, 0, height=12.0)  # unknown year and class
        f.building(
            conn,
            ds,
            WUHAN.box(500, 0, 10, 10),
            height=150.0,
            use="office",
            year_built=2024,
            safety_class="D",
            district_code="A",
        )
    report = run_health_check(engine, new_since_year=2023)
    assert report.value("new_residential_over_80m", "A") == 1
    assert report.value("super_high_rise_count", "A") == 2
    assert report.value("old_residential_share", "A") == pytest.approx(100 * 2 / 4)
    assert report.value("unsafe_housing_share", "A") == pytest.approx(100 * 2 / 4)


def test_building_density_and_far_per_district_and_parcel_limits(engine: Engine) -> None:
    district_poly = WUHAN.box(0, 0, 6000, 6000)
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.district(conn, "A", district_poly, 1000)
        parcel_ok = f.parcel(conn, ds, WUHAN.box(0, 0, 200, 200), code="P1", max_density=0.30, max_far=2.0)
        parcel_over = f.parcel(conn, ds, WUHAN.box(1000, 0, 100, 100), code="P2", max_density=0.30, max_far=2.0)
        f.building(conn, ds, WUHAN.box(0, 0, 100, 100), storeys=6, district_code="A")  # 10,000 m² × 6
        f.building(conn, ds, WUHAN.box(1000, 0, 60, 60), gross_floor_area=9_000.0, district_code="A")
    report = run_health_check(engine)
    fp = geodesic_area_m2(WUHAN.box(0, 0, 100, 100)) + geodesic_area_m2(WUHAN.box(1000, 0, 60, 60))
    gfa = 6 * geodesic_area_m2(WUHAN.box(0, 0, 100, 100)) + 9_000.0
    land = geodesic_area_m2(district_poly)
    assert report.value("building_density", "A") == pytest.approx(100 * fp / land, rel=1e-3)
    assert report.value("floor_area_ratio", "A") == pytest.approx(gfa / land, rel=1e-3)
    by_id = {p["parcel_id"]: p for p in report.parcels}
    assert by_id[parcel_ok]["building_density_pct"] == pytest.approx(25.0, rel=1e-3)  # 100² / 200²
    assert by_id[parcel_ok]["floor_area_ratio"] == pytest.approx(1.5, rel=1e-3)  # 60,000 / 40,000
    assert by_id[parcel_ok]["exceeds"] is False
    assert by_id[parcel_over]["building_density_pct"] == pytest.approx(36.0, rel=1e-3)  # 60² / 100²
    assert by_id[parcel_over]["floor_area_ratio"] == pytest.approx(0.9, rel=1e-3)
    assert by_id[parcel_over]["over_density"] is True and by_id[parcel_over]["over_far"] is False
    assert report.value("parcels_over_limits", "A") == 1


def test_fire_coverage_follows_road_speeds_and_reaches_partly_along_edges(engine: Engine) -> None:
    # Station at x = 0 on an arterial (45 km/h = 12.5 m/s): 300 s reach 3,750 m along the road.
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.district(conn, "A", WUHAN.box(0, 0, 12_000, 6000), 1000)
        f.facility(conn, ds, "road", WUHAN.line((0, 0), (2000, 0), (5000, 0)), road_class="arterial")
        f.facility(conn, ds, "road", WUHAN.line((-3000, 0), (0, 0)), road_class="branch")  # 25 km/h: 2,083 m
        f.facility(conn, ds, "fire_station", WUHAN.point(0, 20))
        for x in (1000, 3600, 3950, -2000, -2250):
            f.building(conn, ds, WUHAN.box(x, 100, 10, 10), district_code="A")
    report = run_health_check(engine, fire_access_m=150.0)
    # covered: 1,000 and 3,600 (≤ 3,750 east); -2,000 (≤ 2,083 west); not: 3,950 (200 m beyond), -2,250
    assert report.value("fire_5min_coverage", "A") == pytest.approx(100 * 3 / 5)
    networkx = run_health_check(engine, fire_access_m=150.0, fire_method="networkx")
    assert networkx.value("fire_5min_coverage", "A") == report.value("fire_5min_coverage", "A")


def test_metric_measures_are_right_in_two_gauss_kruger_zones(engine: Engine) -> None:
    """The same 100 m × 100 m layout near 111°E (EPSG:4546) and 114°E (EPSG:4547) gives the same figures."""
    west, east = Local(111.0, 30.5), Local(114.0, 30.5)
    with engine.begin() as conn:
        ds = f.dataset(conn)
        for code, frame in (("W", west), ("E", east)):
            f.district(conn, code, frame.box(0, 0, 2000, 2000), 1000, built_up_area_km2=4.0)
            f.building(conn, ds, frame.box(0, 0, 100, 100), district_code=code, use="residential", storeys=1)
            f.facility(conn, ds, "kindergarten", frame.point(0, 290))  # 290 m from the centroid: covered
            f.building(conn, ds, frame.box(0, -320, 10, 10), district_code=code, use="residential")  # 610 m
            f.facility(conn, ds, "road", frame.line((-1000, 500), (1000, 500)))
    report = run_health_check(engine)
    for code, frame in (("W", west), ("E", east)):
        land = geodesic_area_m2(frame.box(0, 0, 2000, 2000))
        assert land == pytest.approx(4e6, rel=2e-3)
        fp = geodesic_area_m2(frame.box(0, 0, 100, 100)) + geodesic_area_m2(frame.box(0, -320, 10, 10))
        assert report.value("building_density", code) == pytest.approx(100 * fp / land, rel=1e-3)
        assert report.value("kindergarten_service_coverage", code) == pytest.approx(50.0)
        assert report.value("road_network_density", code) == pytest.approx(2.0 / 4.0, rel=5e-3)


def test_run_is_stored_with_inputs_version_and_one_result_per_indicator_and_district(engine: Engine) -> None:
    with engine.begin() as conn:
        ds = f.dataset(conn)
        _district(conn, WUHAN)
        _home(conn, ds, WUHAN, 0, 0)
    report = run_health_check(engine)
    with engine.connect() as conn:
        run = conn.execute(
            text("SELECT kind, status, software_version, inputs FROM analysis_run WHERE id = :i"), {"i": report.run_id}
        ).one()
        n, with_geom = conn.execute(
            text("SELECT count(*), count(geom) FROM analysis_result WHERE run_id = :i AND district_code = 'A'"),
            {"i": report.run_id},
        ).one()
    assert run.kind == "health-check" and run.status == "succeeded" and run.software_version
    assert [d["id"] for d in run.inputs["datasets"]] == [ds]
    assert n == len(INDICATORS) and with_geom == len(INDICATORS)


def test_unknown_district_is_a_clear_error(engine: Engine) -> None:
    from cim.errors import AnalysisError

    with pytest.raises(AnalysisError, match="not stored"):
        run_health_check(engine, district="nowhere")
    with pytest.raises(AnalysisError, match="invalid district code"):
        run_health_check(engine, district="A\x00")
    with pytest.raises(AnalysisError, match="four-digit year"):
        run_health_check(engine, new_since_year=20)
