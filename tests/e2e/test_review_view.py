"""The viewer's review view in headless Chromium: a designer's review of the failing test model (see
tests/review/city.py and tests/review/test_checks.py) opened at ``/viewer/?review=<id>``; clicking the
height finding flies to its elements and highlights exactly them in the model's temporary tileset."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely

from cim.settings import Settings
from tests import factories
from tests.e2e.conftest import chromium, engine_on, open_viewer, served
from tests.review.city import PARCEL, PARCEL_LIMITS
from tests.review.models import H0, Block, rect, to_lonlat, write_model

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("viewer-e2e")]


def _city(settings: Settings) -> str:
    """The review test city plus tileset ``city``; returns a designer's API key."""
    from cim.api.security import new_api_key
    from tiles.build import build_tileset

    with engine_on(settings) as engine:
        with engine.begin() as conn:
            ds = factories.dataset(conn, "review-city")
            factories.parcel(conn, ds, PARCEL, **PARCEL_LIMITS)
            factories.building(
                conn, ds, to_lonlat(rect(68, 30, 88, 50)), height=10.0, base_height=H0, name="展厅", use="office"
            )
            factories.building(
                conn, ds, to_lonlat(rect(13, 75, 53, 85)), height=18.0, base_height=H0, name="住宅楼", use="residential"
            )
            factories.facility(
                conn, ds, "pipe_water", to_lonlat(shapely.LineString([(0, 17), (100, 17)])), diameter_mm=300.0
            )
        build_tileset(engine, settings, "city", layers=("buildings",))
        return new_api_key(engine, name="e2e-designer", role="designer")[1]


@pytest.fixture(scope="module")
def reviewed(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    key = _city(module_settings)
    model = write_model(tmp_path_factory.mktemp("ifc") / "tower.ifc", Block(3, 20, 63, 65, 10, name="违规楼"))
    with served(module_settings) as server:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            answer = http.post(
                "/reviews",
                headers={"X-API-Key": key},
                data={"parcel": "P-1"},
                files={"file": ("tower.ifc", model.path.read_bytes())},
            )
            assert answer.status_code == 202, answer.text
            review_id = answer.json()["id"]
            deadline = time.monotonic() + 180
            while (body := http.get(f"/reviews/{review_id}").json())["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert body["status"] == "reviewed" and "tileset" in body["links"]
        with chromium() as browser:
            open_viewer(browser, server.base_url, f"?review={review_id}")
            browser.page.evaluate("() => window.cimReview.ready")
            yield {"browser": browser, "body": body, "model": model, "id": review_id}


def test_the_review_view_lists_the_findings_beside_the_model(reviewed: dict[str, Any], artifacts: Path) -> None:
    page = reviewed["browser"].page
    assert page.evaluate("() => window.cimReview.error") is None
    errors = sum(
        1 for c in reviewed["body"]["report"]["checks"].values() for f in c["findings"] if f["severity"] != "info"
    )
    assert page.locator("#review-findings li").count() == errors
    assert page.locator("#review-verdict").inner_text() == "FAIL"
    assert page.evaluate(
        "() => window.cimReview.tileset !== null && window.cimReview.tileset.tilesLoaded !== undefined"
    )
    names = page.evaluate("() => window.cimViewer.viewer.entities.values.map((e) => e.name)")
    assert "review-height-limit" in names and "review-setback" in names
    page.screenshot(path=str(artifacts / "review-view.png"))


def test_clicking_a_finding_flies_to_and_highlights_its_elements(reviewed: dict[str, Any]) -> None:
    page = reviewed["browser"].page
    before = page.evaluate("() => window.cimViewer.viewer.camera.positionCartographic.height")
    item = page.locator('#review-findings li[data-rule="planning.height"]')
    item.click()
    page.wait_for_function("() => window.cimReview.flown === true")
    height = next(
        f for f in reviewed["body"]["report"]["checks"]["planning"]["findings"] if f["rule"] == "planning.height"
    )
    assert sorted(page.evaluate("() => window.cimReview.highlighted")) == sorted(height["global_ids"])
    style = page.evaluate("() => window.cimReview.tileset.style !== undefined")
    assert style
    after = page.evaluate("() => window.cimViewer.viewer.camera.positionCartographic.height")
    assert after != before
