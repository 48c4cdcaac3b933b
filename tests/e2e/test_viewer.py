"""The viewer in headless Chromium against the real app, a real database and a real tileset.

A few named buildings are inserted with the test factories, ``tiles.build.build_tileset`` turns them into
3D Tiles, ``cim.api.app.create_app`` serves tiles, API and viewer on a loopback port, and Playwright drives
Debian's Chromium (software WebGL). Tests wait for Cesium's own load events, never for fixed sleeps.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import shapely

from cim.settings import Settings
from tests import factories
from tests.e2e.conftest import Viewer, engine_on, is_loopback, viewer_session, wait_idle
from tests.e2e.conftest import window_position as _window_position
from tests.e2e.viewer_session import look_down_at

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("viewer-e2e")]

SIZE_DEG = 0.0003


@dataclass(frozen=True)
class CityBuilding:
    """A building of the test city: south-west corner (degrees), height (m) and attributes."""

    name: str
    lon: float
    lat: float
    height: float
    use: str
    safety_class: str | None
    id: int = 0

    @property
    def centre(self) -> tuple[float, float]:
        """Longitude, latitude of the footprint's centre (degrees)."""
        return self.lon + SIZE_DEG / 2, self.lat + SIZE_DEG / 2

    @property
    def address(self) -> str:
        """The address stored in the database."""
        return f"武汉市江岸区沿江大道{int(self.height)}号"


CITY = [
    CityBuilding("黄鹤大厦", 114.3075, 30.5850, 60.0, "office", "A"),
    CityBuilding("江滩花园1栋", 114.3081, 30.5850, 30.0, "residential", "B"),
    CityBuilding("汉正商场", 114.3075, 30.5856, 18.0, "commercial", "C"),
    CityBuilding("老旧宿舍", 114.3081, 30.5856, 12.0, "residential", "D"),
    CityBuilding("区人民医院", 114.3087, 30.5853, 36.0, "medical", None),
]
"""Plain buildings east of the sample IFC office (which stands at OFFICE_SITE, 114.3050°E 30.5850°N)."""


@dataclass
class City(Viewer):
    """The running platform with the test city loaded, and one browser page on it."""

    settings: Settings
    buildings: dict[str, CityBuilding]


