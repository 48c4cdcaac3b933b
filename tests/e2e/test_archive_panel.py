"""The viewer's archive section, in headless Chromium against the live API: versions listed, key asked for,
download offered only to roles that may download, and the downloaded bytes identical to the archived file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cim.api.security import new_api_key
from cim.archive import Archive
from cim.settings import Settings
from tests import factories
from tests.conftest import IFC_DIR
from tests.e2e.conftest import Browser, LiveServer, chromium, engine_on, served

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("viewer-e2e")]

A = IFC_DIR / "IfcOpenHouse_IFC4.ifc"


@pytest.fixture(scope="module")
def archived(module_settings: Settings) -> Iterator[tuple[LiveServer, Browser, int, dict[str, str]]]:
    with engine_on(module_settings) as engine:
        with engine.begin() as conn:
            dataset = factories.dataset(conn, "d", kind="ifc")
            building = factories.building(conn, dataset, factories.square(114, 30, 0.001), height=10.0, name="Office")
        archive = Archive.open(engine, module_settings)
        archive.put(A, model_key="office", author="archivist-wang", note="竣工模型", building_id=building)
        keys = {role: new_api_key(engine, name=f"e2e-{role}", role=role)[1] for role in ("viewer", "planner")}
        with served(module_settings) as live, chromium() as browser:
            yield live, browser, int(building), keys


def _show(browser: Browser, base_url: str, building: int) -> None:
    page = browser.page
    page.goto(f"{base_url}/viewer/js/archive.js")  # same origin as the viewer; no WebGL needed
    page.set_content('<div id="details"></div>')
    page.evaluate(
        """async (id) => {
            const m = await import('/viewer/js/archive.js');
            await m.showArchive(document.getElementById('details'), id);
        }""",
        building,
    )


def test_the_panel_asks_for_a_key_then_lists_versions_and_downloads_for_a_planner(archived, tmp_path: Path):
    live, browser, building, keys = archived
    page = browser.page
    _show(browser, live.base_url, building)
    assert page.locator("#panel-archive form.archive-key").count() == 1  # no key yet: 401 → the key form
    page.fill("#panel-archive input", keys["viewer"])
    page.click("#panel-archive button")
    page.wait_for_selector("#panel-archive li.archive-version")
    line = page.inner_text("#panel-archive li.archive-version")
    assert "office v1" in line and "archivist-wang" in line and "竣工模型" in line
    assert page.locator("#panel-archive a.archive-download").count() == 0  # viewer role: metadata only

    page.evaluate("(key) => sessionStorage.setItem('cim.apiKey', key)", keys["planner"])
    _show(browser, live.base_url, building)
    page.wait_for_selector("#panel-archive a.archive-download")
    with page.expect_download() as info:
        page.click("#panel-archive a.archive-download")
    saved = tmp_path / "downloaded.ifc"
    info.value.save_as(saved)
    assert saved.read_bytes() == A.read_bytes()
    assert info.value.suggested_filename == A.name
    assert not browser.log.page_errors
