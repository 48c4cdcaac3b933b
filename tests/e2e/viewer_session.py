"""One viewer session for an e2e test module: the platform served on loopback with the viewer opened and
loaded in Chromium (the fixtures of conftest.py put together), and the view helpers the map tests share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cim.settings import Settings
from tests.e2e.conftest import Browser, Viewer, wait_idle
from tests.e2e.conftest import viewer_session as open_session


@dataclass
class Session(Viewer):
    """The platform serving ``settings`` and the viewer open on it; ``unauthorized`` lists 401 answers."""

    settings: Settings
    unauthorized: list[str] = field(default_factory=list)


@contextmanager
def viewer_session(settings: Settings, hash_: str = "") -> Iterator[Session]:
    """Serve the app on ``settings`` and open the viewer (at ``hash_``), until the block ends; 401 answers
    are collected from the start."""
    unauthorized: list[str] = []

    def listen(browser: Browser) -> None:
        browser.page.on("response", lambda r: unauthorized.append(r.url) if r.status == 401 else None)

    with open_session(settings, hash_, before_open=listen) as viewer:
        yield Session(viewer.server, viewer.browser, viewer.timings, settings, unauthorized)


def look_down_at(s: Viewer, lon: float, lat: float, height: float = 260.0) -> None:
    """Put the camera ``height`` metres above lon/lat, looking straight down, and wait until loaded."""
    s.page.evaluate(
        """([lon, lat, h]) => {
            const C = window.Cesium;
            const camera = window.cimViewer.viewer.camera;
            camera.cancelFlight();
            camera.setView({ destination: C.Cartesian3.fromDegrees(lon, lat, h),
                             orientation: { heading: 0, pitch: C.Math.toRadians(-90), roll: 0 } });
        }""",
        [lon, lat, height],
    )
    wait_idle(s.browser)


def screen_position(s: Session, lon: float, lat: float, h: float) -> tuple[float, float]:
    """Where a lon/lat (degrees) / ellipsoidal height (m) point appears in the page (CSS pixels)."""
    pos = s.page.evaluate("([lon, lat, h]) => window.cimViewer.windowPosition(lon, lat, h)", [lon, lat, h])
    assert pos is not None, "the point is not in view"
    return float(pos["x"]), float(pos["y"])


def canvas_pixel(s: Session, x: float, y: float) -> tuple[int, int, int]:
    """The RGB colour of the globe canvas at a page position, read from a screenshot after the scene settled."""
    from tests.e2e.test_viewer import png_array

    wait_idle(s.browser)
    canvas = s.page.locator("#cesiumContainer canvas").first
    box = canvas.bounding_box()
    pixels = png_array(canvas.screenshot())
    r, g, b = (int(v) for v in pixels[:3, int(y - box["y"]), int(x - box["x"])])
    return r, g, b


def clean_log(s: Session) -> list[str]:
    """What went wrong in the page: page errors, console errors (beyond the archive's refused key requests,
    which archive.js answers with its key form) and the viewer's own errors; empty when all is well."""
    log = s.browser.log
    refused = [e for e in log.console_errors if "401 (Unauthorized)" in e]
    problems = [*log.page_errors, *(e for e in log.console_errors if e not in refused)]
    problems += [f"viewer: {e}" for e in s.page.evaluate("() => window.cimViewer.errors")]
    if len(refused) != len(s.unauthorized) or not all("/archive/by-building/" in u for u in s.unauthorized):
        problems.append(f"unexpected refusals: {s.unauthorized}")
    return problems
