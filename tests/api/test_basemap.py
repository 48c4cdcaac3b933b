"""``/basemap``: offline XYZ tiles drawn from parcels, water, green and roads; TileJSON; ETag; history."""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from cim.settings import Settings
from tests import factories
from tests.api.onemap_seed import seed_city


def xyz(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile (Web Mercator) that holds a point (degrees)."""
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def pixels(png: bytes) -> np.ndarray:
    """(rows, columns, 4) RGBA of a PNG, read by an independent decoder (GDAL through rasterio)."""
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(io.BytesIO(png)) as f, f.open() as src:
            return np.moveaxis(src.read(), 0, 2)


def colours(png: bytes) -> set[tuple[int, int, int]]:
    """Opaque colours present in a tile."""
    rgba = pixels(png)
    return {tuple(int(c) for c in p[:3]) for p in rgba[rgba[..., 3] > 0].reshape(-1, 4)}


def legend_colours(client: TestClient) -> dict[str, tuple[int, int, int]]:
    """Legend key (``layer:key``) → RGB from the TileJSON document."""
    out = {}
    for entry in client.get("/basemap").json()["legend"]:
        css = entry["color"].lstrip("#")
        out[f"{entry['layer']}:{entry['key']}"] = (int(css[:2], 16), int(css[2:4], 16), int(css[4:], 16))
    return out


def test_tile_over_the_city_draws_land_use_water_green_and_roads_in_the_legend_colours(
    client: TestClient, engine: Engine
) -> None:
    seed_city(engine)
    legend = legend_colours(client)
    drawn: set[tuple[int, int, int]] = set()
    for lon in (114.291, 114.309):  # the city spans two tiles at zoom 15
        x, y = xyz(lon, 30.582, 15)
        response = client.get(f"/basemap/15/{x}/{y}.png")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        drawn |= colours(response.content)
    for key in ("parcels:R", "water:water_body", "green:park", "roads:primary", "roads:"):
        assert legend[key] in drawn, key


def test_far_tiles_are_transparent_and_low_zooms_leave_out_small_things(client: TestClient, engine: Engine) -> None:
    seed_city(engine)
    far = client.get("/basemap/15/0/0.png")
    assert far.status_code == 200
    assert pixels(far.content)[..., 3].max() == 0
    x, y = xyz(114.300, 30.585, 8)
    assert client.get(f"/basemap/8/{x}/{y}.png").headers["x-shapes"] == "1"  # only the lake at zoom 8


def test_a_tile_revalidates_with_its_etag_and_changes_with_the_data(client: TestClient, engine: Engine) -> None:
    seed_city(engine)
    x, y = xyz(114.300, 30.585, 15)
    first = client.get(f"/basemap/15/{x}/{y}.png")
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = client.get(f"/basemap/15/{x}/{y}.png", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    with engine.begin() as conn:
        ds = factories.dataset(conn, "more-water")
        factories.facility(conn, ds, "water_body", factories.square(114.3005, 30.5855, 0.001))
    assert client.get(f"/basemap/15/{x}/{y}.png", headers={"If-None-Match": etag}).status_code == 200


def test_at_a_past_moment_the_buildings_of_that_time_are_drawn(client: TestClient, engine: Engine) -> None:
    seed_city(engine)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE building SET valid_from = now() - interval '2 days', valid_to = now() - interval '1 day'")
        )
    legend = legend_colours(client)
    x, y = xyz(114.305, 30.585, 17)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=36)).isoformat()
    then = client.get(f"/basemap/17/{x}/{y}.png", params={"at": past, "layers": "buildings"})
    now = client.get(f"/basemap/17/{x}/{y}.png", params={"layers": "buildings"})
    assert legend["buildings:"] in colours(then.content)
    assert now.headers["x-shapes"] == "0"
    assert then.headers["etag"] != now.headers["etag"]


def test_tilejson_names_the_template_bounds_and_legend(client: TestClient, engine: Engine) -> None:
    assert client.get("/basemap").json()["has_data"] is False
    seed_city(engine)
    body = client.get("/basemap").json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith("/basemap/{z}/{x}/{y}.png")
    assert body["bounds"] == [114.29, 30.58, 114.31, 30.59]
    assert {"zh": "水体", "en": "water body"}.items() <= next(
        e for e in body["legend"] if e["key"] == "water_body"
    ).items()


def test_bad_tiles_layers_and_moments_are_refused_with_the_reason(client: TestClient) -> None:
    assert client.get("/basemap/3/8/0.png").status_code == 400
    assert client.get("/basemap/21/0/0.png").status_code in (400, 422)
    bad_layer = client.get("/basemap/3/0/0.png?layers=roads,nonsense")
    assert bad_layer.status_code == 400
    assert "nonsense" in bad_layer.json()["detail"]
    bad_time = client.get("/basemap/3/0/0.png?at=yesterday")
    assert bad_time.status_code == 400
    assert "ISO 8601" in bad_time.json()["detail"]


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    """SQL statements the app runs inside the block."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@dataclass(frozen=True)
class FirstTile:
    """A zoom-15 tile over the seeded city: its path and the answer to its first GET (rendered and cached)."""

    path: str
    response: httpx.Response


@pytest.fixture
def first_tile(client: TestClient, engine: Engine) -> FirstTile:
    """The city seeded and one of its zoom-15 tiles requested once."""
    seed_city(engine)
    x, y = xyz(114.300, 30.585, 15)
    path = f"/basemap/15/{x}/{y}.png"
    return FirstTile(path, client.get(path))


def test_a_cached_tile_is_served_from_disk_without_querying_the_shapes(
    client: TestClient, first_tile: FirstTile, settings: Settings
) -> None:
    first = first_tile.response
    assert first.headers["x-cache"] == "miss"
    assert list((settings.data_path / "cache" / "basemap").rglob("*"))
    with statements(client) as sql:
        again = client.get(first_tile.path)
    assert again.headers["x-cache"] == "hit"
    assert again.content == first.content
    assert (again.headers["etag"], again.headers["x-shapes"]) == (first.headers["etag"], first.headers["x-shapes"])
    assert len(sql) == 1 and "FROM dataset" in sql[0]  # the data stamp only: no shapes query
    other = client.get(first_tile.path, params={"layers": "water"})
    assert other.headers["x-cache"] == "miss"  # the layers are part of the key


def test_a_data_change_leaves_the_cached_tiles_unread_and_removes_them(
    client: TestClient, engine: Engine, first_tile: FirstTile, settings: Settings
) -> None:
    before = first_tile.response
    stamps = [p.name for p in (settings.data_path / "cache" / "basemap").iterdir()]
    with engine.begin() as conn:
        ds = factories.dataset(conn, "more-water")
        factories.facility(conn, ds, "water_body", factories.square(114.3005, 30.5855, 0.001))
    after = client.get(first_tile.path)
    assert after.headers["x-cache"] == "miss"
    assert after.content != before.content
    assert int(after.headers["x-shapes"]) == int(before.headers["x-shapes"]) + 1
    now = [p.name for p in (settings.data_path / "cache" / "basemap").iterdir()]
    assert len(now) == 1 and now != stamps
