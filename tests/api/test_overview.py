"""``/overview`` and ``/overview/history``: cities implied by district codes, counts, extents, ETags."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from cim.api.app import create_app
from cim.api.settings import ApiSettings, ViewerSettings
from cim.db.datasets import supersede_dataset
from cim.settings import Settings
from tests import factories
from tests.api.onemap_seed import seed_city


def test_overview_names_the_city_of_the_districts_and_counts_what_stands_in_it(
    client: TestClient, engine: Engine
) -> None:
    seed_city(engine)
    response = client.get("/overview")
    assert response.status_code == 200
    body = response.json()
    assert body["bbox"] == [114.29, 30.58, 114.31, 30.59]
    [wuhan] = body["cities"]
    assert wuhan["code"] == "420100"
    assert wuhan["name"] == {"zh": "武汉市", "en": "Wuhan"}
    assert wuhan["districts"] == ["420102", "420103"]
    assert wuhan["counts"] == {"buildings": 3, "facilities": 4}
    assert wuhan["bbox"] == [114.29, 30.58, 114.31, 30.59]
    names = {f["properties"]["name"]: f["properties"]["name_en"] for f in body["districts"]["features"]}
    assert names == {"江岸区": "Jiang'an District", "江汉区": "Jianghan District"}
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in body["districts"]["features"])
    assert body["overview_above_m"] > 10_000


def test_a_row_in_a_city_outline_and_one_of_its_districts_counts_once(client: TestClient, engine: Engine) -> None:
    """Rows without a district code are placed by where they stand: one standing in two districts of a city
    at once (the city's own outline and one of its districts) counts once; one in no district, nowhere."""
    with engine.begin() as conn:
        factories.district(conn, "420100", shapely.box(114.0, 30.0, 114.1, 30.1), 9_000_000, level="city")
        factories.district(conn, "420102", shapely.box(114.0, 30.0, 114.05, 30.1), 100_000)
        factories.district(conn, "420202", shapely.box(114.1, 30.0, 114.2, 30.1), 200_000)
        ds = factories.dataset(conn, "overlapping")
        factories.facility(conn, ds, "hydrant", shapely.Point(114.02, 30.05))  # in 武汉市 and in 420102
        factories.facility(conn, ds, "hydrant", shapely.Point(114.15, 30.05))  # in 420202 only
        factories.facility(conn, ds, "hydrant", shapely.Point(115.0, 31.0))  # in no district: not counted
        factories.building(conn, ds, factories.square(114.01, 30.01))
        factories.building(conn, ds, factories.square(114.06, 30.01))  # the city's outline only
    counts = {c["code"]: c["counts"] for c in client.get("/overview").json()["cities"]}
    assert counts == {"420100": {"buildings": 2, "facilities": 1}, "420200": {"buildings": 0, "facilities": 1}}


def test_overview_revalidates_with_its_etag_until_the_data_change(client: TestClient, engine: Engine) -> None:
    seed_city(engine)
    first = client.get("/overview")
    etag = first.headers["etag"]
    assert client.get("/overview", headers={"If-None-Match": etag}).status_code == 304
    with engine.begin() as conn:
        ds = factories.dataset(conn, "more")
        factories.building(conn, ds, factories.square(114.301, 30.581), height=5.0)
    again = client.get("/overview", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert again.json()["cities"][0]["counts"]["buildings"] == 4


def test_overview_of_an_empty_platform_has_no_bbox_and_no_cities(client: TestClient) -> None:
    body = client.get("/overview").json()
    assert body["bbox"] is None
    assert body["cities"] == []


def test_overview_rejects_a_bad_simplification_tolerance(client: TestClient) -> None:
    response = client.get("/overview?simplify=-1")
    assert response.status_code == 400 or response.status_code == 422
    assert "simplify" in response.text


def test_history_lists_the_moments_of_a_superseded_dataset(client: TestClient, engine: Engine) -> None:
    assert client.get("/overview/history").json() == {"has_history": False, "moments": []}
    with engine.begin() as conn:
        old = factories.dataset(conn, "buildings-2025")
    with engine.begin() as conn:
        supersede_dataset(conn, old)
        factories.dataset(conn, "buildings-2026")
    body = client.get("/overview/history").json()
    assert body["has_history"] is True
    events = [(d["name"], d["event"]) for m in body["moments"] for d in m["datasets"]]
    assert ("buildings-2025", "loaded") in events
    assert ("buildings-2025", "superseded") in events
    assert [m["at"] for m in body["moments"]] == sorted(m["at"] for m in body["moments"])


def test_a_restarted_server_answers_the_overview_from_its_disk_cache_without_counting_again(
    client: TestClient, engine: Engine, settings: Settings, api_settings: ApiSettings
) -> None:
    seed_city(engine)
    first = client.get("/overview")
    assert (settings.data_path / "cache" / "overview").is_dir()
    app = create_app(settings, api_settings=api_settings, viewer_settings=ViewerSettings())
    seen: list[str] = []
    event.listen(app.state.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    try:
        with TestClient(app) as restarted:
            again = restarted.get("/overview")
    finally:
        app.state.engine.dispose()
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert not [s for s in seen if "ST_PointOnSurface" in s or "ST_Extent" in s]  # no counts, no extents


def test_concurrent_first_calls_compute_the_overview_once(client: TestClient, engine: Engine) -> None:
    seed_city(engine)
    seen: list[str] = []
    app_engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    event.listen(app_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda _: client.get("/overview").json(), range(4)))
    assert all(b == bodies[0] for b in bodies)
    assert len([s for s in seen if "ST_Extent(geom)" in s and "array_agg" in s]) == 1
