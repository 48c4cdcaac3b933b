"""Viewer load: time to first frame and to all tiles loaded, tile requests and bytes, in headless Chromium.

Two cities, each in its own database on the platform's server (``DATABASE_URL`` or the private cluster)
and its own data directory under ``.cim/bench-viewer/``:

- ``sample``: the demo's sample city (synthetic Wuhan district with DEM, IFC office and bridge) loaded by
  ``sample_models.city.load_sample_city`` and built by ``tiles.build.build_tileset`` with terrain;
- ``synthetic``: N synthetic buildings (default 100,000: 16 m squares on a 30 m grid, heights 6–95 m)
  inserted with one SQL statement and built into a buildings-only tileset.

For each, the real app (``cim.api.app.create_app``) is served on a loopback port and the viewer is opened in
Debian's Chromium (software WebGL, cold cache, 1100 × 720). Figures come from the page itself: Cesium's
first rendered frame and the moment every tileset and the globe report all tiles loaded (milliseconds since
navigation start), and the Resource Timing entries of ``/tiles/`` requests (count, bytes on the wire).

Run: ``.venv/bin/python benchmarks/viewer_load.py [--buildings N] [--only sample|synthetic] [--fresh]
[--screenshot docs/viewer.png]`` (the screenshot shows the sample city around the IFC office, coloured by use).
Databases and tilesets are reused across runs unless ``--fresh`` is given. Figures taken while other work
loads the machine are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, text

from cim.db.cluster import PrivateCluster, ensure_extensions
from cim.db.engine import connect_url, make_engine
from cim.db.migrate import upgrade_to_head
from cim.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the browser and server helpers live in tests/e2e/conftest.py
DATA = ROOT / ".cim" / "bench-viewer"
GRID_PITCH_M = 30.0
BUILDING_SIZE_M = 16.0
LON0, LAT0 = 114.20, 30.50


@dataclass
class LoadFigures:
    """What one cold load of the viewer cost."""

    city: str
    buildings: int
    tiles_in_tileset: int
    build_seconds: float | None
    first_frame_ms: float
    all_tiles_loaded_ms: float
    tile_requests: int
    tile_bytes: int
    terrain_requests: int
    terrain_bytes: int
    all_requests: int
    all_bytes: int


def server_url() -> str:
    """libpq URL of the maintenance database of the server to use."""
    external = os.environ.get("DATABASE_URL")
    url = connect_url(external) if external else PrivateCluster(ROOT / ".cim").up()
    base, _, _ = url.split("?")[0].rpartition("/")
    return f"{base}/postgres"


def database(name: str, fresh: bool) -> tuple[str, bool]:
    """URL of benchmark database ``name`` (created and migrated when missing); True when it was created."""
    admin = server_url()
    url = f"{admin.rpartition('/')[0]}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    if not exists:
        with psycopg.connect(url, autocommit=True) as conn:
            ensure_extensions(conn)
        upgrade_to_head(url)
    return url, not exists


def insert_synthetic_buildings(engine: Engine, n: int) -> None:
    """Insert ``n`` square buildings on a regular grid south-west of Wuhan's centre (one SQL statement)."""
    from cim.db.datasets import insert_dataset

    side = int(n**0.5) + 1
    dlat = GRID_PITCH_M / 110_900.0
    dlon = GRID_PITCH_M / (111_320.0 * 0.8616)
    size_lat = dlat * BUILDING_SIZE_M / GRID_PITCH_M
    size_lon = dlon * BUILDING_SIZE_M / GRID_PITCH_M
    with engine.begin() as conn:
        dataset_id = insert_dataset(
            conn, name="synthetic-buildings", kind="vector", layer="buildings", path="/benchmark", sha256="0" * 64
        )
        conn.execute(
            text(
                """
                INSERT INTO building (name, address, footprint, height, storeys, use, safety_class, dataset_id)
                SELECT '合成建筑' || i, '合成路' || i || '号',
                       ST_Multi(ST_MakeEnvelope(:lon0 + (i % :side) * :dlon, :lat0 + (i / :side) * :dlat,
                                                :lon0 + (i % :side) * :dlon + :slon,
                                                :lat0 + (i / :side) * :dlat + :slat, 4490)),
                       6 + (i * 7919 % 90), (6 + (i * 7919 % 90)) / 3,
                       (ARRAY['residential','commercial','office','industrial','public','mixed'])[1 + i % 6],
                       (ARRAY['A','B','C','D'])[1 + (i * 31) % 4], :dataset
                FROM generate_series(0, :n - 1) AS i
                """
            ),
            {
                "lon0": LON0,
                "lat0": LAT0,
                "side": side,
                "dlon": dlon,
                "dlat": dlat,
                "slon": size_lon,
                "slat": size_lat,
                "dataset": dataset_id,
                "n": n,
            },
        )


def prepare(city: str, n_buildings: int, fresh: bool) -> tuple[Settings, int, int, float | None]:
    """Database, data directory and tileset of one city; returns (settings, buildings, tiles, build seconds)."""
    from tiles.build import build_tileset

    url, created = database(f"cim_bench_viewer_{city}", fresh)
    settings = Settings(data_dir=DATA / city, database_url=url)
    engine = make_engine(url)
    try:
        build_seconds: float | None = None
        tileset_json = settings.data_path / "tiles" / city / "tileset.json"
        if created or not tileset_json.exists():
            if city == "sample":
                from sample_models.city import load_sample_city

                load_sample_city(engine, settings, DATA / "sample-files")
                layers: tuple[str, ...] = ("buildings", "elements", "facilities", "terrain")
            else:
                insert_synthetic_buildings(engine, n_buildings)
                layers = ("buildings",)
            started = time.perf_counter()
            build_tileset(engine, settings, city, layers=layers, jobs=2)
            build_seconds = round(time.perf_counter() - started, 1)
        with engine.connect() as conn:
            buildings = int(conn.execute(text("SELECT count(*) FROM building WHERE valid_to IS NULL")).scalar_one())
            tiles = int(conn.execute(text("SELECT tile_count FROM tileset WHERE name = :n"), {"n": city}).scalar_one())
    finally:
        engine.dispose()
    return settings, buildings, tiles, build_seconds


