"""CesiumJS loads an implicit tileset (``cim tiles build --implicit``): one implicit quadtree per feature class
under an external-tileset root, binary subtrees with TILE_BOUNDING_REGION tile metadata. It traverses the
subtrees, draws the buildings, BIM elements and instanced facilities, and a click names the building.

A small city (a grid of named buildings, the sample IFC office, a row of street lamps) is built as an
implicit tileset with meshopt compression and served by the real app; Playwright drives Debian's Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import shapely

from cim.settings import Settings
from tests import factories
from tests.e2e.conftest import Viewer, engine_on, viewer_session, wait_idle, window_position

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("viewer-e2e")]

NAME = "implicit-city"
SIZE_DEG = 0.0003
ORIGIN = (114.3075, 30.5850)  # east of the sample IFC office (OFFICE_SITE 114.3050°E 30.5850°N)
GRID = 6  # GRID × GRID buildings, a few parent tiles deep with the capacities below
TOWER = "江汉之星"


@dataclass
class ImplicitCity(Viewer):
    """The platform serving the implicit tileset, one Chromium page on the viewer, the buildings' ids."""

    ids: dict[str, int]
    out: Path


def _lonlat(i: int, j: int) -> tuple[float, float]:
    return ORIGIN[0] + i * 0.0006, ORIGIN[1] + j * 0.0006


