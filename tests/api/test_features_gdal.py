"""GDAL's OGC API – Features driver (OAPIF, through pyogrio), a client the platform did not write, reads the
collections over real HTTP: the landing page, the collection list, paging by ``next`` links, bbox, the
properties and the geometries, as a GIS desktop or a CIM+ application would."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest
import shapely
from sqlalchemy import Engine

from cim.settings import Settings
from tests import factories
from tests.live import cim_serve, stop_process, wait_ready

ROW = 8
"""Buildings on a ROW × ROW grid (every third residential, the others offices)."""


def _use(i: int) -> str:
    return "residential" if i % 3 == 0 else "office"


@pytest.fixture
def base(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[str]:
    """``cim serve`` on this test's database, on a loopback port, with ROW × ROW buildings and two hydrants."""
    with engine.begin() as conn:
        ds = factories.dataset(conn, "grid")
        for i in range(ROW * ROW):
            lon, lat = 114.30 + (i % ROW) * 0.001, 30.58 + (i // ROW) * 0.001
            factories.building(conn, ds, factories.square(lon, lat), height=10.0 + i, use=_use(i), name=f"楼{i}")
        fs = factories.dataset(conn, "hydrants", layer="facilities")
        for lon in (114.301, 114.302):
            factories.facility(conn, fs, "hydrant", shapely.Point(lon, 30.581), name="消火栓")
    # A server process of its own: GDAL holds this process's interpreter while it waits for an answer.
    log = tmp_path / "serve.log"
    proc, url = cim_serve(settings, log, "--workers", "1", extra_env={"CIM_SENSING_MQTT": "false"})

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/conformance", timeout=5) as r:
            return bool(r.status == 200)

    try:
        wait_ready(proc, ready, log, what="cim serve", every=0.3)
        yield url
    finally:
        stop_process(proc)


def test_gdal_lists_the_collections_and_reads_every_building_through_the_next_links(base: str) -> None:
    layers = {name for name, _geometry in pyogrio.list_layers(f"OAPIF:{base}")}
    assert {"buildings", "facilities"} <= layers
    # A page of 10 over 64 buildings: GDAL follows seven "next" links.
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer="buildings", PAGE_SIZE="10")
    assert len(frame) == ROW * ROW
    # GDAL asks for the collection's storageCrs (OGC API – Features Part 2): CGCS2000, whose lat/lon axis order
    # the server keeps and GDAL turns back into x = longitude (the bounds below check it).
    assert frame.crs is not None and frame.crs.to_epsg() == 4490
    names = {f"楼{i}": i for i in range(ROW * ROW)}
    assert set(frame["name"]) == set(names)
    for name, use, height, geom in zip(frame["name"], frame["use"], frame["height"], frame.geometry, strict=True):
        i = names[name]
        assert use == _use(i) and height == pytest.approx(10.0 + i)
        lon, lat = 114.30 + (i % ROW) * 0.001, 30.58 + (i // ROW) * 0.001
        assert geom.geom_type in ("Polygon", "MultiPolygon")
        assert geom.bounds == pytest.approx((lon, lat, lon + 0.0002, lat + 0.0002), abs=1e-7)


def test_gdal_bbox_and_attribute_filters_give_the_same_rows_as_the_database(base: str) -> None:
    # The first two columns of the first two rows: bbox goes to the server, GDAL keeps what intersects.
    box = (114.2995, 30.5795, 114.3013, 30.5813)
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer="buildings", bbox=box)
    assert sorted(frame["name"]) == sorted(f"楼{i}" for i in (0, 1, ROW, ROW + 1))
    residential = pyogrio.read_dataframe(f"OAPIF:{base}", layer="buildings", where="use = 'residential'")
    assert sorted(residential["name"]) == sorted(f"楼{i}" for i in range(ROW * ROW) if _use(i) == "residential")
    hydrants = pyogrio.read_dataframe(f"OAPIF:{base}", layer="facilities")
    assert list(hydrants["kind"]) == ["hydrant", "hydrant"] and set(hydrants.geometry.geom_type) == {"Point"}
