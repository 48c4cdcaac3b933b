"""`make demo`'s pipeline: the sample city is generated, ingested, tiled and analysed; a second run changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

from tests.conftest import CliResult

RunCim = Callable[..., CliResult]


def test_demo_loads_the_sample_city_builds_its_tiles_and_a_second_run_changes_nothing(
    run_cim: RunCim, engine: Engine, tmp_path: Path
) -> None:
    first = run_cim("demo", "--no-serve", "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["sample_city"]["generated"] is True
    tileset = report["tileset"]
    assert tileset["buildings"] >= 2000 and tileset["elements"] > 0 and tileset["terrain_tiles"] > 0
    assert tileset["roads"] > 0 and tileset["boundaries"] > 0  # the demo map shows roads and districts
    assert (Path(tileset["path"]) / "tileset.json").is_file()
    scope_values = [v for v in report["health_check"]["values"] if v["district_code"] is None]
    assert len({v["code"] for v in scope_values}) >= 14
    with engine.connect() as conn:
        names = set(conn.execute(text("SELECT facility_type FROM building WHERE cim_level >= 5")).scalars())
        assert {"IfcBuilding", "IfcBridge"} <= names
        assert conn.execute(text("SELECT count(*) FROM tileset WHERE name = 'city'")).scalar_one() == 1
        datasets = conn.execute(text("SELECT count(*) FROM dataset")).scalar_one()

    second = run_cim("demo", "--no-serve", "--json")
    assert second.exit_code == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["sample_city"]["generated"] is False
    assert all(ingest.get("skipped") for ingest in again["sample_city"]["ingests"])
    assert again["tileset"]["written"] == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM dataset")).scalar_one() == datasets
