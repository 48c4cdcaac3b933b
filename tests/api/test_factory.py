"""Router factories honour their prefix, tags and route names: the same endpoints mount twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cim.api.app import create_app
from cim.api.features import FeaturesFactory
from cim.api.settings import ApiSettings, ViewerSettings
from cim.settings import Settings


@pytest.fixture
def twice(settings: Settings) -> Iterator[TestClient]:
    """The app with the features endpoints mounted a second time under /v2."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    app.include_router(FeaturesFactory(prefix="/v2", tags=["v2"], name_prefix="v2_").router)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def test_a_factory_mounted_under_a_prefix_links_to_its_own_routes(twice: TestClient) -> None:
    v2 = twice.get("/v2/collections").json()
    assert v2["links"][0]["href"].endswith("/v2/collections")
    buildings = twice.get("/v2/collections/buildings").json()
    assert buildings["links"][0]["href"].endswith("/v2/collections/buildings")
    assert twice.get("/v2/collections/buildings/items").json()["links"][1]["href"].endswith("/v2/collections/buildings")
    root = twice.get("/collections").json()
    assert root["links"][0]["href"].endswith("/collections") and "/v2/" not in root["links"][0]["href"]
    assert twice.get("/v2/collections/nowhere").status_code == 404


def test_a_factory_tags_every_route_it_registers(twice: TestClient) -> None:
    paths = twice.get("/openapi.json").json()["paths"]
    assert paths["/v2/collections"]["get"]["tags"] == ["v2"]
    assert paths["/collections"]["get"]["tags"] == ["OGC API – Features"]
    assert paths["/buildings/{building_id}"]["get"]["tags"] == ["details"]
    assert twice.get("/").json()["links"][3]["href"].endswith("/conformance")
