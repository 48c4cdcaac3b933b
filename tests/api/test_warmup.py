"""Start-up warm-up: the first viewer finds ``/overview`` and the base map's low zooms cached; a failed warm-up
is logged and changes nothing else; the service never waits for it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

import cim.api.overview
import cim.api.warmup
from cim.api.app import create_app
from cim.api.middleware import JsonLogFormatter
from cim.api.settings import ApiSettings, ViewerSettings
from cim.api.warmup import CacheWarmer, low_zoom_tiles
from cim.onemap.basemap import tiles_over
from cim.settings import Settings
from tests.api.onemap_seed import seed_city

CITY = (114.29, 30.58, 114.31, 30.59)
"""Extent of :func:`seed_city`'s data (degrees)."""


@pytest.fixture
def warm_app(settings: Settings, api_settings: ApiSettings) -> Iterator[Callable[[], FastAPI]]:
    """Make apps on this test's database with the warm-up on (the suite turns it off)."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    made: list[FastAPI] = []

    def make() -> FastAPI:
        app = create_app(
            settings,
            api_settings=api_settings.model_copy(update={"warm_caches": True}),
            viewer_settings=ViewerSettings(),
        )
        made.append(app)
        return app

    yield make
    for app in made:
        app.state.engine.dispose()


@pytest.fixture
def warmup_log() -> Iterator[list[dict[str, Any]]]:
    """The warm-up's log lines, as the service's JSON formatter writes them."""
    lines: list[dict[str, Any]] = []
    formatter = JsonLogFormatter()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    handler = Keep()
    logger = logging.getLogger("cim.api.warmup")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def statements_of(app: FastAPI) -> list[str]:
    """A list that receives every SQL statement the app runs from now on."""
    seen: list[str] = []
    event.listen(app.state.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def warmer_of(app: FastAPI) -> CacheWarmer:
    """The app's warm-up, once it has ended."""
    warmer: CacheWarmer = app.state.warmer
    assert warmer.wait(60), "warm-up still running after 60 s"
    return warmer


def test_the_first_overview_after_start_up_is_answered_from_the_warmed_cache(
    engine: Engine, warm_app: Callable[[], FastAPI], settings: Settings, warmup_log: list[dict[str, Any]]
) -> None:
    seed_city(engine)
    app = warm_app()
    with TestClient(app) as client:
        warmer_of(app)
        seen = statements_of(app)
        response = client.get("/overview")
    assert response.status_code == 200
    [wuhan] = response.json()["cities"]
    assert wuhan["counts"] == {"buildings": 3, "facilities": 4}
    assert len(seen) == 1 and "FROM dataset" in seen[0]  # the data stamp only: no counts, no extent
    assert list((settings.data_path / "cache" / "overview").rglob("*"))
    [line] = [line for line in warmup_log if line["message"].startswith("cache warm-up:")]
    assert line["level"] == "info" and "/overview in" in line["message"]


def test_the_base_maps_low_zoom_tiles_over_the_data_are_cached_at_start_up(
    engine: Engine, warm_app: Callable[[], FastAPI]
) -> None:
    seed_city(engine)
    app = warm_app()
    with TestClient(app) as client:
        report = warmer_of(app).report
        assert report is not None
        tiles = low_zoom_tiles(CITY)
        assert (report.tiles, report.rendered, report.max_zoom) == (len(tiles), len(tiles), 8)
        for tile in tiles:
            response = client.get(f"/basemap/{tile.z}/{tile.x}/{tile.y}.png")
            assert response.status_code == 200
            assert response.headers["x-cache"] == "hit", tile
        assert response.headers["x-shapes"] == "1"  # zoom 8: the lake, as the route draws it
        [beyond] = tiles_over(CITY, 9)
        assert client.get(f"/basemap/9/{beyond.x}/{beyond.y}.png").headers["x-cache"] == "miss"


def test_a_restarted_server_finds_its_warm_up_on_disk_and_renders_nothing(
    engine: Engine, warm_app: Callable[[], FastAPI]
) -> None:
    seed_city(engine)
    first = warm_app()
    with TestClient(first):
        warmer_of(first)
    again = warm_app()
    with TestClient(again):
        report = warmer_of(again).report
    assert report is not None and report.tiles > 0
    assert report.rendered == 0


