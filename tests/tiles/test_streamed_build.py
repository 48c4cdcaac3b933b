"""A build too large to hold whole is streamed by partition (grid cells read one at a time): it must write
the very tileset the whole build writes, byte for byte, and pass the official validator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text

from cim.settings import Settings
from tests import factories
from tests.tiles import official
from tests.tiles.city import ORIGIN, box_tin_wkb, insert_element, make_city
from tiles import partition
from tiles.build import TileBuildReport, build_tileset
from tiles.glb import read_glb
from tiles.stream import COUNT_LEVEL

SMALL: dict[str, Any] = {"leaf_capacity": 20.0, "parent_capacity": 6}
SPREAD_DEG = 0.25
"""Half-width of the area the extra buildings cover: several count cells (180°/2¹² ≈ 0.044°) wide."""


@pytest.fixture
def province(engine: Engine, tmp_path: Path) -> int:
    """The test city, plus buildings over several count cells, plus a BIM building whose element lies in
    another cell than the building (it must still replace the building's block, in the owner's partition)."""
    make_city(engine, tmp_path)
    rng = np.random.default_rng(18)
    with engine.begin() as conn:
        ds = factories.dataset(conn, "spread")
        for i in range(400):
            lon = ORIGIN[0] + rng.uniform(-SPREAD_DEG, SPREAD_DEG)
            lat = ORIGIN[1] + rng.uniform(-SPREAD_DEG, SPREAD_DEG) * (0.2 if i % 3 else 1.0)
            # Equal heights and sizes for some: ties in importance, broken the same way both ways.
            size = 0.0002 if i % 4 == 0 else float(rng.uniform(0.0001, 0.0004))
            factories.building(conn, ds, factories.square(lon, lat, size), height=30.0 if i % 4 == 0 else 8.0 + i % 50)
        # In the city's count cell, which alone is a partition (it holds more than 40 buildings).
        lon, lat = ORIGIN[0] + 0.002, ORIGIN[1] - 0.002
        far = factories.building(conn, ds, factories.square(lon, lat, 0.0002), height=20.0, use="office")
        ifc = factories.dataset(conn, "far.ifc", kind="ifc", layer="ifc")
        wkb = box_tin_wkb(lon + 0.05, lat + 0.05, 30.0, (10.0, 10.0, 3.0))  # about 7 km away: another cell
        insert_element(conn, ifc, far, "0FarElementGuid0000000", wkb)
    return far


def _files(root: Path) -> dict[str, str]:
    """Every file of a tileset directory (but the build manifest) by relative path → SHA-256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def _uses_extension(root: Path, extension: str) -> bool:
    """Whether some glb content of the tileset requires ``extension``."""
    return any(extension in read_glb(p.read_bytes())[0].get("extensionsRequired", []) for p in root.rglob("*.glb"))


def _build(engine: Engine, settings: Settings, out: Path, **options: Any) -> TileBuildReport:
    return build_tileset(engine, settings, out.name, out=out, **SMALL, **options)


@pytest.mark.parametrize(
    ("implicit", "compress"), [(False, "none"), (True, "none"), (False, "meshopt"), (True, "draco")]
)
def test_streamed_build_writes_the_tileset_of_the_whole_build(
    engine: Engine, settings: Settings, province: int, tmp_path: Path, implicit: bool, compress: str
) -> None:
    whole = _build(engine, settings, tmp_path / "whole", implicit=implicit, compress=compress)
    streamed = _build(engine, settings, tmp_path / "streamed", implicit=implicit, compress=compress, partition_rows=40)
    assert whole.partitions == 0 and streamed.partitions > 4
    assert streamed.features == whole.features and streamed.tiles == whole.tiles > 20
    assert _files(tmp_path / "streamed") == _files(tmp_path / "whole")
    if compress != "none":
        assert _uses_extension(tmp_path / "streamed", official.COMPRESSION_EXTENSIONS[compress])
    if not implicit:
        tileset = json.loads((tmp_path / "streamed" / "tileset.json").read_text())
        uris = json.dumps(tileset)
        assert "-elements.glb" in uris and "-buildings.glb" in uris and "-facilities.glb" in uris
        result = official.run_validator(tmp_path / "streamed" / "tileset.json", tmp_path / "report.json")
        assert result["numErrors"] == 0, json.dumps(result["issues"][:5], ensure_ascii=False)


def test_builds_with_a_bbox_or_under_the_limit_are_held_whole(
    engine: Engine, settings: Settings, province: int, tmp_path: Path
) -> None:
    streamed = _build(engine, settings, tmp_path / "t", layers=["buildings"], partition_rows=40)
    assert streamed.partitions > 4 and streamed.buildings == 60 + 1 + 400 + 1
    assert partition.cell_size(COUNT_LEVEL) < SPREAD_DEG  # the fixture spans several count cells
    bbox = (ORIGIN[0] - 0.3, ORIGIN[1] - 0.3, ORIGIN[0] + 0.3, ORIGIN[1] + 0.3)
    held = _build(engine, settings, tmp_path / "b", layers=["buildings"], partition_rows=40, bbox=bbox)
    under = _build(engine, settings, tmp_path / "u", layers=["buildings"], partition_rows=10_000)
    assert held.partitions == under.partitions == 0
    assert held.buildings == under.buildings == streamed.buildings
    assert _files(tmp_path / "u") == _files(tmp_path / "t")


def test_cli_sets_the_partition_size(engine: Engine, province: int, run_cim) -> None:  # type: ignore[no-untyped-def]
    # The command line keeps the default leaf capacity (3,000): a partition is never smaller than a leaf tile,
    # so this build needs more buildings than one leaf holds (a grid of 4,000 small squares, in SQL).
    with engine.begin() as conn:
        ds = factories.dataset(conn, "grid")
        conn.execute(
            text(
                "INSERT INTO building (footprint, height, dataset_id) "
                "SELECT ST_Multi(ST_MakeEnvelope(x, y, x + 0.0001, y + 0.0001, 4490)), 10, :ds FROM ("
                "  SELECT :lon + (i % 80) * 0.006 AS x, :lat + (i / 80) * 0.006 AS y FROM generate_series(0, 3999) i"
                ") g"
            ),
            {"ds": ds, "lon": ORIGIN[0] - 0.24, "lat": ORIGIN[1] - 0.15},
        )
    res = run_cim("tiles", "build", "cli", "--layers", "buildings", "--partition-rows", "3000", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["partitions"] > 1 and doc["buildings"] == 4000 + 60 + 1 + 400 + 1
    held = run_cim("tiles", "build", "held", "--layers", "buildings", "--json")
    assert json.loads(held.stdout)["partitions"] == 0  # the default: a million buildings at once
    quiet = run_cim("tiles", "build", "cli", "--layers", "buildings", "--partition-rows", "3000")
    assert quiet.exit_code == 0 and "partitions" in quiet.stderr and "0 written" in quiet.stderr
    bad = run_cim("tiles", "build", "cli", "--partition-rows", "0")
    assert bad.exit_code != 0 and "--partition-rows must be at least 1" in bad.stderr
