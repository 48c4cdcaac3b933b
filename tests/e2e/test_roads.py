"""Roads in the viewer: road centre lines stored as facilities are drawn as ribbons of the ``roads`` tile
class and pickable (a click shows the road's class, name and road class); the building panel is the same
whether the building was reached by a click or by a search. Headless Debian Chromium against the real app,
database and tileset; no console error and no request leaving loopback.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely

from cim.settings import Settings
from tests import factories
from tests.e2e.conftest import engine_on, is_loopback, window_position
from tests.e2e.viewer_session import Session, look_down_at, viewer_session

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("roads-e2e")]

SITE = (114.3100, 30.5900)
ROAD_NAME = "沿江大道"
BUILDING_NAME = "江汉关大楼"
ROAD_Y = SITE[1] - 0.0004  # the road runs east–west south of the building


Map = Session
"""The platform serving a building and two roads, with the viewer open in Chromium."""


def _load(settings: Settings) -> None:
    from tiles.build import build_tileset
    from tiles.options import TilingOptions

    lon, lat = SITE
    with engine_on(settings) as engine:
        with engine.begin() as conn:
            ds = factories.dataset(conn, "e2e-buildings")
            factories.building(
                conn,
                ds,
                factories.square(lon, lat, 0.0003),
                height=40.0,
                name=BUILDING_NAME,
                use="office",
                storeys=9,
                structure="masonry",
                address="武汉市江汉区沿江大道95号",
            )
            fac = factories.dataset(conn, "e2e-roads", layer="facilities")
            road = shapely.LineString([(lon - 0.002, ROAD_Y), (lon + 0.002, ROAD_Y)])
            factories.facility(conn, fac, "road", road, name=ROAD_NAME, road_class="主干路")
            side = shapely.LineString([(lon + 0.0006, ROAD_Y), (lon + 0.0006, lat + 0.001)])
            factories.facility(conn, fac, "road", side, name="支路一", road_class="支路")
        build_tileset(engine, settings, "roads", TilingOptions(layers=("buildings", "roads")))


@pytest.fixture(scope="module")
def roadmap(module_settings: Settings) -> Iterator[Map]:
    """The platform with the roads tileset, the viewer opened and loaded."""
    _load(module_settings)
    with viewer_session(module_settings) as viewer:
        yield viewer


def _panel_rows(m: Map) -> dict[str, str]:
    """The panel's attribute rows: the main table and the details table (label → value)."""
    rows = m.page.evaluate(
        """() => [...document.querySelectorAll('#panel-props tr, #panel-details-props tr')].map(
               (tr) => [tr.children[0].textContent, tr.children[1].textContent])"""
    )
    return {k: v for k, v in rows}


def test_roads_are_drawn_and_a_click_shows_the_road(roadmap: Map) -> None:
    page = roadmap.page
    vocabulary = page.evaluate("() => import('/viewer/js/vocab.js').then((v) => v.TILE_CLASSES.road.layer)")
    assert vocabulary == "roads"
    x_lon = SITE[0] - 0.001
    look_down_at(roadmap, x_lon, ROAD_Y)
    zeta = roadmap.settings.height_anomaly
    page.mouse.click(*window_position(page, x_lon, ROAD_Y, zeta + 0.3))
    page.locator("#panel-title").filter(has_text=ROAD_NAME).wait_for(timeout=20_000)
    selection = page.evaluate(
        "() => { const s = window.cimViewer.panel.selection; return {kind: s.kind, props: s.props}; }"
    )
    assert selection["kind"] == "road" and selection["props"]["name"] == ROAD_NAME
    assert selection["props"]["road_class"] == "主干路" and selection["props"]["width_m"] == pytest.approx(24.0)
    assert page.locator("#panel-kind").inner_text() == "道路与线状设施"
    props = page.locator("#panel-props").inner_text()
    assert "主干路" in props and "道路" in props  # the kind through the class's legend
    page.click("#panel-close")
    # Off the ribbon (24 m wide: 12 m each side), the click finds no road.
    page.mouse.click(*window_position(page, x_lon, ROAD_Y - 0.0003, zeta))
    assert page.evaluate("() => window.cimViewer.panel.selection") is None


def test_the_building_panel_is_the_same_after_a_click_and_after_a_search(roadmap: Map) -> None:
    page = roadmap.page
    lon, lat = SITE[0] + 0.00015, SITE[1] + 0.00015
    look_down_at(roadmap, lon, lat, 400.0)
    page.mouse.click(*window_position(page, lon, lat, roadmap.settings.height_anomaly + 40.0))
    page.locator("#panel-title").filter(has_text=BUILDING_NAME).wait_for(timeout=20_000)
    page.wait_for_function("() => document.getElementById('panel-props').textContent.includes('masonry')")
    page.locator("#panel-details-props").wait_for(state="attached", timeout=20_000)
    clicked = _panel_rows(roadmap)
    page.click("#panel-close")
    page.fill("#search-input", BUILDING_NAME)
    page.click("#search button[type=submit]")
    page.locator("#panel-title").filter(has_text=BUILDING_NAME).wait_for(timeout=20_000)
    page.wait_for_function("() => document.getElementById('panel-props').textContent.includes('masonry')")
    page.locator("#panel-details-props").wait_for(state="attached", timeout=20_000)
    searched = _panel_rows(roadmap)
    assert searched == clicked
    for value in ("masonry", "9", "40", "武汉市江汉区沿江大道95号"):
        assert value in searched.values(), value
    page.click("#panel-close")


def test_no_console_errors_and_nothing_leaves_loopback(roadmap: Map) -> None:
    log = roadmap.browser.log
    # The only refusals allowed: the archive section of the building panel, which asks for a key (archive.js
    # shows its key form); Chromium logs each refused fetch as a console error without its URL, hence the count.
    assert all("/archive/by-building/" in u for u in roadmap.unauthorized)
    refused = [e for e in log.console_errors if "401 (Unauthorized)" in e]
    assert len(refused) == len(roadmap.unauthorized)
    assert log.page_errors == [] and [e for e in log.console_errors if e not in refused] == []
    assert roadmap.page.evaluate("() => window.cimViewer.errors") == []
    assert [u for u in log.requests if not is_loopback(u)] == []
    assert any(u.endswith("/vocabulary") for u in log.requests)
    assert any("-roads.glb" in u for u in log.requests), "no road tile was requested"
