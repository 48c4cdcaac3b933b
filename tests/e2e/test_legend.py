"""A tile class plug-in reaches the rendered legend (issue 11): the toy class of tests/tiles/toy_tile_class.py,
registered from the test and built into a tileset, is listed in the viewer's layer tree with its name and
legend colour (in both languages) and can be switched off, beside every class the vocabulary serves. No file
of the viewer names the toy class: the tree is built from ``GET /vocabulary``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely

from cim.settings import Settings
from tests import factories
from tests.e2e.viewer_session import Session, canvas_pixel, clean_log, look_down_at, screen_position, viewer_session
from tests.tiles.toy_tile_class import BEACON_RGB, Beacons
from tiles import classes

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("legend-e2e")]

STATION = (114.3400, 30.6200)


@pytest.fixture(scope="module")
def with_beacons(module_settings: Settings) -> Iterator[Session]:
    """The toy class registered (in this process, which serves the app too), a fire station built into
    tileset ``toy`` with the buildings and the toy class, the viewer open on it."""
    from cim.db.engine import make_engine
    from tiles.build import build_tileset
    from tiles.options import TilingOptions

    toy = classes.register(Beacons())
    engine = make_engine(str(module_settings.database_url))
    try:
        with engine.begin() as conn:
            ds = factories.dataset(conn, "e2e-buildings")
            factories.building(conn, ds, factories.square(STATION[0] + 0.0008, STATION[1], 0.0003), name="楼")
            fac = factories.dataset(conn, "e2e-stations", layer="facilities")
            factories.facility(conn, fac, "fire_station", shapely.Point(*STATION), name="汉口消防站")
        build_tileset(engine, module_settings, "toy", TilingOptions(layers=("buildings", "beacons")))
        with viewer_session(module_settings) as session:
            yield session
    finally:
        engine.dispose()
        classes.unregister(toy.layer)


def test_the_toy_class_is_in_the_rendered_legend_beside_every_served_class(with_beacons: Session) -> None:
    page = with_beacons.page
    served = page.evaluate("() => import('/viewer/js/vocab.js').then((v) => Object.keys(v.TILE_CLASSES))")
    assert "beacon" in served
    # Every class the vocabulary serves has its legend in the tree (buildings: the colouring legend below).
    listed = page.locator("#layer-tree .class-legend").evaluate_all("(ls) => ls.map((l) => l.dataset.class)")
    assert sorted(listed) == sorted(c for c in served if c != "building")
    legend = page.locator(".class-legend[data-class=beacon]")
    assert legend.is_visible() and legend.inner_text().strip() == "消防站标识"
    colour = legend.locator(".swatch").evaluate("(s) => getComputedStyle(s).backgroundColor")
    assert colour == "rgb({}, {}, {})".format(*BEACON_RGB)
    assert page.locator("li[data-class=beacon] > label").inner_text().strip() == "消防站标识"
    assert page.locator("#layer-beacons").is_checked()
    page.click("#btn-lang")
    try:
        assert legend.inner_text().strip() == "Fire station beacon"
    finally:
        page.click("#btn-lang")
    assert legend.inner_text().strip() == "消防站标识"


def test_the_toy_class_is_drawn_and_its_checkbox_hides_it(with_beacons: Session) -> None:
    page = with_beacons.page
    look_down_at(with_beacons, *STATION, 500.0)
    x, y = screen_position(with_beacons, *STATION, with_beacons.settings.height_anomaly + 30.0)
    r, g, b = canvas_pixel(with_beacons, x, y)
    assert r > g + 30 and r > b + 30, f"the beacon is not drawn red: {(r, g, b)}"
    page.uncheck("#layer-beacons")
    r2, g2, b2 = canvas_pixel(with_beacons, x, y)
    assert not (r2 > g2 + 30 and r2 > b2 + 30), f"the beacon still shows: {(r2, g2, b2)}"
    page.wait_for_function("() => window.location.hash.includes('layers=buildings,bim,')")
    page.wait_for_function("() => !window.location.hash.includes(',beacons,')")
    page.check("#layer-beacons")
    page.wait_for_function("() => window.location.hash.includes(',beacons,')")


def test_no_console_errors(with_beacons: Session) -> None:
    assert clean_log(with_beacons) == []
