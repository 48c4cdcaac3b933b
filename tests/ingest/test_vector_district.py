"""The synthetic district: generated files, loaded end to end, and the province-scale footprints."""

from __future__ import annotations

import pyogrio
import pytest
from sqlalchemy import text

from cim.vocabulary import FACILITY_KINDS
from ingest.vector import ingest_vector
from sample_models.district import generate_district
from sample_models.load import load_district
from sample_models.province import HUBEI_BOUNDS
from sample_models.site import DISTRICT_BOUNDS, OFFICE_CLEARANCE_M, OFFICE_GROUND_HEIGHT, OFFICE_SITE

pytestmark = pytest.mark.xdist_group("vector-district")  # the module's shared fixture is built by one worker


@pytest.fixture(scope="module")
def district_files(tmp_path_factory):
    return generate_district(tmp_path_factory.mktemp("district"), buildings=800, seed=3)


def test_generated_district_has_every_theme(district_files):
    layers = {name for name, _ in pyogrio.list_layers(district_files.gpkg)}
    assert {
        "buildings",
        "parcels",
        "planning",
        "districts",
        "road",
        "pipe_water",
        "pipe_drainage",
        "pipe_gas",
        "manhole",
        "park",
        "greenway",
        "school",
        "kindergarten",
        "clinic",
        "community_service",
        "fire_station",
        "shelter",
        "waterlogging_point",
        "water_body",
    } <= layers
    assert all(kind in FACILITY_KINDS for _, target, kind in district_files.layers if target == "facilities")
    assert district_files.buildings == 800
    assert pyogrio.read_info(district_files.gpkg, layer="buildings")["crs"] == "EPSG:4547"
    assert district_files.shapefile.with_suffix(".cpg").read_text().strip().upper() in {"GBK", "CP936"}


def test_district_loads_end_to_end(engine, settings, district_files):
    reports = load_district(engine, settings, district_files)
    assert reports[0].kind == "dem" and all(not r.skipped for r in reports)
    with engine.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).all()  # noqa: E731
        ((n, tall, very_tall, unsafe, dem_based),) = q(
            "SELECT count(*), count(*) FILTER (WHERE height > 80), count(*) FILTER (WHERE height > 100), "
            "count(*) FILTER (WHERE safety_class IN ('C','D')), count(*) FILTER (WHERE base_height > 0) "
            "FROM building WHERE valid_to IS NULL"
        )
        assert n == 800 and tall > 0 and very_tall == 2 and unsafe > 0 and dem_based == 800
        ((w, s, e, nn),) = q(
            "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM "
            "(SELECT ST_Extent(footprint)::geometry x FROM building) t"
        )
        west, south, east, north = DISTRICT_BOUNDS
        assert west <= w and e <= east and south <= s and nn <= north
        near_office = q(
            f"SELECT count(*) FROM building WHERE ST_DWithin(footprint::geography, "
            f"ST_SetSRID(ST_MakePoint({OFFICE_SITE[0]}, {OFFICE_SITE[1]}), 4490)::geography, "
            f"{OFFICE_CLEARANCE_M})"
        )[0][0]
        assert near_office == 0
        office = q(
            f"SELECT code, max_height, max_far FROM parcel WHERE ST_Contains(geom, "
            f"ST_SetSRID(ST_MakePoint({OFFICE_SITE[0]}, {OFFICE_SITE[1]}), 4490))"
        )
        assert office == [("JH-OFFICE-01", 60.0, 3.0)]
        districts = q("SELECT code, population FROM district ORDER BY code")
        assert [d[0] for d in districts] == ["420102", "420103", "420106"] and all(d[1] > 0 for d in districts)
        kinds = dict(q("SELECT kind, count(*) FROM facility GROUP BY kind"))
        assert {"road", "pipe_gas", "manhole", "park", "school", "fire_station", "shelter", "water_body"} <= set(kinds)
        parks = sorted(r[0] for r in q("SELECT area_m2 FROM facility WHERE kind = 'park'"))
        assert parks[0] < 2000 and any(2000 <= a <= 5000 for a in parks) and parks[-1] > 5000
        road_classes = {r[0] for r in q("SELECT DISTINCT road_class FROM facility WHERE kind='road'")}
        assert {"主干路", "次干路"} <= road_classes
    from cim.dem import sample_heights

    assert sample_heights(district_files.dem, [OFFICE_SITE[0]], [OFFICE_SITE[1]])[0] == pytest.approx(
        OFFICE_GROUND_HEIGHT, abs=0.05
    )


def test_gbk_shapefile_of_the_district_matches_the_geopackage(engine, settings, district_files):
    ingest_vector(engine, district_files.shapefile, settings, layer="buildings")
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name, use, safety_class FROM building ORDER BY source_id LIMIT 3")).all()
    gpkg = pyogrio.read_dataframe(district_files.gpkg, layer="buildings", max_features=3, read_geometry=False)
    assert [n[0] for n in names] == list(gpkg["名称"])
    assert all(n[1] is not None and n[2] in "ABCD" for n in names)


def test_province_mode_writes_one_file_per_gauss_kruger_zone(engine, settings, tmp_path):
    files = generate_district(tmp_path, buildings=3000, seed=1, extent=HUBEI_BOUNDS)
    crss = {pyogrio.read_info(p)["crs"] for p in files.zone_files}
    assert crss <= {"EPSG:4545", "EPSG:4546", "EPSG:4547", "EPSG:4548"} and len(crss) >= 3
    assert sum(files.counts.values()) == 3000
    zone = next(p for p in files.zone_files if p.name.endswith("4546.gpkg"))
    report = ingest_vector(engine, zone, settings, layer="buildings")
    assert report.stored == files.counts["EPSG:4546"]
    with engine.connect() as conn:
        lo, hi = conn.execute(
            text("SELECT min(ST_X(ST_Centroid(footprint))), max(ST_X(ST_Centroid(footprint))) FROM building")
        ).one()
    assert lo >= 109.5 and hi <= 112.5
