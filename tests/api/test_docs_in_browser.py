"""Issue 13 item 7 with an independent client: Chromium renders /docs with the internet cut off."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cim.settings import Settings
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docs-browser")]


def test_api_docs_render_in_a_browser_that_cannot_reach_the_internet(settings: Settings) -> None:
    from playwright.sync_api import sync_playwright

    settings.data_path.mkdir(parents=True, exist_ok=True)
    server = start_server(settings)
    blocked: list[str] = []
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="cim-docs-") as profile:
            context = p.chromium.launch_persistent_context(
                Path(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = context.new_page()

                def only_the_service(route) -> None:  # type: ignore[no-untyped-def]
                    if route.request.url.startswith(server.base_url):
                        route.continue_()
                    else:
                        blocked.append(route.request.url)
                        route.abort()

                page.route("**/*", only_the_service)
                page.goto(f"{server.base_url}/docs")
                page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
                operations = page.locator(".swagger-ui .opblock").count()
                title = page.locator(".swagger-ui .info .title").inner_text()
            finally:
                context.close()
    finally:
        stop_server(server)
    assert blocked == [], blocked  # nothing the page needs lives outside the service
    assert operations >= 10 and "CIM platform" in title
