"""A tile class plug-in registered from the tests (tests/tiles/toy_tile_class.py) is built into a tileset
that the official validator accepts, and appears in `cim tiles classes`, the jobs API's layers and the
viewer's vocabulary (GET /vocabulary) with its legend, without touching any other file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cim.api.app import create_app
from cim.api.jobs import TilesJobRequest
from cim.settings import Settings
from tests import factories
from tests.tiles import official
from tests.tiles.toy_tile_class import Beacons
from tiles import classes
from tiles.build import build_tileset
from tiles.glb import read_glb


@pytest.fixture
def beacons() -> Iterator[Beacons]:
    """The toy class registered for one test."""
    toy = classes.register(Beacons())
    yield toy
    classes.unregister(toy.layer)


def test_a_registered_tile_class_is_built_validated_listed_and_in_the_legends(
    beacons: Beacons,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    run_cim,  # type: ignore[no-untyped-def]
) -> None:
    with engine.begin() as conn:
        ds = factories.dataset(conn, "stations", layer="facilities")
        ids = [
            factories.facility(conn, ds, "fire_station", shapely.Point(114.30 + 0.001 * i, 30.58), name=f"消防站{i}")
            for i in range(3)
        ]
        factories.facility(conn, ds, "hydrant", shapely.Point(114.30, 30.581))
    report = build_tileset(engine, settings, "toy", layers=["beacons", "facilities"], out=tmp_path / "toy")
    assert report.beacons == 3 and report.facilities == 4 and report.to_dict()["beacons"] == 3
    result = official.run_validator(tmp_path / "toy" / "tileset.json", tmp_path / "report.json")
    found = official.findings(result, tmp_path / "toy" / "tileset.json")
    assert result["numErrors"] == 0 and result["numWarnings"] == 0 and found.unexpected_infos == []
    (glb,) = (tmp_path / "toy" / "content").rglob("*-beacons.glb")
    meta = read_glb(glb.read_bytes())[0]["extensions"]["EXT_structural_metadata"]
    assert meta["propertyTables"][0]["class"] == "beacon" and meta["propertyTables"][0]["count"] == len(ids)
    tileset = json.loads((tmp_path / "toy" / "tileset.json").read_text())
    assert tileset["schema"]["classes"]["beacon"]["properties"]["cim_class"]["default"] == "beacon"
    # The command line, the jobs API and the viewer's vocabulary know the class.
    listed = run_cim("tiles", "classes", "--json")
    assert listed.exit_code == 0 and "beacons" in json.loads(listed.stdout)["layers"]
    assert TilesJobRequest(name="toy", layers=["beacons"]).layers == ["beacons"]
    with pytest.raises(ValueError, match="unknown layers"):
        TilesJobRequest(name="toy", layers=["nothing"])
    with TestClient(create_app(settings)) as client:
        beacon = client.get("/vocabulary").json()["TILE_CLASSES"]["beacon"]
    assert beacon["layer"] == "beacons" and beacon["legend"] == [
        {"value": "", "zh": "消防站标识", "en": "Fire station beacon", "color": "#e62828"}
    ]


def test_every_registered_tile_class_is_named_in_the_architecture_page() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text(encoding="utf-8")
    for c in classes.registered():
        assert f"`{c.layer}` → `{c.metadata_class}`" in doc, c.layer
