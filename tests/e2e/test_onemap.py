"""The province "one map" in headless Chromium: overview, city fly-to, labels, offline base map, split view,
time slider — one database, one server and one loaded page shared by the whole module.

Two cities far apart (Wuhan's 江岸区/江汉区 and Yichang's 西陵区, cities implied by their GB/T 2260 codes),
named buildings built into tileset ``city``, named roads, a lake, a park and parcels; an older building
dataset superseded by a newer one gives the time slider its history.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import shapely

from cim.settings import Settings
from tests import factories
from tests.e2e.conftest import Viewer, engine_on, is_loopback, viewer_session, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("onemap-e2e")]

WUHAN = (114.3050, 30.5850)
YICHANG = (111.3000, 30.6950)
ROADS: list[tuple[list[tuple[float, float]], dict[str, object]]] = [
    (
        [(114.2960, 30.5853), (114.3140, 30.5853)],
        {"name": "解放大道", "road_class": "primary", "width_m": 30.0, "attributes": {"name_en": "Jiefang Avenue"}},
    ),
    ([(114.3020, 30.5805), (114.3020, 30.5895)], {"name": "江汉路", "road_class": "secondary", "width_m": 18.0}),
]
"""Wuhan's two named roads: centre line (lon, lat) and facility columns."""


Province = Viewer
"""The running platform with the two cities, and one page on it."""


def build_province(settings: Settings) -> None:
    """Districts, buildings (old and new versions), roads, water, green, parcels; tileset ``city``."""
    from cim.db.datasets import supersede_dataset, update_dataset
    from tiles.build import build_tileset

    with engine_on(settings) as engine:
        with engine.begin() as conn:
            factories.district(
                conn, "420102", shapely.box(114.3050, 30.5800, 114.3150, 30.5900), 100_000, name="江岸区"
            )
            factories.district(conn, "420103", shapely.box(114.2950, 30.5800, 114.3050, 30.5900), 90_000, name="江汉区")
            factories.district(conn, "420502", shapely.box(111.2900, 30.6900, 111.3100, 30.7000), 50_000, name="西陵区")
            old = factories.dataset(conn, "建筑普查2020")
            factories.building(conn, old, factories.square(114.3030, 30.5830, 0.0006), height=15.0, name="旧厂房")
        with engine.begin() as conn:
            supersede_dataset(conn, old)
            ds = factories.dataset(conn, "建筑普查2025")
            update_dataset(conn, old, model_key="census")
            update_dataset(conn, ds, model_key="census", version=2, replaces_id=old)
            for name, lon, lat, height in (
                ("江岸大厦", 114.3060, 30.5860, 90.0),
                ("汉口商城", 114.3040, 30.5846, 40.0),
                ("滨江公寓", 114.3070, 30.5840, 30.0),
                ("西陵大楼", 111.3000, 30.6950, 50.0),
            ):
                factories.building(conn, ds, factories.square(lon, lat, 0.0003), height=height, name=name, use="office")
            for line, values in ROADS:
                factories.facility(conn, ds, "road", shapely.LineString(line), **values)
            factories.facility(conn, ds, "water_body", shapely.box(114.3080, 30.5810, 114.3130, 30.5835), name="西北湖")
            factories.facility(conn, ds, "park", shapely.box(114.2970, 30.5810, 114.3000, 30.5835), name="中山公园")
            factories.parcel(conn, ds, shapely.box(114.2950, 30.5860, 114.3150, 30.5900), code="JA-01", land_use="R2")
        build_tileset(engine, settings, "city", layers=("buildings",))


@pytest.fixture(scope="module")
def province(module_settings: Settings) -> Iterator[Province]:
    """The platform serving the two cities, with the viewer opened on its start view and fully loaded."""
    build_province(module_settings)
    with viewer_session(module_settings) as viewer:
        yield viewer


def look_at_wuhan(province: Province) -> None:
    """Put the camera over Wuhan's districts at 1,200 m, looking north-down (each test stands on its own)."""
    province.page.evaluate(
        """() => {
            const C = window.Cesium;
            const viewer = window.cimViewer.viewer;
            viewer.camera.setView({
                destination: C.Cartesian3.fromDegrees(114.3050, 30.5760, 1200),
                orientation: { heading: 0, pitch: C.Math.toRadians(-45), roll: 0 },
            });
            window.cimViewer.overview.update();
            viewer.scene.requestRender();
        }"""
    )
    wait_idle(province.browser)


def test_start_view_is_the_province_overview_with_outlines_city_names_and_counts(
    province: Province, artifacts: Path
) -> None:
    page = province.page
    state = page.evaluate(
        """() => ({
            active: window.cimViewer.overview.active,
            cities: window.cimViewer.overview.shownCities,
            outlines: window.cimViewer.overview.districtOutlines,
            height: window.cimViewer.viewer.camera.positionCartographic.height,
            threshold: window.cimViewer.overview.threshold,
            tilesetShown: window.cimViewer.tilesets.get('city').show,
            legend: document.getElementById('onemap-legend').innerText,
        })"""
    )
    assert state["active"], state
    assert state["height"] > state["threshold"]
    assert state["outlines"] == 3
    assert "武汉市\n建筑 3 · 设施 4" in state["cities"]
    assert "宜昌市\n建筑 1 · 设施 0" in state["cities"]
    assert not state["tilesetShown"]
    assert "区县界线" in state["legend"]
    page.screenshot(path=str(artifacts / "onemap-overview.png"))


