"""OGC API – Features: landing page, conformance, collections, items paging, filters and CRS (Part 2)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from cim.crs import transform_xy
from cim.db.models import Building
from tests import factories

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@pytest.fixture
def city(client: TestClient) -> dict[str, list[int]]:
    """25 buildings on a grid in Wuhan (every 5th residential), a superseded one, two hydrants, a parcel."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    ids: dict[str, list[int]] = {"buildings": [], "hydrants": [], "old": []}
    with engine.begin() as conn:
        ds = factories.dataset(conn, "blocks")
        for i in range(25):
            lon, lat = 114.30 + (i % 5) * 0.001, 30.58 + (i // 5) * 0.001
            use = "residential" if i % 5 == 0 else "office"
            ids["buildings"].append(
                factories.building(conn, ds, factories.square(lon, lat), height=10 + i, use=use, name=f"B{i}")
            )
        old = factories.building(conn, ds, factories.square(114.31, 30.59), name="demolished")
        conn.execute(
            update(Building)
            .where(Building.id == old)
            .values(valid_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), valid_to=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
        )
        ids["old"].append(old)
        fs = factories.dataset(conn, "hydrants", layer="facilities")
        for lon in (114.301, 114.302):
            ids["hydrants"].append(factories.facility(conn, fs, "hydrant", shapely.Point(lon, 30.581), name="H"))
        factories.facility(conn, fs, "street_lamp", shapely.Point(114.303, 30.581))
        factories.parcel(conn, ds, shapely.box(114.30, 30.58, 114.31, 30.59), code="P1", max_height=60.0)
    return ids


def _rels(doc: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in doc["links"]}


def test_landing_page_and_conformance(client: TestClient) -> None:
    landing = client.get("/").json()
    rels = _rels(landing)
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert client.get(rels["service-desc"]["href"]).json()["openapi"].startswith("3.0")
    classes = client.get("/conformance").json()["conformsTo"]
    for suffix in (
        "features-1/1.0/conf/core",
        "features-1/1.0/conf/geojson",
        "features-1/1.0/conf/oas30",
        "features-2/1.0/conf/crs",
    ):
        assert any(c.endswith(suffix) for c in classes)


def test_collections_list_every_contracted_id_with_their_crs(client: TestClient) -> None:
    doc = client.get("/collections").json()
    ids = {c["id"] for c in doc["collections"]}
    assert {
        "buildings",
        "elements",
        "facilities",
        "facilities-hydrant",
        "facilities-pipe_gas",
        "parcels",
        "planning_zones",
        "districts",
        "analysis_results",
    } <= ids
    assert doc["crs"][0] == CRS84
    assert EPSG + "4547" in doc["crs"] and EPSG + "4513" in doc["crs"] and EPSG + "4554" in doc["crs"]
    for coll in doc["collections"]:
        assert coll["crs"] == ["#/crs"]  # Part 2: a reference to the global list above
        assert coll["storageCrs"] == EPSG + "4490"
        assert {"self", "items"} <= set(_rels(coll))


def test_collection_has_extent_and_unknown_is_404(client: TestClient, city: dict) -> None:
    doc = client.get("/collections/buildings").json()
    assert doc["crs"][0] == CRS84 and EPSG + "4547" in doc["crs"] and doc["storageCrs"] == EPSG + "4490"
    w, s, _e, _n = doc["extent"]["spatial"]["bbox"][0]
    assert w == pytest.approx(114.30) and s == pytest.approx(30.58)
    assert doc["extent"]["temporal"]["interval"][0][1] is None
    r = client.get("/collections/nope")
    assert r.status_code == 404 and r.json()["code"] == "not-found"


def test_items_are_paged_with_number_matched_and_next_prev_links(client: TestClient, city: dict) -> None:
    r = client.get("/collections/buildings/items", params={"limit": 10})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-crs"] == f"<{CRS84}>"
    page = r.json()
    assert page["type"] == "FeatureCollection"
    assert page["numberMatched"] == 25 and page["numberReturned"] == 10  # the superseded one is not live
    assert "prev" not in _rels(page)
    seen = [f["id"] for f in page["features"]]
    while "next" in _rels(page):
        page = client.get(_rels(page)["next"]["href"]).json()
        assert "prev" in _rels(page)
        seen += [f["id"] for f in page["features"]]
    assert sorted(seen) == sorted(city["buildings"])
    feature = client.get("/collections/buildings/items", params={"limit": 1}).json()["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert "crs" not in feature["geometry"]  # RFC 7946: the CRS is named by the Content-Crs header
    assert {"name", "use", "height", "storeys", "safety_class", "valid_from"} <= set(feature["properties"])


def test_bbox_and_property_filters(client: TestClient, city: dict) -> None:
    r = client.get("/collections/buildings/items", params={"bbox": "114.2995,30.5795,114.3015,30.5815"}).json()
    assert r["numberMatched"] == 4  # the 2×2 corner of the grid
    residential = client.get("/collections/buildings/items", params={"use": "residential", "limit": 100}).json()
    assert residential["numberMatched"] == 5
    assert all(f["properties"]["use"] == "residential" for f in residential["features"])
    hydrants = client.get("/collections/facilities-hydrant/items").json()
    assert sorted(f["id"] for f in hydrants["features"]) == sorted(city["hydrants"])
    assert client.get("/collections/facilities/items").json()["numberMatched"] == 3
    parcels = client.get("/collections/parcels/items", params={"code": "P1"}).json()
    assert parcels["features"][0]["properties"]["max_height"] == 60.0


def test_bad_parameters_are_400_with_json(client: TestClient, city: dict) -> None:
    for params in (
        {"colour": "red"},
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"limit": 0},
        {"storeys": "tall"},
        {"datetime": "yesterday"},
        {"crs": EPSG + "3857"},
        {"crs": "nonsense"},
        {"bbox": "1e10,1e10,2e10,2e10", "bbox-crs": EPSG + "4547"},
        {"filter": "height > 'abc'"},
    ):
        r = client.get("/collections/buildings/items", params=params)
        assert r.status_code == 400, params
        assert set(r.json()) == {"code", "title", "detail"}


def test_limit_above_maximum_is_reduced(client: TestClient, city: dict) -> None:
    r = client.get("/collections/buildings/items", params={"limit": 50_000}).json()
    assert r["numberReturned"] == 25


def test_datetime_selects_rows_valid_then(client: TestClient, city: dict) -> None:
    then = client.get("/collections/buildings/items", params={"datetime": "2021-06-01T00:00:00Z"}).json()
    assert [f["id"] for f in then["features"]] == city["old"]
    interval = client.get(
        "/collections/buildings/items", params={"datetime": "2021-01-01T00:00:00Z/..", "limit": 100}
    ).json()
    assert interval["numberMatched"] == 26


def test_gauss_kruger_output_matches_cim_crs_in_northing_easting_order(client: TestClient, city: dict) -> None:
    fid = city["hydrants"][0]
    r = client.get(f"/collections/facilities/items/{fid}", params={"crs": EPSG + "4547"})
    assert r.status_code == 200
    assert r.headers["content-crs"] == f"<{EPSG}4547>"
    north, east = r.json()["geometry"]["coordinates"][:2]
    x, y = transform_xy([114.301], [30.581], 4490, 4547)
    assert east == pytest.approx(float(x[0]), abs=0.01)
    assert north == pytest.approx(float(y[0]), abs=0.01)
    assert 3_300_000 < north < 3_400_000 and 400_000 < east < 600_000


def test_cgcs2000_geographic_output_is_lat_lon_and_crs84_lon_lat(client: TestClient, city: dict) -> None:
    fid = city["hydrants"][0]
    lat, lon = client.get(f"/collections/facilities/items/{fid}", params={"crs": EPSG + "4490"}).json()["geometry"][
        "coordinates"
    ][:2]
    assert (lon, lat) == pytest.approx((114.301, 30.581))
    lon2, lat2 = client.get(f"/collections/facilities/items/{fid}").json()["geometry"]["coordinates"][:2]
    assert (lon2, lat2) == pytest.approx((114.301, 30.581))


def test_bbox_crs_in_gauss_kruger_and_in_lat_lon(client: TestClient, city: dict) -> None:
    x, y = transform_xy([114.2995, 114.3015], [30.5795, 30.5815], 4490, 4547)
    gk = f"{y[0]},{x[0]},{y[1]},{x[1]}"  # northing, easting: the axis order of EPSG:4547
    r = client.get("/collections/buildings/items", params={"bbox": gk, "bbox-crs": EPSG + "4547"}).json()
    assert r["numberMatched"] == 4
    latlon = client.get(
        "/collections/buildings/items", params={"bbox": "30.5795,114.2995,30.5815,114.3015", "bbox-crs": EPSG + "4490"}
    ).json()
    assert latlon["numberMatched"] == 4


def test_single_item_and_missing_item(client: TestClient, city: dict) -> None:
    fid = city["buildings"][3]
    r = client.get(f"/collections/buildings/items/{fid}")
    assert r.status_code == 200
    feature = r.json()
    assert feature["type"] == "Feature" and feature["id"] == fid
    assert {"self", "collection"} <= set(_rels(feature))
    assert client.get("/collections/buildings/items/999999").status_code == 404
    assert client.get("/collections/buildings/items/abc").status_code == 404
    assert client.get(f"/collections/facilities-hydrant/items/{fid}").status_code == 404


def test_cql2_text_and_json_filters(client: TestClient, city: dict) -> None:
    text = client.get(
        "/collections/buildings/items", params={"filter": "use = 'residential' AND height > 20", "limit": 100}
    ).json()
    assert text["numberMatched"] == 2  # residential heights 10, 15, 20, 25, 30
    spatial = client.get(
        "/collections/buildings/items",
        params={
            "filter": "S_INTERSECTS(geometry, POLYGON((114.2995 30.5795, 114.3015 30.5795, 114.3015 30.5815, "
            "114.2995 30.5815, 114.2995 30.5795)))"
        },
    ).json()
    assert spatial["numberMatched"] == 4
    as_json = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "use"}, "office"]},
            {"op": "<", "args": [{"property": "storeys"}, 100]},
        ],
    }
    r = client.get("/collections/buildings/items", params={"filter": json.dumps(as_json), "filter-lang": "cql2-json"})
    assert r.status_code == 200
    assert r.json()["numberMatched"] == 0  # storeys are NULL in the fixture rows
    for bad in ("height >", "secret_column = 1", "1 = 1; DROP TABLE building"):
        r = client.get("/collections/buildings/items", params={"filter": bad})
        assert r.status_code == 400, bad
    assert client.get("/collections/buildings/items").json()["numberMatched"] == 25


def test_queryables_describe_the_filterable_properties(client: TestClient) -> None:
    r = client.get("/collections/buildings/queryables")
    assert r.headers["content-type"].startswith("application/schema+json")
    props = r.json()["properties"]
    assert props["use"] == {"type": "string"} and props["storeys"] == {"type": "integer"}
    assert "geometry" in props