def measure(settings: Settings) -> dict[str, Any]:
    """Open the viewer cold in Chromium against the real app; return timings and resource figures."""
    from tests.e2e.conftest import launch_browser, open_viewer, start_server, stop_server

    live = start_server(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="cim-bench-chromium-") as profile:
            playwright, browser = launch_browser(Path(profile))
            try:
                browser.page.add_init_script("performance.setResourceTimingBufferSize(1000000);")
                timings = open_viewer(browser, live.base_url)
                resources: list[dict[str, Any]] = browser.page.evaluate(
                    """() => performance.getEntriesByType('resource').map((e) => ({
                        name: e.name, bytes: e.transferSize || e.encodedBodySize || 0 }))"""
                )
                errors = browser.log.console_errors + browser.log.page_errors
            finally:
                browser.context.close()
                playwright.stop()
    finally:
        stop_server(live)
    tiles = [r for r in resources if "/tiles/" in r["name"] and "/terrain/" not in r["name"]]
    terrain = [r for r in resources if "/tiles/" in r["name"] and "/terrain/" in r["name"]]
    return {
        "first_frame_ms": round(float(timings["firstFrame"]), 0),
        "all_tiles_loaded_ms": round(float(timings["allTilesLoaded"]), 0),
        "tile_requests": len(tiles),
        "tile_bytes": sum(int(r["bytes"]) for r in tiles),
        "terrain_requests": len(terrain),
        "terrain_bytes": sum(int(r["bytes"]) for r in terrain),
        "all_requests": len(resources),
        "all_bytes": sum(int(r["bytes"]) for r in resources),
        "errors": errors,
    }


SCREENSHOT_VIEW = "#cam=114.2985,30.5668,1100,22,-27,0&mode=use"
"""Camera (lon, lat, height, heading, pitch, roll) and colouring of the README screenshot."""


def save_small_png(png: bytes, path: Path) -> None:
    """Write a screenshot as a compact PNG: colours quantised to 5 bits per channel, zlib level 9."""
    import warnings

    import numpy as np
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(png) as memfile, memfile.open() as src:
            pixels = src.read()[:3]
        pixels = (pixels & np.uint8(0xF8)) | np.uint8(0x04)
        path.parent.mkdir(parents=True, exist_ok=True)
        profile = {"driver": "PNG", "width": pixels.shape[2], "height": pixels.shape[1], "count": 3, "dtype": "uint8"}
        with rasterio.open(path, "w", ZLEVEL=9, **profile) as dst:
            dst.write(pixels)
    for extra in path.parent.glob(path.name + ".aux.xml"):
        extra.unlink()


def screenshot(settings: Settings, path: Path) -> None:
    """Open the viewer on the README view, wait for every tile, save a compact PNG screenshot."""
    from tests.e2e.conftest import launch_browser, open_viewer, start_server, stop_server

    live = start_server(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="cim-bench-chromium-") as profile:
            playwright, browser = launch_browser(Path(profile))
            try:
                open_viewer(browser, live.base_url, SCREENSHOT_VIEW)
                browser.page.evaluate("() => window.cimViewer.idle().then(() => true)")
                save_small_png(browser.page.screenshot(), path)
            finally:
                browser.context.close()
                playwright.stop()
    finally:
        stop_server(live)
    print(f"screenshot: {path} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    """Prepare the cities, load the viewer on each, print a table and one JSON line per city."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--buildings", type=int, default=100_000, help="synthetic buildings (default 100000)")
    parser.add_argument("--only", choices=["sample", "synthetic"], help="measure one city only")
    parser.add_argument("--fresh", action="store_true", help="rebuild databases and tilesets")
    parser.add_argument("--screenshot", type=Path, help="also save a README screenshot of the sample city here")
    parser.add_argument("--no-measure", action="store_true", help="only prepare (and screenshot), no timings")
    args = parser.parse_args()
    cities = [args.only] if args.only else ["sample", "synthetic"]
    results: list[LoadFigures] = []
    for city in cities:
        settings, buildings, tiles, build_seconds = prepare(city, args.buildings, args.fresh)
        if city == "sample" and args.screenshot:
            screenshot(settings, args.screenshot)
        if args.no_measure:
            continue
        figures = measure(settings)
        if figures.pop("errors"):
            print(f"warning: the page reported errors while loading {city}")
        results.append(LoadFigures(city, buildings, tiles, build_seconds, **figures))
    print(
        f"{'city':<10} {'buildings':>9} {'tiles':>6} {'first frame':>12} {'all loaded':>11} "
        f"{'tile req':>9} {'tile MB':>8} {'terrain req':>12} {'all req':>8} {'all MB':>7}"
    )
    for r in results:
        print(
            f"{r.city:<10} {r.buildings:>9} {r.tiles_in_tileset:>6} {r.first_frame_ms / 1000:>11.1f}s "
            f"{r.all_tiles_loaded_ms / 1000:>10.1f}s {r.tile_requests:>9} {r.tile_bytes / 1e6:>8.2f} "
            f"{r.terrain_requests:>12} {r.all_requests:>8} {r.all_bytes / 1e6:>7.2f}"
        )
    for r in results:
        print(json.dumps(asdict(r)))


if __name__ == "__main__":
    main()