def _name(i: int, j: int) -> str:
    return TOWER if (i, j) == (GRID // 2, GRID // 2) else f"楼 {i}-{j}"


def _build(settings: Settings, workdir: Path) -> tuple[dict[str, int], Path]:
    from ingest.ifc import ingest_ifc
    from sample_models.ifc_office import generate_office
    from tiles.build import build_tileset

    ids: dict[str, int] = {}
    with engine_on(settings) as engine:
        with engine.begin() as conn:
            ds = factories.dataset(conn, "implicit-e2e")
            for i in range(GRID):
                for j in range(GRID):
                    lon, lat = _lonlat(i, j)
                    height = 80.0 if _name(i, j) == TOWER else 10.0 + 3 * ((i + j) % 5)
                    ids[_name(i, j)] = factories.building(
                        conn, ds, factories.square(lon, lat, SIZE_DEG), height=height, name=_name(i, j), use="office"
                    )
            fac = factories.dataset(conn, "lamps", layer="facilities")
            for k in range(4):
                factories.facility(conn, fac, "street_lamp", shapely.Point(ORIGIN[0] + 0.0004 * k, ORIGIN[1] - 0.0003))
        ingest_ifc(engine, generate_office(workdir / "office.ifc"), settings)
        report = build_tileset(
            engine,
            settings,
            NAME,
            layers=("buildings", "elements", "facilities"),
            compress="meshopt",
            implicit=True,
            subtree_levels=2,
            leaf_capacity=8.0,
            parent_capacity=6,
        )
    return ids, Path(report.path)


@pytest.fixture(scope="module")
def city(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImplicitCity]:
    """The implicit tileset served by the platform and the viewer fully loaded on it."""
    ids, out = _build(module_settings, tmp_path_factory.mktemp("ifc"))
    with viewer_session(module_settings) as viewer:
        yield ImplicitCity(viewer.server, viewer.browser, viewer.timings, ids, out)


def _implicit_tiles(city: ImplicitCity) -> dict[str, list[int]]:
    """What CesiumJS made of the tileset: per class tileset, the implicit level of every implicit tile whose
    glb is loaded (the class is the folder of the content's URL)."""
    result: dict[str, list[int]] = city.page.evaluate(
        """(name) => {
            const tileset = window.cimViewer.tilesets.get(name);
            const out = {};
            const visit = (tile) => {
              if (tile.implicitCoordinates && tile.hasRenderableContent && tile.contentReady) {
                const path = new URL(tile.content.url, window.location.href).pathname;
                const cls = path.split(`/tiles/${name}/`)[1].split('/')[0];
                (out[cls] || (out[cls] = [])).push(tile.implicitCoordinates.level);
              }
              for (const child of tile.children) visit(child);
            };
            visit(tileset.root);
            return out;
        }""",
        NAME,
    )
    return result


def test_cesium_traverses_the_implicit_subtrees_of_every_class_without_errors(city: ImplicitCity) -> None:
    log = city.browser.log
    assert log.page_errors == [] and log.console_errors == [] and log.failed == []
    assert city.page.evaluate("() => window.cimViewer.errors") == []
    paths = {urlsplit(u).path for u in log.requests if u.startswith("http")}
    base = f"/tiles/{NAME}"
    assert f"{base}/tileset.json" in paths
    for cls in ("buildings", "elements", "facilities"):
        assert f"{base}/{cls}/tileset.json" in paths
        assert any(p.startswith(f"{base}/{cls}/subtrees/") and p.endswith(".subtree") for p in paths), cls
    # The overview draws the parents' LOD blocks; elements and facilities live at the leaves.
    assert any(p.startswith(f"{base}/buildings/content/") and p.endswith(".glb") for p in paths)
    assert _implicit_tiles(city)["buildings"], "no implicit building tile loaded"


def test_zooming_in_refines_the_implicit_tree_and_a_click_names_the_building(city: ImplicitCity) -> None:
    i = j = GRID // 2
    lon, lat = _lonlat(i, j)
    centre = (lon + SIZE_DEG / 2, lat + SIZE_DEG / 2)
    city.page.evaluate("() => window.cimViewer.home()")
    wait_idle(city.browser)
    city.page.evaluate("([lon, lat, h]) => window.cimViewer.search.flyTo(lon, lat, h, 0)", [*centre, 80.0])
    wait_idle(city.browser)
    # The viewer skips levels of detail: a view loads the deep tiles it draws, not every level between.
    assert max(_implicit_tiles(city)["buildings"]) >= 2, "CesiumJS refines down the implicit subtrees"
    x, y = window_position(city.page, *centre, 79.5)  # the roof of the 80 m tower
    picked = city.page.evaluate(
        """([x, y]) => { const f = window.cimViewer.viewer.scene.pick(new window.Cesium.Cartesian2(x, y));
                         return f && f.getProperty ? {id: String(f.getProperty('building_id')),
                                                      name: f.getProperty('name'),
                                                      cls: f.getProperty('cim_class')} : null; }""",
        [x, y],
    )
    # The class comes from the feature's property table (the schema's cim_class default), not from guessing.
    assert picked == {"id": str(city.ids[TOWER]), "name": TOWER, "cls": "building"}
    city.page.mouse.click(x, y)
    city.page.locator("#panel").wait_for(state="visible", timeout=20_000)
    assert city.page.locator("#panel-title").inner_text() == TOWER
    png = city.page.locator("#cesiumContainer canvas").first.screenshot()
    assert len(png) > 10_000  # something was drawn
    city.page.click("#panel-close")


def test_close_to_the_office_the_implicit_leaves_bring_its_bim_elements(city: ImplicitCity) -> None:
    from sample_models.site import OFFICE_GROUND_HEIGHT, OFFICE_SITE

    centre = [OFFICE_SITE[0], OFFICE_SITE[1], OFFICE_GROUND_HEIGHT + 9.0]
    city.page.evaluate("([lon, lat, h]) => window.cimViewer.search.flyTo(lon, lat, h, 0)", centre)
    wait_idle(city.browser)
    tiles = _implicit_tiles(city)
    assert tiles.get("elements"), tiles
    x, y = window_position(city.page, *centre)
    picked = city.page.evaluate(
        """([x, y]) => { const f = window.cimViewer.viewer.scene.pick(new window.Cesium.Cartesian2(x, y));
                         return f && f.getProperty
                             ? [f.getProperty('global_id'), f.getProperty('cim_class')] : null; }""",
        [x, y],
    )
    assert picked is not None and len(picked[0]) == 22, "no BIM element under the cursor"
    assert picked[1] == "element"
    city.page.mouse.click(x, y)
    city.page.locator("#panel").wait_for(state="visible", timeout=20_000)
    assert city.page.locator("#panel-kind").inner_text() == "BIM 构件"  # the panel took the class from the table
    assert "cim_class" not in city.page.evaluate("() => window.cimViewer.panel.selection.props")
    city.page.click("#panel-close")
