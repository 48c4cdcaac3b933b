"""``/labels``: which names come back for a view depends on the camera height; bad views are refused."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.onemap_seed import seed_city

VIEW = "114.28,30.57,114.32,30.60"


def _texts(client: TestClient, height: float) -> dict[str, set[str]]:
    response = client.get(f"/labels?bbox={VIEW}&height={height}")
    assert response.status_code == 200, response.text
    kinds: dict[str, set[str]] = {}
    for label in response.json()["labels"]:
        kinds.setdefault(label["kind"], set()).add(label["text"]["zh"])
    return kinds


def test_street_height_names_districts_roads_places_and_buildings(client: TestClient, engine: Engine) -> None:
    seed_city(engine)
    kinds = _texts(client, 800)
    assert kinds == {
        "district": {"江岸区", "江汉区"},
        "road": {"解放大道", "江汉路"},
        "place": {"西北湖", "中山公园"},
        "building": {"江岸大厦", "汉正商场"},
    }


def test_city_height_names_only_districts_and_roads_and_province_height_nothing(
    client: TestClient, engine: Engine
) -> None:
    seed_city(engine)
    assert set(_texts(client, 6000)) == {"district", "road"}
    assert _texts(client, 500_000) == {}


def test_labels_carry_english_names_and_priorities_and_building_labels_sit_on_the_roof(
    client: TestClient, engine: Engine
) -> None:
    seed_city(engine)
    labels = client.get(f"/labels?bbox={VIEW}&height=800").json()["labels"]
    by_name = {label["text"]["zh"]: label for label in labels}
    assert by_name["解放大道"]["text"]["en"] == "Jiefang Avenue"
    assert by_name["江岸区"]["text"]["en"] == "Jiang'an District"
    assert by_name["江汉路"]["text"]["en"] == "江汉路"  # no English name stored: the Chinese one
    assert by_name["江岸大厦"]["height"] == 80.0
    assert by_name["解放大道"]["lat"] == 30.5852
    priorities = [label["priority"] for label in labels]
    assert priorities == sorted(priorities, reverse=True)
    assert labels[0]["kind"] == "district"


def test_a_malformed_or_inverted_bbox_is_refused_with_the_reason(client: TestClient) -> None:
    for bad in ("1,2,3", "a,b,c,d", "114.3,30.6,114.2,30.5", "0,0,200,10"):
        response = client.get(f"/labels?bbox={bad}&height=100")
        assert response.status_code == 400, bad
        assert "bbox" in response.json()["detail"]