def test_offline_base_map_tiles_come_from_loopback_with_their_legend(province: Province) -> None:
    basemap = [u for u in province.browser.log.requests if "/basemap/" in u]
    assert basemap, "no base-map tile was requested"
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in basemap)
    assert "居住用地" in province.page.locator("#basemap-legend").inner_text()


def test_a_click_on_a_city_flies_there_and_the_3d_content_takes_over(province: Province) -> None:
    page = province.page
    pos = page.evaluate("([lon, lat]) => window.cimViewer.windowPosition(lon, lat, 0)", [114.3050, 30.5850])
    assert pos is not None and 280 < pos["x"] < 1100 and 40 < pos["y"] < 700, f"Wuhan is not in the free canvas: {pos}"
    page.mouse.click(pos["x"], pos["y"])
    assert page.evaluate("() => window.cimViewer.overview.flight"), "the click on Wuhan did not fly there"
    wait_idle(province.browser)
    state = page.evaluate(
        """() => ({
            active: window.cimViewer.overview.active,
            height: window.cimViewer.viewer.camera.positionCartographic.height,
            tilesetShown: window.cimViewer.tilesets.get('city').show,
            lon: window.Cesium.Math.toDegrees(window.cimViewer.viewer.camera.positionCartographic.longitude),
        })"""
    )
    assert not state["active"]
    assert state["height"] < 5000
    assert abs(state["lon"] - WUHAN[0]) < 0.05
    assert state["tilesetShown"]


def test_labels_name_districts_roads_and_buildings_and_switch_to_english(province: Province, artifacts: Path) -> None:
    page = province.page
    look_at_wuhan(province)
    shown = page.evaluate("() => window.cimViewer.labels.refresh().then(() => window.cimViewer.labels.shown)")
    texts = {label["text"] for label in shown}
    kinds = {label["kind"] for label in shown}
    assert {"解放大道", "江岸大厦"} <= texts, texts
    assert {"district", "road", "building"} <= kinds
    page.screenshot(path=str(artifacts / "onemap-labels.png"))
    page.click("#btn-lang")
    english = {label["text"] for label in page.evaluate("() => window.cimViewer.labels.shown")}
    page.click("#btn-lang")
    assert "Jiefang Avenue" in english


def test_split_view_puts_the_tileset_left_and_moves_with_the_divider(province: Province) -> None:
    page = province.page
    page.check("#om-compare")
    state = page.evaluate("() => window.cimViewer.compare.state")
    split = page.evaluate("() => window.Cesium.SplitDirection")
    assert state["split"] and state["splitPosition"] == 0.5
    assert state["tilesets"]["city"] == split["LEFT"]
    box = page.locator("#split-divider").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 3, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 3 + 110, box["y"] + 200)
    page.mouse.up()
    moved = page.evaluate("() => window.cimViewer.compare.state.splitPosition")
    assert 0.55 < moved < 0.65
    page.uncheck("#om-compare")
    assert page.evaluate("() => window.cimViewer.compare.state.splitPosition") == 0


def test_time_slider_draws_the_base_map_of_a_past_version(province: Province) -> None:
    page = province.page
    look_at_wuhan(province)
    compare = page.evaluate(
        "() => ({ moments: window.cimViewer.compare.moments, has: window.cimViewer.compare.hasHistory })"
    )
    assert compare["has"]
    names = [d["name"] for m in compare["moments"] for d in m["datasets"]]
    assert "建筑普查2020" in names and "建筑普查2025" in names
    page.evaluate("() => window.cimViewer.compare.setMoment(0)")
    wait_idle(province.browser)
    assert "建筑普查2020" in page.locator("#om-history-label").inner_text()
    assert not page.evaluate("() => window.cimViewer.tilesets.get('city').show")
    assert any("/basemap/" in u and "at=" in u for u in province.browser.log.requests)
    page.check("#om-compare")
    state = page.evaluate("() => window.cimViewer.compare.state")
    assert state["moment"] is not None and state["historySplit"] == page.evaluate(
        "() => window.Cesium.SplitDirection.RIGHT"
    )
    assert page.evaluate("() => window.cimViewer.tilesets.get('city').show")
    page.uncheck("#om-compare")
    page.evaluate(f"() => window.cimViewer.compare.setMoment({len(compare['moments'])})")
    assert page.evaluate("() => window.cimViewer.compare.state.moment") is None


def test_the_one_map_made_no_console_error_and_no_request_left_loopback(province: Province) -> None:
    log = province.browser.log
    assert log.page_errors == []
    assert log.console_errors == []
    assert province.page.evaluate("() => window.cimViewer.errors") == []
    leaving = [u for u in log.requests if not is_loopback(u)]
    assert leaving == [], leaving[:5]
