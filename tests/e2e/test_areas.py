"""Water bodies and green spaces in the viewer: the ``areas`` tile class (tiles/classes/areas.py), built with
every registered layer as the demo builds them, is drawn flat on the ground in its legend's colours, listed in
the layer tree with its legend by kind, pickable (a click shows the lake's kind, name and area) and
toggleable by class and by kind. Headless Debian Chromium against the real app, database and tileset; no
console error and no request leaving loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely

from cim.settings import Settings
from tests import factories
from tests.e2e.test_viewer import is_loopback
from tests.e2e.viewer_session import Session, canvas_pixel, clean_log, look_down_at, screen_position, viewer_session

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("areas-e2e")]

LAKE = shapely.box(114.3200, 30.6000, 114.3230, 30.6020)
LAKE_NAME = "墨水湖"
PARK = shapely.box(114.3240, 30.6000, 114.3255, 30.6020)
LAKE_CENTRE = (114.3215, 30.6010)
ON_LAKE = (114.3207, 30.6005)
"""A point of the lake away from its label (labels are drawn at the centre)."""


def _load(settings: Settings) -> None:
    from cim.db.engine import make_engine
    from tiles.build import build_tileset

    engine = make_engine(str(settings.database_url))
    try:
        with engine.begin() as conn:
            ds = factories.dataset(conn, "e2e-buildings")
            factories.building(conn, ds, factories.square(114.3260, 30.6030, 0.0003), height=30.0, name="湖边楼")
            fac = factories.dataset(conn, "e2e-areas", layer="facilities")
            factories.facility(conn, fac, "water_body", LAKE, name=LAKE_NAME)
            factories.facility(conn, fac, "park", PARK, name="湖滨公园")
        build_tileset(engine, settings, "areas")  # every registered layer, as `cim demo` builds its tileset
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def lakeside(module_settings: Settings) -> Iterator[Session]:
    """The lake and the park built into tileset ``areas``, the viewer opened on them with the base map off
    (so that what is blue is the tile class, not the offline base map's water)."""
    _load(module_settings)
    with viewer_session(module_settings) as session:
        session.page.uncheck("#om-basemap")
        yield session


def test_the_areas_class_is_in_the_layer_tree_with_its_legend_by_kind(lakeside: Session) -> None:
    page = lakeside.page
    assert page.evaluate("() => import('/viewer/js/vocab.js').then((v) => v.TILE_CLASSES.area.layer)") == "areas"
    assert page.locator("#layer-areas").is_checked()
    assert page.locator("li[data-class=area] > label").inner_text().strip() == "水体与绿地"
    legend = page.locator(".class-legend[data-class=area]")
    assert legend.locator("li.item").evaluate_all("(items) => items.map((i) => i.dataset.value)") == [
        "park",
        "green_space",
        "water_body",
    ]
    assert legend.locator("li[data-value=water_body]").text_content().strip() == "水体"
    swatch = legend.locator("li[data-value=water_body] .swatch").evaluate("(s) => getComputedStyle(s).backgroundColor")
    assert swatch == "rgb(80, 150, 220)"


def test_a_lake_is_drawn_in_its_colour_and_a_click_shows_it(lakeside: Session, artifacts: Path) -> None:
    page = lakeside.page
    look_down_at(lakeside, *LAKE_CENTRE, 700.0)
    (artifacts / "viewer-areas.png").write_bytes(page.screenshot())
    zeta = lakeside.settings.height_anomaly
    x, y = screen_position(lakeside, *ON_LAKE, zeta + 0.15)
    r, g, b = canvas_pixel(lakeside, x, y)
    assert b > r + 40 and b > g + 10, f"the lake is not drawn blue: {(r, g, b)}"
    page.mouse.click(x, y)
    page.locator("#panel-title").filter(has_text=LAKE_NAME).wait_for(timeout=20_000)
    selection = page.evaluate(
        "() => { const s = window.cimViewer.panel.selection; return {kind: s.kind, props: s.props}; }"
    )
    assert selection["kind"] == "area" and selection["props"]["kind"] == "water_body"
    geodesic_m2 = 0.003 * 0.002 * 111_320**2 * 0.8605  # cos(30.6°): about 57,500 m²
    assert selection["props"]["area_m2"] == pytest.approx(geodesic_m2, rel=0.01)
    assert page.locator("#panel-kind").inner_text() == "水体与绿地"
    assert "水体" in page.locator("#panel-props").inner_text()  # the kind through the class's legend
    page.click("#panel-close")
    # The park beside it is green, and a click there names the park.
    px, py = screen_position(lakeside, 114.32475, 30.6004, zeta + 0.15)
    pr, pg, pb = canvas_pixel(lakeside, px, py)
    assert pg > pr + 15 and pg > pb, f"the park is not drawn green: {(pr, pg, pb)}"
    page.mouse.click(px, py)
    page.locator("#panel-title").filter(has_text="湖滨公园").wait_for(timeout=20_000)
    page.click("#panel-close")


def _difference(a: tuple[int, int, int], b: tuple[int, int, int]) -> int:
    return max(abs(p - q) for p, q in zip(a, b, strict=True))


def test_the_areas_hide_by_class_and_by_kind(lakeside: Session) -> None:
    page = lakeside.page
    look_down_at(lakeside, *LAKE_CENTRE, 700.0)
    x, y = screen_position(lakeside, *ON_LAKE, lakeside.settings.height_anomaly + 0.15)
    drawn = canvas_pixel(lakeside, x, y)
    page.uncheck("#layer-areas")
    hidden = canvas_pixel(lakeside, x, y)
    assert _difference(drawn, hidden) > 40, (drawn, hidden)
    page.mouse.click(x, y)
    assert page.evaluate("() => window.cimViewer.panel.selection") is None
    page.check("#layer-areas")
    assert _difference(canvas_pixel(lakeside, x, y), drawn) <= 8
    page.locator("li[data-class=area] summary").click()
    page.uncheck("#layer-kind-water_body")
    assert _difference(canvas_pixel(lakeside, x, y), hidden) <= 8
    page.check("#layer-kind-water_body")


def test_no_console_errors_and_nothing_leaves_loopback(lakeside: Session) -> None:
    assert clean_log(lakeside) == []
    requests = lakeside.browser.log.requests
    assert [u for u in requests if not is_loopback(u)] == []
    assert any("-areas.glb" in u for u in requests), "no area tile was requested"
