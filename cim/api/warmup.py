"""Warming of the viewer's caches at start-up: the default ``/overview`` answer and the base map's low zooms.

A viewer's first call is ``/overview`` (on a province, seconds of spatial join when rows carry no district
code), then the base map around the data. :class:`CacheWarmer` computes both in one daemon thread as the
service starts, through the very functions the routes use (:meth:`cim.api.overview.OverviewFactory.overview_bytes`,
:func:`cim.api.basemap.cached_tile`), so their caches hold the answers under the keys the routes look up and a
request that arrives during the warm-up waits for the same computation instead of running its own. The work is
bounded: whole zooms from 0 up to :data:`WARM_MAX_ZOOM`, at most :data:`WARM_MAX_TILES` tiles. Worker processes
of one server take turns through a lock file in the cache folder, so the first computes and the others find
its answers on disk. Any failure is logged with its traceback and leaves the caches to fill on first use; the
service never waits for the warm-up nor stops because of it. Switched by ``CIM_API_WARM_CACHES``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cim.api.basemap import cached_tile, tile_cache
from cim.api.overview import DEFAULT_SIMPLIFY, OverviewFactory
from cim.db.onemap import data_extent, data_stamp
from cim.onemap.basemap import Tile, layers_at, tiles_over

log = logging.getLogger("cim.api.warmup")

WARM_MAX_ZOOM = 8
"""Highest base-map zoom seeded at start-up (a zoom-8 tile is ~150 km wide: a province is a few dozen)."""
WARM_MAX_TILES = 300
"""Most base-map tiles seeded at start-up: the zoom that would pass it, and those above, are left out."""
STOP_SECONDS = 5.0
"""How long the service's shutdown waits for a warm-up in progress before closing the database pool."""


def low_zoom_tiles(
    bbox: tuple[float, float, float, float] | None,
    max_zoom: int = WARM_MAX_ZOOM,
    max_tiles: int = WARM_MAX_TILES,
) -> list[Tile]:
    """The tiles of zooms 0 to ``max_zoom`` over ``bbox`` (west, south, east, north; degrees), whole zooms
    only, stopping before the zoom that would bring the count above ``max_tiles``; none when ``bbox`` is None.

    >>> [t.z for t in low_zoom_tiles((114.29, 30.58, 114.31, 30.59), max_zoom=3)]
    [0, 1, 2, 3]
    >>> len(low_zoom_tiles((-180.0, -85.0, 180.0, 85.0), max_zoom=8, max_tiles=300))
    85
    """
    tiles: list[Tile] = []
    if bbox is None:
        return tiles
    for z in range(max_zoom + 1):
        zoom = tiles_over(bbox, z)
        if len(tiles) + len(zoom) > max_tiles:
            break
        tiles += zoom
    return tiles


@dataclass(frozen=True)
class WarmReport:
    """What one warm-up did: seconds spent on ``/overview``, base-map tiles seeded (and how many had to be
    rendered rather than found on disk), their highest zoom (-1: none) and the seconds they took."""

    overview_seconds: float
    tiles: int
    rendered: int
    max_zoom: int
    tiles_seconds: float


def warm_caches(
    state: Any,
    overview: OverviewFactory,
    stop: threading.Event | None = None,
    *,
    max_zoom: int = WARM_MAX_ZOOM,
    max_tiles: int = WARM_MAX_TILES,
) -> WarmReport:
    """Fill the caches of the app whose state is ``state`` (its ``engine`` and ``settings``): the default
    ``/overview`` answer of ``overview`` (the app's factory) and the base-map tiles of :func:`low_zoom_tiles`
    over the stored data's extent. Stops between tiles once ``stop`` is set.
    """
    stop = stop or threading.Event()
    started = time.perf_counter()
    with state.engine.connect() as conn:
        stamp = data_stamp(conn)
        overview.overview_bytes(state, conn, stamp, DEFAULT_SIMPLIFY)
        overview_seconds = time.perf_counter() - started
        started = time.perf_counter()
        cache = tile_cache(state)
        seeded = rendered = 0
        top = -1
        for tile in low_zoom_tiles(data_extent(conn), max_zoom, max_tiles):
            if stop.is_set():
                break
            if not cached_tile(cache, conn, stamp, tile, layers_at(tile.z)).hit:
                rendered += 1
            seeded += 1
            top = tile.z
    return WarmReport(overview_seconds, seeded, rendered, top, time.perf_counter() - started)


@contextlib.contextmanager
def _turn(folder: Path, stop: threading.Event) -> Iterator[bool]:
    """Hold the warm-up lock of ``folder`` (shared by the server's worker processes); False when stopped first.

    Without a usable lock file (read-only data directory) the warm-up goes on alone.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".warmup.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield not stop.is_set()
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop.wait(0.2):
                    yield False
                    return
        yield not stop.is_set()
    finally:
        os.close(fd)  # releases the lock


class CacheWarmer:
    """Runs :func:`warm_caches` once in a daemon thread; :meth:`stop` asks it to stop between tiles."""

    def __init__(self, state: Any, overview: OverviewFactory) -> None:
        """Warm the caches of the app whose state is ``state``, with its overview factory ``overview``."""
        self.state = state
        self.overview = overview
        self.report: WarmReport | None = None
        """What the warm-up did, once it has finished without an error."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cim-cache-warmup", daemon=True)

    def start(self) -> None:
        """Start the warm-up in the background (returns at once)."""
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the warm-up to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Ask the warm-up to stop and wait up to ``timeout`` seconds for it (before the pool is closed)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with _turn(self.state.settings.data_path / "cache", self._stop) as mine:
                if not mine:
                    return
                report = warm_caches(self.state, self.overview, self._stop)
        except Exception:
            if self._stop.is_set():  # the service is stopping under it: the pool may be closed already
                log.info("cache warm-up stopped by the service's shutdown", exc_info=True)
            else:
                log.exception("cache warm-up failed; /overview and the base map fill their caches on first use")
            return
        self.report = report
        log.info(
            "cache warm-up: /overview in %.3f s; %d base-map tiles (%d rendered, zooms 0-%d) in %.3f s%s",
            report.overview_seconds,
            report.tiles,
            report.rendered,
            report.max_zoom,
            report.tiles_seconds,
            " (stopped by shutdown)" if self._stop.is_set() else "",
        )