def test_a_failed_warm_up_is_logged_with_its_traceback_and_the_service_still_answers(
    engine: Engine,
    warm_app: Callable[[], FastAPI],
    warmup_log: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_city(engine)

    def database_down(conn: object) -> str:
        raise ConnectionError("database is down")

    monkeypatch.setattr(cim.api.warmup, "data_stamp", database_down)
    app = warm_app()
    with TestClient(app) as client:
        assert warmer_of(app).report is None
        response = client.get("/overview")
        tile = client.get("/basemap/8/209/105.png")
    assert response.status_code == 200
    assert response.json()["cities"][0]["code"] == "420100"
    assert tile.status_code == 200 and tile.headers["x-cache"] == "miss"
    [line] = warmup_log
    assert line["level"] == "error" and "warm-up failed" in line["message"]
    assert "Traceback (most recent call last)" in line["traceback"]
    assert "database is down" in line["traceback"] and "database_down" in line["traceback"]


def test_the_service_answers_during_the_warm_up_and_a_request_then_waits_for_the_same_computation(
    engine: Engine, warm_app: Callable[[], FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_city(engine)
    release = threading.Event()
    started = threading.Event()
    calls: list[float] = []
    real = cim.api.overview.overview_rows

    def slow_rows(conn: Any, tolerance_deg: float) -> Any:
        calls.append(tolerance_deg)
        started.set()
        assert release.wait(30)
        return real(conn, tolerance_deg)

    monkeypatch.setattr(cim.api.overview, "overview_rows", slow_rows)
    app = warm_app()
    with TestClient(app) as client:
        assert started.wait(30)  # the warm-up is counting…
        assert client.get("/conformance").status_code == 200  # …and the service answers meanwhile
        answer: list[Any] = []
        waiting = threading.Thread(target=lambda: answer.append(client.get("/overview")))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # the first viewer waits for the warm-up's answer…
        release.set()
        waiting.join(30)
        warmer_of(app)
    assert answer[0].status_code == 200
    assert answer[0].json()["cities"][0]["counts"]["buildings"] == 3
    assert calls == [cim.api.overview.DEFAULT_SIMPLIFY]  # …instead of computing it again


def test_shutdown_stops_a_warm_up_between_tiles(
    engine: Engine, warm_app: Callable[[], FastAPI], monkeypatch: pytest.MonkeyPatch, warmup_log: list[dict[str, Any]]
) -> None:
    seed_city(engine)
    drawing = threading.Event()
    release = threading.Event()
    drawn: list[object] = []
    real = cim.api.warmup.cached_tile

    def held(*args: Any, **kwargs: Any) -> Any:
        drawn.append(args[3])
        drawing.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(cim.api.warmup, "cached_tile", held)
    app = warm_app()
    with TestClient(app):
        assert drawing.wait(30)
        app.state.warmer.stop(timeout=0)  # what the shutdown does first
        release.set()
    assert app.state.warmer.wait(10)
    assert len(drawn) == 1 < len(low_zoom_tiles(CITY))
    assert app.state.warmer.report.tiles == 1
    assert any("stopped by shutdown" in line["message"] for line in warmup_log)


def test_without_the_setting_nothing_is_warmed(client: TestClient, settings: Settings) -> None:
    assert client.app.state.warmer is None  # type: ignore[attr-defined]
    assert not (settings.data_path / "cache").exists()


def test_the_warm_up_is_on_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIM_API_WARM_CACHES")
    assert ApiSettings().warm_caches is True
    monkeypatch.setenv("CIM_API_WARM_CACHES", "false")
    assert ApiSettings().warm_caches is False


def test_low_zooms_are_whole_zooms_within_the_tile_bound() -> None:
    assert [t.z for t in low_zoom_tiles(CITY)] == list(range(9))
    assert low_zoom_tiles(None) == []
    world = (-180.0, -85.0, 180.0, 85.0)
    assert len(low_zoom_tiles(world, max_tiles=300)) == 1 + 4 + 16 + 64
    assert len(low_zoom_tiles(world, max_tiles=0)) == 0
    assert [tuple(t) for t in tiles_over((-1.0, -1.0, 1.0, 1.0), 1)] == [(0, 0, 1), (1, 0, 1), (0, 1, 1), (1, 1, 1)]
    assert [tuple(t) for t in tiles_over((10.0, 89.0, 11.0, 90.0), 3)] == [(4, 0, 3)]  # clamped to 85.05°
