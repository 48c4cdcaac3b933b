"""Building and element details, search, datasets and tilesets lists."""

from __future__ import annotations

from pathlib import Path

import shapely
from fastapi.testclient import TestClient
from geoalchemy2.shape import from_shape
from sqlalchemy import Engine, insert

from cim.db.models import Element, ModelVersion, Review, Tileset
from tests import factories


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        ds = factories.dataset(conn, "office-model", kind="ifc", layer="buildings")
        bid = factories.building(
            conn,
            ds,
            factories.square(114.30, 30.58),
            height=45.0,
            name="Riverside Office",
            address="1 Jiang'an Rd",
            use="office",
            storeys=12,
            safety_class="B",
            attributes={"owner": "city"},
        )
        for i, cls in enumerate(["IfcWall", "IfcWall", "IfcSlab"]):
            conn.execute(
                insert(Element).values(
                    global_id=f"2O2Fr$t4X7Zf8NOew3FL{i:02d}",
                    ifc_class=cls,
                    name=f"{cls} {i}",
                    storey="Level 1",
                    properties={"Pset_WallCommon": {"IsExternal": True}},
                    building_id=bid,
                    dataset_id=ds,
                    location=from_shape(shapely.Point(114.3001, 30.5801, 12.5), srid=4490),
                )
            )
        conn.execute(
            insert(Review).values(
                file_name="office.ifc", sha256="1" * 64, status="passed", passed=True, building_id=bid
            )
        )
        conn.execute(
            insert(ModelVersion).values(
                model_key="office",
                version=1,
                file_name="office.ifc",
                storage_key="ab/cd",
                sha256="2" * 64,
                size_bytes=10,
                building_id=bid,
            )
        )
        conn.execute(
            insert(Tileset).values(
                name="city",
                path="/x/city",
                layers=["buildings", "terrain"],
                tile_count=5,
                feature_count=9,
                bounds=from_shape(shapely.box(114.28, 30.56, 114.33, 30.60), srid=4490),
                options={"terrain": "terrain"},
            )
        )
    return {"building": bid}


def test_building_detail_has_elements_sources_reviews_and_archive(client: TestClient) -> None:
    ids = _seed(client.app.state.engine)  # type: ignore[attr-defined]
    r = client.get(f"/buildings/{ids['building']}")
    assert r.status_code == 200
    b = r.json()
    assert b["name"] == "Riverside Office" and b["height"] == 45.0 and b["storeys"] == 12
    assert b["elements"] == {"count": 3, "by_class": {"IfcSlab": 1, "IfcWall": 2}}
    assert [d["name"] for d in b["datasets"]] == ["office-model"]
    assert b["reviews"][0]["passed"] is True and b["archive"][0]["version"] == 1
    w, s, e, n = b["bbox"]
    assert w < b["centroid"][0] < e and s < b["centroid"][1] < n
    assert b["attributes"] == {"owner": "city"}
    missing = client.get("/buildings/987654")
    assert missing.status_code == 404 and missing.json()["code"] == "not-found"


def test_element_detail_and_search(client: TestClient) -> None:
    ids = _seed(client.app.state.engine)  # type: ignore[attr-defined]
    e = client.get("/elements/2O2Fr$t4X7Zf8NOew3FL02").json()
    assert e["ifc_class"] == "IfcSlab" and e["building_id"] == ids["building"]
    assert e["properties"]["Pset_WallCommon"]["IsExternal"] is True
    assert e["centroid"] == [114.3001, 30.5801, 12.5]
    assert client.get("/elements/nope").status_code == 404
    hits = client.get("/search", params={"q": "riverside"}).json()
    assert hits[0]["type"] == "building" and hits[0]["id"] == ids["building"]
    assert client.get("/search", params={"q": str(ids["building"])}).json()[0]["id"] == ids["building"]
    elements = client.get("/search", params={"q": "2O2Fr$t4X7Zf8NOew3FL01"}).json()
    assert elements[0] == {
        "type": "element",
        "id": "2O2Fr$t4X7Zf8NOew3FL01",
        "name": "IfcWall 1",
        "address": None,
        "lon": 114.3001,
        "lat": 30.5801,
        "height": 12.5,
    }
    assert client.get("/search", params={"q": "%"}).json() == []
    assert client.get("/search", params={"q": "a\x00b"}).status_code == 400  # NUL never reaches SQL as text


def test_tilesets_and_datasets_lists(client: TestClient, tiles_dir: Path) -> None:
    _seed(client.app.state.engine)  # type: ignore[attr-defined]
    tilesets = client.get("/tilesets").json()
    assert tilesets[0]["name"] == "city"
    assert tilesets[0]["url"] == "/tiles/city/tileset.json"
    assert tilesets[0]["terrain_url"] == "/tiles/city/terrain/"
    assert tilesets[0]["bounds"] == [114.28, 30.56, 114.33, 30.60]
    assert {"min_height", "max_height", "layers", "tile_count", "feature_count", "built_at"} <= set(tilesets[0])
    datasets = client.get("/datasets", params={"kind": "ifc"}).json()
    assert datasets["numberMatched"] == 1 and datasets["datasets"][0]["name"] == "office-model"
    assert client.get("/datasets", params={"kind": "bogus"}).status_code == 400


def test_viewer_config_and_viewer_mount(client: TestClient) -> None:
    config = client.get("/viewer/config.json").json()
    assert config == {"imagery": {"type": "natural-earth"}, "api": "", "overview_above_m": 60_000.0}
    r = client.get("/viewer/")
    assert r.status_code in (200, 503)
    if r.status_code == 503:
        assert r.json()["code"] == "viewer-not-installed"


def test_misconfigured_viewer_stops_the_service_at_start_up(settings, tmp_path) -> None:
    import pytest

    from cim.api.app import create_app
    from cim.api.settings import ApiSettings, ViewerSettings
    from cim.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        create_app(
            settings,
            api_settings=ApiSettings(access_log=False),
            viewer_settings=ViewerSettings(dir=tmp_path / "missing"),
        )
    with pytest.raises(ConfigError, match="IMAGERY_URL"):
        create_app(
            settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings(imagery_type="xyz")
        )