def build_city(settings: Settings, workdir: Path) -> dict[str, CityBuilding]:
    """Insert the test buildings, ingest the sample IFC office and build tileset ``city`` from them."""
    from cim.analysis.health_check import run_health_check
    from ingest.ifc import ingest_ifc
    from sample_models.ifc_office import generate_office
    from tiles.build import build_tileset

    buildings: dict[str, CityBuilding] = {}
    with engine_on(settings) as engine:
        with engine.begin() as conn:
            dataset_id = factories.dataset(conn, "e2e-city")
            for b in CITY:
                new_id = factories.building(
                    conn,
                    dataset_id,
                    factories.square(b.lon, b.lat, SIZE_DEG),
                    height=b.height,
                    name=b.name,
                    use=b.use,
                    safety_class=b.safety_class,
                    storeys=int(b.height // 3),
                    address=b.address,
                )
                buildings[b.name] = CityBuilding(**{**b.__dict__, "id": new_id})
            # One district around the city, so that the health-check choropleth has something to colour.
            factories.district(conn, "420102", shapely.box(114.3040, 30.5840, 114.3100, 30.5870), 12_000, name="江岸区")
        ingest_ifc(engine, generate_office(workdir / "office.ifc"), settings)
        build_tileset(engine, settings, "city", layers=("buildings", "elements"))
        run_health_check(engine)  # the choropleth reads the latest stored run (GETs never compute one)
    return buildings


@pytest.fixture(scope="module")
def city(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """The platform serving the test city, with the viewer opened and fully loaded in Chromium."""
    buildings = build_city(module_settings, tmp_path_factory.mktemp("ifc"))
    with viewer_session(module_settings) as viewer:
        yield City(viewer.server, viewer.browser, viewer.timings, module_settings, buildings)


def png_array(png: bytes) -> np.ndarray:
    """Decode a PNG screenshot into a (bands, rows, columns) uint8 array."""
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(png) as memfile, memfile.open() as dataset:
            return dataset.read()


def canvas_png(city: City) -> bytes:
    """A screenshot of the globe canvas only (no HTML panels)."""
    wait_idle(city.browser)
    png: bytes = city.page.locator("#cesiumContainer canvas").first.screenshot()
    return png


def changed_fraction(a: bytes, b: bytes) -> float:
    """Share of pixels whose colour differs noticeably between two screenshots of the same size."""
    x = png_array(a).astype(np.int16)
    y = png_array(b).astype(np.int16)
    assert x.shape == y.shape
    return float((np.abs(x - y).max(axis=0) > 24).mean())


def window_position(city: City, lon: float, lat: float, height: float) -> tuple[float, float]:
    """Where a lon/lat (degrees) / ellipsoidal height (m) point appears in the page (CSS pixels)."""
    return _window_position(city.page, lon, lat, height)


def test_viewer_loads_the_city_offline_without_console_errors(city: City, artifacts: Path) -> None:
    log = city.browser.log
    assert log.page_errors == []
    assert log.console_errors == []
    assert city.page.evaluate("() => window.cimViewer.errors") == []
    leaving = [u for u in log.requests if not is_loopback(u)]
    assert leaving == [], f"requests left 127.0.0.1: {leaving[:5]}"
    requested = {urlsplit(u).path for u in log.requests if u.startswith("http")}
    assert "/tiles/city/tileset.json" in requested
    assert any(p.startswith("/tiles/city/") and p.endswith(".glb") for p in requested)
    assert any("NaturalEarthII" in p for p in requested), "the offline base map was not used"
    state = city.page.evaluate(
        """() => ({
            names: [...window.cimViewer.tilesets.keys()],
            loaded: [...window.cimViewer.tilesets.values()].every((t) => t.tilesLoaded),
            globe: window.cimViewer.viewer.scene.globe.tilesLoaded,
            token: window.Cesium.Ion.defaultAccessToken,
            status: document.getElementById("status-tiles").textContent,
        })"""
    )
    assert state["names"] == ["city"]
    assert state["loaded"] and state["globe"]
    assert state["token"] == ""
    assert state["status"] == "瓦片已全部加载"
    assert city.timings["firstFrame"] <= city.timings["allTilesLoaded"]

    png = city.page.screenshot()
    (artifacts / "viewer-city.png").write_bytes(png)
    pixels = png_array(city.page.locator("#cesiumContainer canvas").first.screenshot())
    assert pixels.std() > 10, "the city screenshot is blank"


def test_interface_is_chinese_by_default_and_switches_to_english(city: City) -> None:
    page = city.page
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator(".brand").inner_text() == "CIM 城市信息模型平台"
    page.click("#btn-lang")
    assert page.locator(".brand").inner_text() == "CIM City Information Model Platform"
    assert "Buildings (white model)" in page.locator("#layer-tree").inner_text()
    page.click("#btn-lang")
    assert page.locator(".brand").inner_text() == "CIM 城市信息模型平台"


def test_clicking_a_building_opens_its_panel_with_its_name(city: City) -> None:
    tower = city.buildings["黄鹤大厦"]
    x, y = window_position(city, *tower.centre, tower.height - 0.5)
    city.page.mouse.click(x, y)
    panel = city.page.locator("#panel")
    panel.wait_for(state="visible", timeout=20_000)
    assert city.page.locator("#panel-title").inner_text() == "黄鹤大厦"
    props = city.page.locator("#panel-props").inner_text()
    assert str(tower.id) in props
    assert "办公" in props  # use label, in Chinese
    # Then the API's /buildings/{id} adds what the tiles do not carry.
    city.page.wait_for_function(
        "(address) => (document.getElementById('panel-details').textContent || '').includes(address)",
        arg=tower.address,
        timeout=20_000,
    )
    # The style colours the selected building (from the next rendered frame on).
    city.page.wait_for_function(
        """() => { window.cimViewer.viewer.scene.requestRender();
                   return window.cimViewer.panel.selection.feature.color.toCssHexString().startsWith('#ffd400'); }""",
        timeout=20_000,
    )
    city.page.click("#panel-close")
    assert panel.is_hidden()


def test_clicking_a_bim_element_opens_its_panel_with_ifc_details(city: City, artifacts: Path) -> None:
    from sample_models.site import OFFICE_GROUND_HEIGHT, OFFICE_SITE

    # Look at the office from the south (the overview may put it under the sidebar), then click the middle
    # of its south side: a wall, window or column.
    centre = [OFFICE_SITE[0], OFFICE_SITE[1], OFFICE_GROUND_HEIGHT + 9.0]
    city.page.evaluate("([lon, lat, h]) => window.cimViewer.search.flyTo(lon, lat, h, 0)", centre)
    wait_idle(city.browser)
    (artifacts / "viewer-office.png").write_bytes(city.page.screenshot())
    x, y = window_position(city, *centre)
    try:
        picked = city.page.evaluate(
            """([x, y]) => { const f = window.cimViewer.viewer.scene.pick(new window.Cesium.Cartesian2(x, y));
                             return f && f.getPropertyIds ? f.getPropertyIds() : null; }""",
            [x, y],
        )
        assert picked is not None and "global_id" in picked, "no BIM element under the cursor"
        city.page.mouse.click(x, y)
        city.page.locator("#panel").wait_for(state="visible", timeout=20_000)
        assert city.page.locator("#panel-kind").inner_text() == "BIM 构件"
        selection = city.page.evaluate("() => window.cimViewer.panel.selection.props")
        assert len(selection["global_id"]) == 22
        assert selection["ifc_class"] in {"IfcWall", "IfcWindow", "IfcColumn", "IfcSlab", "IfcSpace"}
        assert selection["ifc_class"] in city.page.locator("#panel-props").inner_text()
        # /elements/{guid} answered: the details table is there, not the "not found" note.
        city.page.locator("#panel-details-props").wait_for(state="attached", timeout=20_000)
        city.page.click("#panel-close")
    finally:
        city.page.evaluate("() => window.cimViewer.home()")


def test_safety_colouring_and_section_plane_change_the_picture(city: City) -> None:
    before = canvas_png(city)
    city.page.select_option("#style-mode", "safety")
    coloured = canvas_png(city)
    assert changed_fraction(before, coloured) > 0.005
    legend = city.page.locator("#legend").inner_text()
    assert "D级：整幢危险" in legend
    city.page.evaluate("() => window.cimViewer.clipping.sectionAt(20)")
    cut = canvas_png(city)
    assert changed_fraction(coloured, cut) > 0.002
    city.page.evaluate("() => window.cimViewer.clipping.removeAll()")
    city.page.select_option("#style-mode", "white")


def test_distance_tool_measures_between_two_ground_points(city: City) -> None:
    lat = 30.5846
    a = window_position(city, 114.3075, lat, 0.0)
    b = window_position(city, 114.3085, lat, 0.0)
    city.page.click("button[data-tool='distance']")
    city.page.mouse.click(*a)
    city.page.mouse.click(*b)
    city.page.mouse.click(*b, button="right")
    result = city.page.evaluate("() => window.cimViewer.measure.lastResult")
    expected = 6378137.0 * math.radians(0.001) * math.cos(math.radians(lat))  # ≈ 96 m
    assert result["mode"] == "distance"
    assert result["value"] == pytest.approx(expected, rel=0.05)
    assert city.page.locator("#measure-result").inner_text().startswith("距离：")
    city.page.click("#btn-clear-measure")


def test_search_flies_to_the_building_and_opens_its_panel(city: City) -> None:
    target = city.buildings["区人民医院"]
    city.page.fill("#search-input", "人民医院")
    city.page.click("#search button[type=submit]")
    city.page.locator("#panel-title").filter(has_text="区人民医院").wait_for(timeout=20_000)
    city.page.wait_for_function(
        """([lon, lat]) => {
            const c = window.cimViewer.viewer.camera.positionCartographic;
            const C = window.Cesium;
            return Math.abs(C.Math.toDegrees(c.longitude) - lon) < 0.01
                && Math.abs(C.Math.toDegrees(c.latitude) - lat) < 0.01 && c.height < 1500;
        }""",
        arg=list(target.centre),
        timeout=30_000,
    )


def test_share_url_restores_camera_and_layers(city: City) -> None:
    page = city.page
    camera = [114.3068, 30.5835, 420.0, 10.0, -38.0]  # lon, lat (degrees), height (m), heading, pitch (degrees)
    page.evaluate(
        """([lon, lat, h, heading, pitch]) => {
            const C = window.Cesium;
            const camera = window.cimViewer.viewer.camera;
            camera.cancelFlight();
            const orientation = { heading: C.Math.toRadians(heading), pitch: C.Math.toRadians(pitch), roll: 0 };
            camera.setView({ destination: C.Cartesian3.fromDegrees(lon, lat, h), orientation });
        }""",
        camera,
    )
    page.uncheck("#layer-bim")
    page.select_option("#style-mode", "use")
    page.wait_for_function(
        "() => ['mode=use', 'cam=114.3068,'].every((p) => location.hash.includes(p)) && !location.hash.includes('bim')"
    )
    url = page.url
    other = city.browser.context.new_page()
    try:
        other.goto(url)
        other.wait_for_function("() => window.cimViewer !== undefined")
        other.evaluate("() => window.cimViewer.ready.then(() => true)")
        restored = other.evaluate(
            """() => { const C = window.Cesium; const cam = window.cimViewer.viewer.camera;
                       const c = cam.positionCartographic;
                       return [C.Math.toDegrees(c.longitude), C.Math.toDegrees(c.latitude), c.height,
                               C.Math.toDegrees(cam.heading), C.Math.toDegrees(cam.pitch)]; }"""
        )
        assert restored[:2] == pytest.approx(camera[:2], abs=1e-5)
        assert restored[2:] == pytest.approx(camera[2:], abs=0.5)
        assert other.locator("#layer-bim").is_checked() is False
        assert other.locator("#layer-buildings").is_checked() is True
        assert other.locator("#style-mode").input_value() == "use"
        assert "商业" in other.locator("#legend").inner_text()
    finally:
        other.close()
        page.check("#layer-bim")
        page.select_option("#style-mode", "white")


def changed_within(city: City, before: bytes, fraction: float, seconds: float = 30.0) -> float:
    """The share of the canvas changed since ``before``, screenshot after screenshot until it passes
    ``fraction`` or ``seconds`` are up: a GeoJSON overlay's entities are built over several frames, later
    on a loaded machine than the viewer's idle signal tells."""
    deadline = time.monotonic() + seconds
    while True:
        changed = changed_fraction(before, canvas_png(city))
        if changed > fraction or time.monotonic() > deadline:
            return changed
        city.page.wait_for_timeout(500)


def test_dangerous_buildings_overlay_is_drawn_and_a_missing_analysis_is_reported(city: City) -> None:
    # The two dangerous buildings in view, whatever the tests before left the camera at.
    look_down_at(city, 114.3078, 30.5858, 400.0)
    before = canvas_png(city)
    status = city.page.evaluate("() => window.cimViewer.overlays.set('dangerous', true)")
    assert status == "loaded", city.page.locator("#overlay-message").inner_text()
    assert city.page.locator("#overlay-message").inner_text() == "危房（C/D级）：2 个要素"  # 汉正商场 (C), 老旧宿舍 (D)
    assert "D级：整幢危险" in city.page.locator("#overlay-legend").inner_text()
    assert changed_within(city, before, 0.002) > 0.002
    city.page.evaluate("() => window.cimViewer.overlays.set('dangerous', false)")
    # The test city has no DEM and no water bodies: the flood analysis cannot answer; the viewer says so.
    status = city.page.evaluate("() => window.cimViewer.overlays.set('flood', true)")
    assert status in ("empty", "failed")
    assert city.page.locator("#overlay-message").inner_text().startswith("洪涝淹没范围：")
    assert city.page.evaluate("() => window.cimViewer.overlays.active") == []
    assert city.browser.log.page_errors == []
    city.page.evaluate("() => window.cimViewer.overlays.set('flood', false)")


def test_health_check_choropleth_colours_the_district(city: City) -> None:
    before = canvas_png(city)
    status = city.page.evaluate("() => window.cimViewer.overlays.set('choropleth', true)")
    assert status == "loaded", city.page.locator("#overlay-message").inner_text()
    indicator = city.page.locator("#ov-indicator").input_value()
    assert indicator != ""
    assert "1 个要素" in city.page.locator("#overlay-message").inner_text()
    assert changed_fraction(before, canvas_png(city)) > 0.01
    assert f"ind={indicator}" in city.page.evaluate("() => location.hash") or city.page.wait_for_function(
        "(code) => location.hash.includes('ind=' + code)", arg=indicator
    )
    city.page.evaluate("() => window.cimViewer.overlays.set('choropleth', false)")


def test_underground_view_and_sun_shadows_change_the_picture(city: City) -> None:
    before = canvas_png(city)
    city.page.check("#underground")
    assert city.page.evaluate("() => window.cimViewer.viewer.scene.globe.translucency.enabled") is True
    translucent = canvas_png(city)
    assert changed_fraction(before, translucent) > 0.01
    city.page.uncheck("#underground")
    city.page.fill("#sun-time", "2026-12-21T16:30")
    city.page.check("#sun")
    state = city.page.evaluate(
        """() => ({ shadows: window.cimViewer.viewer.shadows,
                    time: window.Cesium.JulianDate.toIso8601(window.cimViewer.viewer.clock.currentTime, 0) })"""
    )
    assert state == {"shadows": True, "time": "2026-12-21T08:30:00Z"}  # 16:30 Beijing time
    assert changed_fraction(before, canvas_png(city)) > 0.01
    assert "sun=2026-12-21T16:30" in city.page.evaluate("() => decodeURIComponent(location.hash)")
    city.page.uncheck("#sun")


def test_clipping_box_cuts_into_the_selected_building_and_area_tool_measures(city: City) -> None:
    tower = city.buildings["黄鹤大厦"]
    roof = [*tower.centre, tower.height - 0.5]
    city.page.evaluate("([lon, lat, h]) => window.cimViewer.search.flyTo(lon, lat, h, 0)", roof)
    wait_idle(city.browser)
    city.page.mouse.click(*window_position(city, *roof))
    city.page.locator("#panel-title").filter(has_text="黄鹤大厦").wait_for(timeout=20_000)
    before = canvas_png(city)
    city.page.fill("#clip-box-size", "40")
    city.page.check("#clip-box")  # a 40 m box around the clicked point of the roof is cut away
    assert city.page.evaluate("() => window.cimViewer.tilesets.get('city').clippingPlanes.enabled") is True
    assert changed_fraction(before, canvas_png(city)) > 0.002
    city.page.uncheck("#clip-box")
    city.page.click("#panel-close")

    city.page.evaluate("() => window.cimViewer.home()")
    wait_idle(city.browser)
    lat = 30.5846
    corners = [(114.3075, lat), (114.3085, lat), (114.3085, lat - 0.0004)]
    city.page.click("button[data-tool='area']")
    for lon, la in corners:
        city.page.mouse.click(*window_position(city, lon, la, 0.0))
    city.page.mouse.click(*window_position(city, *corners[-1], 0.0), button="right")
    result = city.page.evaluate("() => window.cimViewer.measure.lastResult")
    east = 6378137.0 * math.radians(0.001) * math.cos(math.radians(lat))
    north = 6356752.3 * math.radians(0.0004)
    assert result["mode"] == "area"
    assert result["value"] == pytest.approx(east * north / 2, rel=0.05)  # ≈ 2,100 m²
    assert city.page.locator("#measure-result").inner_text().startswith("面积：")
    city.page.click("#btn-clear-measure")
