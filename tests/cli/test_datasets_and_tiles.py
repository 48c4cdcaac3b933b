"""``cim tiles list|delete`` and ``cim datasets list|history|delete``: what is stored, and removing it safely."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cim.api.app import create_app
from cim.api.settings import ApiSettings, ViewerSettings
from cim.settings import Settings
from tests import factories
from tests.conftest import CliResult

RunCim = Callable[..., CliResult]
LON, LAT = 114.30, 30.58


def _buildings_geojson(path: Path, n: int, height: float = 12.0) -> Path:
    return factories.buildings_geojson(path, n, lambda i: {"name": f"楼{i}", "height": height}, LON, LAT)


def _json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _ingest(run_cim: RunCim, path: Path) -> int:
    return int(_json(run_cim("ingest", "vector", str(path), "--layer", "buildings", "--json"))["dataset_id"])


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_tileset_whose_folder_was_removed_is_listed_missing_and_left_out_of_the_api(
    run_cim: RunCim, settings: Settings, tmp_path: Path
) -> None:
    _ingest(run_cim, _buildings_geojson(tmp_path / "b.geojson", 3))
    _json(run_cim("tiles", "build", "city", "--layers", "buildings", "--json"))
    elsewhere = tmp_path / "elsewhere"
    _json(run_cim("tiles", "build", "gone", "--layers", "buildings", "--out", str(elsewhere), "--json"))
    shutil.rmtree(elsewhere)

    listed = {t["name"]: t for t in _json(run_cim("tiles", "list", "--json"))["tilesets"]}
    assert listed["city"]["available"] is True and listed["city"]["status"] == "ready"
    assert listed["gone"]["available"] is False and listed["gone"]["status"] == "missing"
    assert "files are gone" in listed["gone"]["missing_reason"]
    human = run_cim("tiles", "list")
    assert human.exit_code == 0 and "missing" in human.stdout and "gone:" in human.stderr

    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with TestClient(app) as client:
        names = [t["name"] for t in client.get("/tilesets").json()]
        assert names == ["city"]
        assert client.get("/tiles/city/tileset.json").status_code == 200
    app.state.engine.dispose()


def test_tileset_built_outside_the_served_folder_is_not_offered_to_the_viewer(
    run_cim: RunCim, settings: Settings, tmp_path: Path
) -> None:
    _ingest(run_cim, _buildings_geojson(tmp_path / "b.geojson", 2))
    _json(run_cim("tiles", "build", "outside", "--layers", "buildings", "--out", str(tmp_path / "out"), "--json"))
    (listed,) = _json(run_cim("tiles", "list", "--json"))["tilesets"]
    assert listed["status"] == "missing" and "outside the served folder" in listed["missing_reason"]


def test_tiles_delete_removes_the_registration_and_the_files_in_the_data_directory(
    run_cim: RunCim, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    _ingest(run_cim, _buildings_geojson(tmp_path / "b.geojson", 2))
    folder = Path(_json(run_cim("tiles", "build", "city", "--layers", "buildings", "--json"))["path"])
    assert (folder / "tileset.json").is_file()
    doc = _json(run_cim("tiles", "delete", "city", "--json"))
    assert doc["removed_files"] == [str(folder)] and not folder.exists()
    assert _count(engine, "SELECT count(*) FROM tileset") == 0
    assert _json(run_cim("tiles", "list", "--json"))["tilesets"] == []
    again = run_cim("tiles", "delete", "city")
    assert again.exit_code == 17 and again.stderr.count("\n") == 1 and "no tileset 'city'" in again.stderr


def test_tiles_delete_leaves_files_written_elsewhere_in_place(run_cim: RunCim, tmp_path: Path) -> None:
    _ingest(run_cim, _buildings_geojson(tmp_path / "b.geojson", 2))
    out = tmp_path / "mine"
    _json(run_cim("tiles", "build", "mine", "--layers", "buildings", "--out", str(out), "--json"))
    doc = _json(run_cim("tiles", "delete", "mine", "--json"))
    assert doc["removed_files"] == [] and doc["kept_files"] == [str(out.resolve())]
    assert (out / "tileset.json").is_file()


def test_datasets_list_shows_what_was_ingested(run_cim: RunCim, tmp_path: Path) -> None:
    first = _ingest(run_cim, _buildings_geojson(tmp_path / "a.geojson", 2))
    second = _ingest(run_cim, _buildings_geojson(tmp_path / "b.geojson", 3))
    doc = _json(run_cim("datasets", "list", "--json"))
    assert doc["numberMatched"] == 2
    assert [d["id"] for d in doc["datasets"]] == [second, first]
    assert doc["datasets"][0]["counts"]["stored"] == 3
    human = run_cim("datasets", "list", "--kind", "vector")
    assert human.exit_code == 0 and "a" in human.stdout and "buildings" in human.stdout
    bad = run_cim("datasets", "list", "--kind", "cad")
    assert bad.exit_code == 2 and "--kind" in bad.stderr


def test_datasets_history_shows_every_version_with_its_live_and_history_rows(run_cim: RunCim, tmp_path: Path) -> None:
    path = _buildings_geojson(tmp_path / "city.geojson", 2)
    v1 = _ingest(run_cim, path)
    v2 = _ingest(run_cim, _buildings_geojson(path, 3, height=20.0))  # the surveyors sent a new file
    doc = _json(run_cim("datasets", "history", str(v2), "--json"))
    versions = doc["versions"]
    assert [v["id"] for v in versions] == [v1, v2]
    assert [v["status"] for v in versions] == ["superseded", "loaded"]
    assert versions[0]["rows"] == {"building": {"live": 0, "history": 2}}
    assert versions[1]["rows"] == {"building": {"live": 3, "history": 0}}
    assert _json(run_cim("datasets", "history", str(v1), "--json"))["versions"] == versions
    missing = run_cim("datasets", "history", "999999")
    assert missing.exit_code == 17 and "no dataset 999999" in missing.stderr


def test_deleting_a_dataset_that_tiles_were_built_from_is_refused_without_force(
    run_cim: RunCim, engine: Engine, tmp_path: Path
) -> None:
    dataset = _ingest(run_cim, _buildings_geojson(tmp_path / "b.geojson", 3))
    _json(run_cim("tiles", "build", "city", "--layers", "buildings", "--json"))
    refused = run_cim("datasets", "delete", str(dataset))
    assert refused.exit_code == 19 and "city" in refused.stderr and "--force" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert _count(engine, "SELECT count(*) FROM building") == 3

    doc = _json(run_cim("datasets", "delete", str(dataset), "--force", "--json"))
    assert doc["deleted_rows"] == {"building": 3} and doc["stale_tilesets"] == ["city"]
    assert _count(engine, "SELECT count(*) FROM building") == 0
    assert _count(engine, "SELECT count(*) FROM dataset") == 0
    (city,) = _json(run_cim("tiles", "list", "--json"))["tilesets"]
    assert city["status"] == "stale"


def test_deleting_a_dataset_without_tiles_removes_it_and_its_rows(
    run_cim: RunCim, engine: Engine, tmp_path: Path
) -> None:
    keep = _ingest(run_cim, _buildings_geojson(tmp_path / "keep.geojson", 2))
    drop = _ingest(run_cim, _buildings_geojson(tmp_path / "drop.geojson", 4))
    result = run_cim("datasets", "delete", str(drop))
    assert result.exit_code == 0, result.stderr
    assert "4 building" in result.stderr
    assert _count(engine, "SELECT count(*) FROM building") == 2
    assert [d["id"] for d in _json(run_cim("datasets", "list", "--json"))["datasets"]] == [keep]


def test_a_dataset_delete_that_fails_half_way_deletes_nothing(run_cim: RunCim, engine: Engine) -> None:
    with engine.begin() as conn:
        dataset = factories.dataset(conn, name="survey", layer="parcels")
        for i in range(3):
            factories.building(conn, dataset, factories.square(LON + i * 0.001, LAT))
        factories.parcel(conn, dataset, factories.square(LON, LAT, 0.01), max_height=60.0)
        # Something refuses the parcel deletion after the buildings went: the whole delete must roll back.
        conn.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN RAISE EXCEPTION 'parcels are frozen'; END$$"
            )
        )
        conn.execute(text("CREATE TRIGGER frozen BEFORE DELETE ON parcel FOR EACH ROW EXECUTE FUNCTION refuse()"))
    result = run_cim("datasets", "delete", str(dataset))
    assert result.exit_code != 0 and "parcels are frozen" in result.stderr
    assert _count(engine, "SELECT count(*) FROM building") == 3
    assert _count(engine, "SELECT count(*) FROM parcel") == 1
    assert _count(engine, f"SELECT count(*) FROM dataset WHERE id = {dataset}") == 1


@pytest.mark.parametrize("command", [("tiles", "list"), ("datasets", "list")])
def test_empty_lists_say_so_and_succeed(run_cim: RunCim, command: tuple[str, str]) -> None:
    result = run_cim(*command)
    assert result.exit_code == 0 and "no " in result.stderr


def test_deleting_a_dem_removes_its_geotiff_and_base_heights_no_longer_come_from_it(
    run_cim: RunCim, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    from cim.dem import live_dem
    from tests.test_dem import write_linear_dem

    dem, _, _ = write_linear_dem(tmp_path / "dem.tif", size=32)
    dataset = _json(run_cim("ingest", "raster", str(dem), "--kind", "dem", "--json"))["dataset_id"]
    with engine.connect() as conn:
        stored = live_dem(conn)
    assert stored is not None and stored.path.is_file()
    doc = _json(run_cim("datasets", "delete", str(dataset), "--json"))
    assert doc["removed_file"] == str(stored.path) and not stored.path.exists()
    with engine.connect() as conn:
        assert live_dem(conn) is None


def test_every_tile_class_is_marked_stale_by_the_datasets_it_draws_from() -> None:
    """Deleting a dataset flags the tilesets whose classes draw from it: no built-in tile class is forgotten."""
    from cim.db.datasets import TILE_LAYERS_OF
    from tiles import classes

    drawn = {layer for layers in TILE_LAYERS_OF.values() for layer in layers}
    assert set(classes.layers()) <= drawn, sorted(set(classes.layers()) - drawn)
