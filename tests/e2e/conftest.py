"""Fixtures of the viewer's end-to-end tests: a city database, its tileset, the real app, one browser.

Everything is module-scoped (one database, one server and one Chromium per test module) because starting
Cesium in software WebGL costs seconds. The browser is Debian's Chromium driven by Playwright for Python,
headless with SwiftShader WebGL; every request the page makes is recorded so tests can check that none
leaves 127.0.0.1.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine

from cim.db.engine import make_engine
from cim.settings import Settings
from tests.conftest import ROOT
from tests.live import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
VIEWPORT: Any = {"width": 1100, "height": 720}  # playwright ViewportSize
LOAD_TIMEOUT_MS = 150_000


@pytest.fixture(scope="module")
def module_settings(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings on a fresh migrated database and data directory shared by one test module."""
    return Settings(data_dir=tmp_path_factory.mktemp("e2e") / "data", database_url=module_db_url)


@contextmanager
def engine_on(settings: Settings) -> Iterator[Engine]:
    """An engine on the module's database (to load the test city), disposed after the ``with`` block."""
    engine = make_engine(str(settings.database_url))
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass
class LiveServer:
    """The platform's app served by uvicorn on a loopback port, in a thread of the test process."""

    base_url: str
    server: Any
    thread: threading.Thread


def start_server(settings: Settings) -> LiveServer:
    """Serve ``cim.api.app.create_app(settings)`` on a free 127.0.0.1 port until :func:`stop_server`."""
    from cim.api.app import create_app
    from cim.api.settings import ApiSettings

    app = create_app(settings, api_settings=ApiSettings(access_log=False))
    server, thread, base_url = serve_in_thread(app, name="viewer-e2e-server", access_log=False)
    return LiveServer(base_url, server, thread)


def stop_server(live: LiveServer) -> None:
    """Stop a server started by :func:`start_server`."""
    live.server.should_exit = True
    live.thread.join(timeout=10)


@dataclass
class PageLog:
    """What the page did: every request URL, console errors, page errors."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.requests.clear()
        self.console_errors.clear()
        self.page_errors.clear()
        self.failed.clear()


@dataclass
class Browser:
    """A persistent Chromium context and its page, with the page's log."""

    context: Any
    page: Any
    log: PageLog


def launch_browser(user_data_dir: Path) -> tuple[Any, Browser]:
    """Start Playwright and a headless Chromium with software WebGL; record the page's requests and errors."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)")
    playwright = sync_playwright().start()
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=VIEWPORT,
        device_scale_factor=1,
    )
    page = context.pages[0] if context.pages else context.new_page()
    log = PageLog()
    page.on("request", lambda request: log.requests.append(request.url))
    page.on("requestfailed", lambda request: log.failed.append(f"{request.url} {request.failure}"))
    page.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    return playwright, Browser(context, page, log)


def open_viewer(browser: Browser, base_url: str, hash_: str = "") -> dict[str, Any]:
    """Open /viewer/ and wait for Cesium's own events: ready, then all tiles (3D Tiles and globe) loaded."""
    page = browser.page
    page.goto(f"{base_url}/viewer/{hash_}", wait_until="load")
    page.wait_for_function("() => window.cimViewer !== undefined")
    page.evaluate("() => window.cimViewer.ready.then(() => true)")
    page.evaluate("() => window.cimViewer.allTilesLoaded.then(() => true)")
    timings: dict[str, Any] = page.evaluate("() => window.cimViewer.timings")
    return timings


def wait_idle(browser: Browser) -> None:
    """Wait until the tilesets and the globe have loaded everything the current view needs."""
    browser.page.evaluate("() => window.cimViewer.idle().then(() => true)")


@contextmanager
def served(settings: Settings) -> Iterator[LiveServer]:
    """The platform served by :func:`start_server` for the ``with`` block."""
    server = start_server(settings)
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A browser from :func:`launch_browser` on a throw-away profile, closed after the ``with`` block."""
    with tempfile.TemporaryDirectory(prefix="cim-chromium-") as profile:
        playwright, browser = launch_browser(Path(profile))
        try:
            yield browser
        finally:
            browser.context.close()
            playwright.stop()


@dataclass
class Viewer:
    """The platform on a loopback port and one Chromium page with the viewer opened and loaded on it."""

    server: LiveServer
    browser: Browser
    timings: dict[str, Any]

    @property
    def page(self) -> Any:
        """The Playwright page showing the viewer."""
        return self.browser.page


@contextmanager
def viewer_session(
    settings: Settings, hash_: str = "", before_open: Callable[[Browser], None] | None = None
) -> Iterator[Viewer]:
    """Serve ``settings``, start Chromium and :func:`open_viewer` (``before_open`` runs on the fresh browser
    first, e.g. to listen to responses); everything is stopped after the ``with`` block."""
    with served(settings) as server, chromium() as browser:
        if before_open is not None:
            before_open(browser)
        timings = open_viewer(browser, server.base_url, hash_)
        yield Viewer(server, browser, timings)


def window_position(page: Any, lon: float, lat: float, height: float) -> tuple[float, float]:
    """Where a lon/lat (degrees) / ellipsoidal height (m) point appears in the page (CSS pixels)."""
    pos = page.evaluate(
        """([lon, lat, h]) => {
            const C = window.Cesium;
            const scene = window.cimViewer.viewer.scene;
            const p = C.SceneTransforms.worldToWindowCoordinates(scene, C.Cartesian3.fromDegrees(lon, lat, h));
            return p ? [p.x, p.y] : null;
        }""",
        [lon, lat, height],
    )
    assert pos is not None, "the point is not in view"
    return float(pos[0]), float(pos[1])


def is_loopback(url: str) -> bool:
    """True for URLs served by this machine's loopback platform (data: and same-origin blob: included)."""
    if url.startswith("data:"):
        return True
    return urlsplit(url.removeprefix("blob:")).hostname == "127.0.0.1"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """The git-ignored folder where screenshots of the e2e tests go."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
