"""Vector ingest of messy real-world files: what OpenStreetMap exports and old Chinese survey data look like.

Each file either loads (features that cannot be used are skipped and counted with a reason) or is refused
with nothing stored; never half of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio.raw
import pytest
import shapely
from sqlalchemy import Engine, text

from cim import crs as cimcrs
from cim.errors import CrsError
from ingest.vector import ingest_vector

LON, LAT = 114.30, 30.58  # Wuhan


def _square(i: int, size: float = 0.0002) -> list[list[float]]:
    lon = LON + i * 0.0005
    return [[lon, LAT], [lon + size, LAT], [lon + size, LAT + size], [lon, LAT + size], [lon, LAT]]


def _osm_feature(osm_id: int, geometry: dict[str, Any], **tags: Any) -> dict[str, Any]:
    """A feature as OpenStreetMap exports write it: a string feature id and the numeric id as a property."""
    return {
        "type": "Feature",
        "id": f"way/{osm_id}",
        "properties": {"id": osm_id, "@id": f"way/{osm_id}", **tags},
        "geometry": geometry,
    }


def _polygon(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


def _geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return path


def _one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def _counts(engine: Engine) -> tuple[int, int, int]:
    row = _one(
        engine,
        "SELECT (SELECT count(*) FROM building), (SELECT count(*) FROM facility), (SELECT count(*) FROM dataset)",
    )
    return int(row[0]), int(row[1]), int(row[2])


def _assert_accounted(report: Any) -> None:
    """Every feature read is either stored or skipped for a counted reason."""
    assert report.read == report.stored + report.skipped_features


def test_openstreetmap_geojson_with_an_id_property_loads_and_reports_the_renamed_field(engine, settings, tmp_path):
    path = _geojson(
        tmp_path / "export.geojson",
        [
            _osm_feature(
                101, _polygon(_square(0)), building="apartments", name="汉街一号楼", **{"building:levels": "6"}
            ),
            _osm_feature(102, _polygon(_square(1)), building="retail"),
        ],
    )
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert (report.read, report.stored, report.skipped_features) == (2, 2, 0)
    assert report.renamed_fields == {"id": "id_1"}
    assert report.to_dict()["renamed_fields"] == {"id": "id_1"}
    row = _one(engine, "SELECT name, use, storeys, attributes FROM building ORDER BY id LIMIT 1")
    assert (row.name, row.use, row.storeys) == ("汉街一号楼", "residential", 6)
    assert row.attributes["id_1"] == 101 and row.attributes["@id"] == "way/101"
    summary = _one(engine, "SELECT summary FROM dataset WHERE id = :i", i=report.dataset_id).summary
    assert summary["renamed_fields"] == {"id": "id_1"}


def test_properties_named_like_the_feature_id_geometry_or_ingest_columns_are_kept_under_new_names(
    engine, settings, tmp_path
):
    path = _geojson(
        tmp_path / "odd.geojson",
        [
            {
                "type": "Feature",
                "properties": {"OGC_FID": 7, "wkb_geometry": "POINT (1 2)", "use_source": "survey", "building": "塔楼"},
                "geometry": _polygon(_square(0)),
            }
        ],
    )
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert report.stored == 1
    assert report.renamed_fields == {
        "OGC_FID": "OGC_FID_1",
        "wkb_geometry": "wkb_geometry_1",
        "use_source": "use_source_1",
    }
    attributes = _one(engine, "SELECT attributes FROM building").attributes
    # the ingest's own key (the unknown use value) and the file's field both survive
    assert attributes["use_source"] == "塔楼" and attributes["use_source_1"] == "survey"
    assert attributes["OGC_FID_1"] == 7 and attributes["wkb_geometry_1"] == "POINT (1 2)"


def test_map_option_may_name_a_renamed_field_by_its_original_name(engine, settings, tmp_path):
    path = _geojson(tmp_path / "export.geojson", [_osm_feature(5, _polygon(_square(0)), building="yes")])
    report = ingest_vector(engine, path, settings, layer="buildings", mapping={"source_id": "id"})
    assert report.mapping["source_id"] == "id_1"
    assert _one(engine, "SELECT source_id FROM building").source_id == "5"


def test_cli_prints_the_renamed_fields_of_an_openstreetmap_export(run_cim, tmp_path):
    path = _geojson(tmp_path / "export.geojson", [_osm_feature(9, _polygon(_square(0)), building="house")])
    result = run_cim("ingest", "vector", str(path), "--layer", "buildings", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stored"] == 1 and doc["renamed_fields"] == {"id": "id_1"}


def test_points_in_a_building_layer_are_skipped_and_counted(engine, settings, tmp_path):
    path = _geojson(
        tmp_path / "mixed.geojson",
        [
            _osm_feature(1, _polygon(_square(0)), building="yes"),
            _osm_feature(2, {"type": "Point", "coordinates": [LON, LAT]}, building="yes", entrance="main"),
            _osm_feature(3, {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.001, LAT]]}, building="roof"),
        ],
    )
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert (report.stored, report.skipped_geometry_type, report.skipped_invalid) == (1, 2, 0)
    _assert_accounted(report)
    assert _counts(engine)[0] == 1


def test_rings_with_two_points_are_skipped_as_invalid_and_the_rest_loads(engine, settings, tmp_path):
    a, b = _square(2)[:2]
    unclosed = _square(3)[:4]  # four corners, the closing point missing: repairable
    path = _geojson(
        tmp_path / "broken.geojson",
        [
            _osm_feature(1, _polygon(_square(0)), building="yes"),
            _osm_feature(2, _polygon([a, b]), building="yes"),  # two points: GEOS refuses to build it
            _osm_feature(3, _polygon([a, b, a]), building="yes"),  # closed, but no area
            _osm_feature(4, _polygon(unclosed), building="yes"),
            _osm_feature(5, _polygon(_square(4)), building="yes"),
        ],
    )
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert (report.read, report.stored, report.skipped_invalid, report.repaired) == (5, 3, 2, 1)
    _assert_accounted(report)
    assert report.to_dict()["skipped_features"] == 2
    row = _one(engine, "SELECT count(*) n, bool_and(ST_IsValid(footprint)) valid FROM building")
    assert (row.n, row.valid) == (3, True)
    counts = _one(engine, "SELECT counts FROM dataset WHERE id = :i", i=report.dataset_id).counts
    assert counts["skipped_invalid"] == 2 and counts["stored"] == 3


def test_footprints_missing_their_closing_point_are_closed_and_counted_as_repaired(engine, settings, tmp_path):
    # every other footprint is a 4-corner unclosed ring: the fast WKB path must not crash on them either
    features = [_osm_feature(i, _polygon(_square(i) if i % 2 else _square(i)[:4]), building="yes") for i in range(6)]
    report = ingest_vector(engine, _geojson(tmp_path / "r.geojson", features), settings, layer="buildings")
    assert (report.stored, report.repaired, report.skipped_features) == (6, 3, 0)


def test_broken_facility_geometry_is_skipped_and_counted(engine, settings, tmp_path):
    parks = _geojson(
        tmp_path / "parks.geojson",
        [
            _osm_feature(1, _polygon(_square(0, 0.002)), leisure="park", name="中山公园"),
            _osm_feature(2, _polygon(_square(1)[:2]), leisure="park"),
        ],
    )
    report = ingest_vector(engine, parks, settings, layer="facilities", kind="park")
    assert (report.stored, report.skipped_invalid) == (1, 1)
    roads = _geojson(
        tmp_path / "roads.geojson",
        [
            _osm_feature(3, {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.01, LAT]]}, highway="primary"),
            _osm_feature(4, {"type": "LineString", "coordinates": [[LON, LAT]]}, highway="service"),
        ],
    )
    report = ingest_vector(engine, roads, settings, layer="facilities", kind="road")
    _assert_accounted(report)
    assert report.stored == 1 and report.skipped_features == 1
    assert _counts(engine)[1] == 2


def test_heights_of_zero_and_632_m_are_read_as_unknown_and_as_given(engine, settings, tmp_path):
    path = _geojson(
        tmp_path / "towers.geojson",
        [
            _osm_feature(1, _polygon(_square(0)), building="office", height="632", name="上海中心大厦"),
            _osm_feature(2, _polygon(_square(1)), building="yes", height="0"),
            _osm_feature(3, _polygon(_square(2)), building="yes", height="0", **{"building:levels": "4"}),
        ],
    )
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert (report.stored, report.heights_defaulted, report.heights_from_storeys) == (3, 1, 1)
    with engine.connect() as conn:
        heights = [r[0] for r in conn.execute(text("SELECT height FROM building ORDER BY id"))]
    assert heights == [632.0, 9.0, 12.0]


def _write_gbk_shapefile(path: Path) -> Path:
    x0, y0 = cimcrs.transform_xy([LON], [LAT], 4490, 4547)
    xs = x0[0] + np.arange(3) * 50.0
    boxes = shapely.box(xs, y0[0], xs + 20, y0[0] + 20)
    table = pa.table(
        {
            "名称": ["汉街一号楼", "江汉路商场", "幸福里小区3栋"],
            "层数": [6, 3, 30],
            "用途": ["住宅", "商业", "商住混合"],
            "地址": ["汉街1号", "江汉路2号", "解放大道8号"],
            "geometry": pa.array(list(shapely.to_wkb(boxes)), pa.binary()),
        }
    )
    pyogrio.raw.write_arrow(
        table,
        path,
        driver="ESRI Shapefile",
        geometry_name="geometry",
        geometry_type="Polygon",
        crs="EPSG:4547",
        encoding="GBK",
    )
    path.with_suffix(".cpg").unlink()
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    dbf[29] = 0  # no language-driver byte either, as many old survey files have
    path.with_suffix(".dbf").write_bytes(bytes(dbf))
    return path


def test_chinese_shapefile_in_gbk_without_cpg_loads_with_chinese_names(engine, settings, tmp_path):
    path = _write_gbk_shapefile(tmp_path / "房屋.shp")
    assert "汉街".encode("gbk") in path.with_suffix(".dbf").read_bytes()
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert report.stored == 3 and report.mapping["name"] == "名称"
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, use, storeys, address FROM building ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("汉街一号楼", "residential", 6, "汉街1号"),
        ("江汉路商场", "commercial", 3, "江汉路2号"),
        ("幸福里小区3栋", "mixed", 30, "解放大道8号"),
    ]


def test_a_messy_export_refused_in_its_last_batch_stores_nothing(engine, settings, tmp_path, monkeypatch):
    import ingest.vector as iv

    before = _counts(engine)
    features = [_osm_feature(i, _polygon(_square(i)), building="yes") for i in range(4)]
    features.insert(1, _osm_feature(90, _polygon(_square(0)[:2]), building="yes"))  # skipped, not fatal
    features.append(_osm_feature(99, _polygon([[lat, lon] for lon, lat in _square(0)]), building="yes"))  # swapped
    monkeypatch.setattr(iv, "BATCH_SIZE", 2)
    with pytest.raises(CrsError):
        ingest_vector(engine, _geojson(tmp_path / "bad.geojson", features), settings, layer="buildings")
    assert _counts(engine) == before


def test_uploaded_openstreetmap_export_with_a_two_point_ring_finishes_its_ingest_job(settings, tmp_path):
    """The same file sent to the service: the job succeeds and reports what it skipped and renamed."""
    import time

    from fastapi.testclient import TestClient

    from cim.api.app import create_app
    from cim.api.security import new_api_key
    from cim.api.settings import ApiSettings, ViewerSettings

    a, b = _square(1)[:2]
    path = _geojson(
        tmp_path / "export.geojson",
        [
            _osm_feature(1, _polygon(_square(0)), building="apartments"),
            _osm_feature(2, _polygon([a, b]), building="yes"),
            _osm_feature(3, _polygon(_square(2)), building="yes"),
        ],
    )
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    try:
        with TestClient(app) as client:
            key = new_api_key(app.state.engine, name="planner", role="planner")[1]
            headers = {"X-API-Key": key}
            r = client.post(
                "/jobs/ingest",
                headers=headers,
                data={"layer": "buildings"},
                files={"file": ("export.geojson", path.read_bytes(), "application/geo+json")},
            )
            assert r.status_code == 202, r.text
            deadline = time.monotonic() + 120
            while (job := client.get(r.json()["url"], headers=headers).json())["status"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
            assert job["status"] == "succeeded", job["error"]
            assert (job["result"]["stored"], job["result"]["skipped_invalid"]) == (2, 1)
            assert job["result"]["renamed_fields"] == {"id": "id_1"}
    finally:
        app.state.engine.dispose()
