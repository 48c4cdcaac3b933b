"""The 3D Tiles builder on a small city (LOD1 buildings, a BIM building, facilities, DEM): what the tiles hold,
decoded back (the official 3d-tiles-validator runs on the same variants in test_official_validator.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text

from cim import crs
from cim.errors import TilesError
from cim.settings import Settings
from tests.ingest.sql import rows
from tests.tiles.city import City, make_city
from tests.tiles.validation import TilesetCheck, check_terrain, check_tileset
from tiles.build import TileBuildReport, build_tileset
from tiles.glb import read_glb

SMALL: dict[str, Any] = {"leaf_capacity": 20.0, "parent_capacity": 12}
"""Tiny tiles, so that the test city makes a tree."""


def build(engine: Engine, settings: Settings, name: str, out: Path, **options: Any) -> TileBuildReport:
    """:func:`build_tileset` into ``out`` with :data:`SMALL` tiles and these options."""
    return build_tileset(engine, settings, name, out=out, **SMALL, **options)


@pytest.fixture
def city(engine: Engine, tmp_path: Path) -> City:
    return make_city(engine, tmp_path)


def _centroids(engine: Engine) -> dict[int, tuple[float, float, float]]:
    found = rows(
        engine,
        "SELECT id, ST_X(ST_Centroid(footprint)), ST_Y(ST_Centroid(footprint)), base_height + height "
        "FROM building WHERE valid_to IS NULL",
    )
    return {int(r[0]): (float(r[1]), float(r[2]), float(r[3])) for r in found}


def _assert_each_feature_once_in_place(
    checked: TilesetCheck, expected: dict[int, tuple[float, float, float]], city: City, up_cos: float = 0.999
) -> None:
    """Every building exactly once at leaf level (BIM buildings through their elements), its roof centroid
    (triangles selected through their feature ids) within 0.1 m of the ECEF position from cim/crs.py; every
    element GlobalId and facility id exactly once."""
    seen: dict[int, int] = {}
    element_guids: list[str] = []
    facility_ids: list[int] = []
    for _, prims in checked.leaves:
        for prim in prims:
            t = prim.table
            if t["class"] == "building":
                for fid, bid in enumerate(t["building_id"]):
                    seen[int(bid)] = seen.get(int(bid), 0) + 1
                    tri = prim.indices.reshape(-1, 3)
                    assert np.all(prim.feature_ids[tri] == prim.feature_ids[tri[:, :1]]), "mixed-feature triangle"
                    tri = tri[prim.feature_ids[tri[:, 0]] == fid]
                    p = prim.ecef[tri]
                    lon, lat, _ = expected[int(bid)]
                    up = np.array(crs.enu_to_ecef_matrix(lon, lat, 0.0)[:3, 2])
                    roof = prim.normals[tri[:, 0]] @ up > up_cos
                    area = np.linalg.norm(np.cross(p[roof, 1] - p[roof, 0], p[roof, 2] - p[roof, 0]), axis=1) / 2
                    centre = (p[roof].mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
                    want = crs.geodetic_to_geocentric([lon], [lat], [expected[int(bid)][2]])[0]
                    assert np.linalg.norm(centre - want) < 0.1, (bid, np.linalg.norm(centre - want))
            elif t["class"] == "element":
                element_guids += t["global_id"]
                for b in set(t["building_id"].tolist()) - {-1}:
                    seen[int(b)] = seen.get(int(b), 0) + 1
            else:
                facility_ids += t["facility_id"].tolist()
    assert seen == {bid: 1 for bid in expected}
    assert sorted(element_guids) == sorted(city.element_guids)
    assert sorted(facility_ids) == sorted(city.facility_ids)


def test_build_is_valid_and_every_building_is_at_one_leaf_in_place(
    engine: Engine, settings: Settings, city: City, tmp_path: Path
) -> None:
    out = tmp_path / "tiles"
    report = build(engine, settings, "city", out)
    assert report.tiles > 3 and report.written == len(json.loads((out / "manifest.json").read_text())["files"])
    checked = check_tileset(out)
    assert checked.errors == []
    tileset = json.loads((out / "tileset.json").read_text())
    assert tileset["root"]["children"] and tileset["root"]["refine"] == "REPLACE"
    assert tileset["root"]["geometricError"] > 0
    assert check_terrain(out / "terrain") == report.terrain_tiles > 0
    # Every building exactly once at leaf level (BIM buildings through their elements), at the right place.
    expected = _centroids(engine)
    _assert_each_feature_once_in_place(checked, expected, city)
    # Metadata carries what the viewer shows on a click.
    names = [n for _, prims in checked.leaves for p in prims if p.table["class"] == "building" for n in p.table["name"]]
    assert "楼 0" in names
    with engine.connect() as conn:
        row = conn.execute(text("SELECT path, tile_count, feature_count, options, ST_XMin(bounds) FROM tileset")).one()
    assert row[0] == str(out) and row[1] == report.tiles and row[3]["terrain"] == "terrain"
    assert report.buildings == len(expected) and report.elements == len(city.element_guids)
    areas = report.areas  # the city's park: water and green are the areas class's
    assert row[2] == report.buildings + report.elements + report.facilities + areas == report.facilities + areas + 68


@pytest.mark.parametrize("compress", ["none", "draco"])
def test_implicit_quadtree_is_valid_and_every_building_is_at_one_leaf(
    engine: Engine, settings: Settings, city: City, tmp_path: Path, compress: str
) -> None:
    out = tmp_path / "implicit"
    layers = ["buildings", "elements", "areas", "facilities"]
    report = build(engine, settings, "imp", out, layers=layers, implicit=True, subtree_levels=2, compress=compress)
    # One implicit quadtree per class, referenced as external tilesets by a content-less root.
    top = json.loads((out / "tileset.json").read_text())["root"]
    assert [c["content"]["uri"] for c in top["children"]] == [f"{layer}/tileset.json" for layer in layers]
    assert "content" not in top and "contents" not in top and top["refine"] == "ADD"
    roots = [json.loads((out / layer / "tileset.json").read_text())["root"] for layer in layers]
    for root in roots:
        assert root["implicitTiling"]["subdivisionScheme"] == "QUADTREE" and root["refine"] == "REPLACE"
        assert root["content"] == {"uri": "content/{level}/{x}/{y}.glb"}
        assert "children" not in root and "transform" not in root
    checked = check_tileset(out, position_tol_m=0.05 if compress == "none" else 0.5)  # availability, volumes
    assert checked.errors == []
    assert len(checked.external) == len(layers) and len(checked.subtrees) > 3
    assert roots[0]["implicitTiling"]["availableLevels"] > 2  # child subtrees used
    # The class trees share their tiles: content availability alone differs.
    assert len({frozenset(k[1:] for k in checked.implicit_tiles if k[0] == layer) for layer in layers}) == 1
    # Footprints cross grid-cell edges: the tight TILE_BOUNDING_REGION metadata is what contains them.
    assert checked.beyond_cell > 0
    assert len(checked.contents) == sum(len(uris) for uris in checked.implicit_tiles.values())
    # Parents keep their LOD blocks: some tile with available children carries content too.
    tiles = checked.implicit_tiles
    assert any(
        (name, lv + 1, 2 * x + i, 2 * y + j) in tiles
        for (name, lv, x, y), uris in tiles.items()
        if uris and name == "buildings"
        for i in (0, 1)
        for j in (0, 1)
    )
    _assert_each_feature_once_in_place(checked, _centroids(engine), city)
    # The same tiles as the explicit build: same leaf count and features.
    explicit = build(engine, settings, "exp", tmp_path / "explicit", layers=layers, compress=compress)
    assert report.tiles == explicit.tiles and report.buildings == explicit.buildings
    res = build(engine, settings, "imp", out, layers=layers, implicit=True, subtree_levels=2, compress=compress)
    assert res.written == 0 and res.kept == report.written
    # The checks see availability that disagrees with the files written, both ways.
    victim = next(p for p in checked.contents if p.parent.parent.parent.parent.name == "buildings")
    (out / "buildings/content/9/0").mkdir(parents=True)
    victim.rename(out / "buildings/content/9/0/0.glb")
    broken = check_tileset(out).errors
    assert any("buildings: available contents missing" in e for e in broken)
    assert any("buildings: content files not marked available" in e for e in broken)


def test_underground_pipes_stay_below_the_terrain(
    engine: Engine, settings: Settings, city: City, tmp_path: Path
) -> None:
    from cim.dem import sample_heights

    out = tmp_path / "tiles"
    build_tileset(engine, settings, "pipes", out=out, layers=["facilities"])
    checked = check_tileset(out)
    assert checked.errors == []
    for _, prims in checked.leaves:
        for prim in prims:
            kinds = np.array(prim.table["kind"])[prim.feature_ids]
            under = np.isin(kinds, ["pipe_water", "pipe_gas", "manhole"])
            lon, lat, h = crs.geocentric_to_geodetic(prim.ecef[under])
            ground = sample_heights(city.dem_path, lon, lat)
            assert under.any() and np.all(h < ground)


def test_meshopt_compression_validates_and_is_smaller(
    engine: Engine, settings: Settings, city: City, tmp_path: Path
) -> None:
    plain = build(engine, settings, "plain", tmp_path / "plain", layers=["buildings", "elements"])
    packed = build(
        engine, settings, "packed", tmp_path / "packed", layers=["buildings", "elements"], compress="meshopt"
    )
    assert packed.bytes < plain.bytes * 0.8  # tiny test tiles: the embedded schema JSON dominates
    checked = check_tileset(tmp_path / "packed", position_tol_m=0.5)
    assert checked.errors == []
    ids = sorted(
        int(b)
        for _, prims in checked.leaves
        for p in prims
        if p.table["class"] == "building"
        for b in p.table["building_id"]
    )
    assert len(ids) == len(set(ids)) == len(city.building_ids) - 1


def test_draco_compression_validates_and_keeps_feature_ids(
    engine: Engine, settings: Settings, city: City, tmp_path: Path
) -> None:
    layers = ["buildings", "elements", "areas", "facilities"]
    plain = build(engine, settings, "plain", tmp_path / "plain", layers=layers)
    packed = build(engine, settings, "draco", tmp_path / "draco", layers=layers, compress="draco")
    assert packed.bytes < plain.bytes * 0.8 and packed.tiles == plain.tiles
    checked = check_tileset(tmp_path / "draco", position_tol_m=0.5)  # decodes every primitive with DracoPy
    assert checked.errors == []
    for path in checked.contents:
        doc, _ = read_glb(path.read_bytes())
        assert "KHR_draco_mesh_compression" in doc["extensionsRequired"]
        for prim in (p for m in doc["meshes"] for p in m["primitives"] if "EXT_mesh_features" in p["extensions"]):
            ext = prim["extensions"]["KHR_draco_mesh_compression"]  # (instanced templates stay plain)
            assert set(ext["attributes"]) == {"POSITION", "NORMAL", "COLOR_0", "_FEATURE_ID_0"}
    # Octahedral 8-bit normals: roofs are up within ~1°; feature ids exact, so every feature is found once.
    _assert_each_feature_once_in_place(checked, _centroids(engine), city, up_cos=0.999)


@pytest.mark.parametrize("compress", ["none", "draco"])
def test_repeated_facilities_are_instanced_and_pickable(
    engine: Engine, settings: Settings, city: City, tmp_path: Path, compress: str
) -> None:
    out = tmp_path / "fac"
    build_tileset(engine, settings, "fac", out=out, layers=["facilities"], compress=compress)
    checked = check_tileset(out, position_tol_m=0.05 if compress == "none" else 0.5)  # expands every instance
    assert checked.errors == []
    instances = 0
    for path in checked.contents:
        doc, _ = read_glb(path.read_bytes())
        for node in doc["nodes"]:
            ext = node.get("extensions", {})
            if "EXT_mesh_gpu_instancing" in ext:
                instances += doc["accessors"][ext["EXT_mesh_gpu_instancing"]["attributes"]["TRANSLATION"]]["count"]
                assert ext["EXT_instance_features"]["featureIds"][0]["propertyTable"] == 0
                assert "EXT_mesh_gpu_instancing" in doc["extensionsRequired"]
                assert "EXT_instance_features" in doc["extensionsUsed"]
    with engine.connect() as conn:
        lamps = {
            int(r[0]): (float(r[1]), float(r[2]))
            for r in conn.execute(
                text("SELECT id, ST_X(geom), ST_Y(geom) FROM facility WHERE kind = 'street_lamp' AND valid_to IS NULL")
            )
        }
    assert instances == len(lamps) == 2  # the lone manhole stays in the merged mesh
    # Picking names the facility: each instance's feature id points at its own row, the post stands at the
    # facility's point, plumb (8 m from its foot to its top along the local vertical).
    found: list[int] = []
    for _, prims in checked.leaves:
        for prim in prims:
            for fid, facility_id in enumerate(prim.table["facility_id"].tolist()):
                if facility_id not in lamps:
                    continue
                found.append(facility_id)
                lon, lat, h = crs.geocentric_to_geodetic(prim.ecef[prim.feature_ids == fid])
                want_lon, want_lat = lamps[facility_id]
                assert abs(lon.mean() - want_lon) < 1e-7 and abs(lat.mean() - want_lat) < 1e-7
                assert abs((h.max() - h.min()) - 8.0) < 0.01
                assert np.ptp(lon) < 3e-6 and np.ptp(lat) < 3e-6  # 0.2 m across: a plumb post, not a tilted pole
    assert sorted(found) == sorted(lamps)


def test_rebuild_writes_only_changed_tiles(engine: Engine, settings: Settings, city: City, tmp_path: Path) -> None:
    from tests import factories

    out = tmp_path / "tiles"
    first = build(engine, settings, "inc", out, layers=["buildings"])
    again = build(engine, settings, "inc", out, layers=["buildings"])
    assert again.written == 0 and again.kept == first.written
    with engine.begin() as conn:
        ds = factories.dataset(conn, "one more")
        factories.building(conn, ds, factories.square(114.2945, 30.5752, 0.0001), height=9.0, base_height=22.0)
    third = build(engine, settings, "inc", out, layers=["buildings"])
    assert 0 < third.written < first.written / 2 and third.kept > 0
    assert check_tileset(out).errors == []


def test_process_pool_gives_identical_tiles(engine: Engine, settings: Settings, city: City, tmp_path: Path) -> None:
    build(engine, settings, "seq", tmp_path / "a", layers=["buildings", "elements", "facilities"])
    build(engine, settings, "par", tmp_path / "b", layers=["buildings", "elements", "facilities"], jobs=2)
    a = json.loads((tmp_path / "a/manifest.json").read_text())["files"]
    b = json.loads((tmp_path / "b/manifest.json").read_text())["files"]
    assert a == b and len(a) > 3


def test_dask_local_cluster_executor(engine: Engine, settings: Settings, city: City, tmp_path: Path) -> None:
    from dask.distributed import Client, LocalCluster

    build(engine, settings, "seq", tmp_path / "a", layers=["buildings", "elements"])
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        report = build(
            engine, settings, "dask", tmp_path / "b", layers=["buildings", "elements"], executor=client.get_executor()
        )
    assert report.tiles > 3
    a = json.loads((tmp_path / "a/manifest.json").read_text())["files"]
    b = json.loads((tmp_path / "b/manifest.json").read_text())["files"]
    assert a == b, sorted(k for k in a if a[k] != b.get(k))


def test_bad_arguments_and_empty_database(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(TilesError, match="unknown layers"):
        build_tileset(engine, settings, "x", layers=["roofs"])
    with pytest.raises(TilesError, match="compression"):
        build_tileset(engine, settings, "x", compress="zip")
    with pytest.raises(TilesError, match="name"):
        build_tileset(engine, settings, "../etc")
    with pytest.raises(TilesError, match="no DEM"):
        build_tileset(engine, settings, "x", out=tmp_path / "x")
    with pytest.raises(TilesError, match=r"no live features in the layers buildings, elements.*nothing to tile"):
        build_tileset(engine, settings, "x", out=tmp_path / "x", layers=["buildings", "elements"])
    assert not (tmp_path / "x").exists()


def test_cli_build_json_and_errors(engine: Engine, city: City, run_cim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_cim(
        "tiles", "build", "cli", "--layers", "buildings,facilities", "--bbox", "114.29,30.57,114.31,30.59", "--json"
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["name"] == "cli" and doc["tiles"] >= 1 and doc["buildings"] > 0 and doc["elements"] == 0
    assert (Path(doc["path"]) / "tileset.json").exists()
    bad = run_cim("tiles", "build", "cli", "--compress", "zip")
    assert bad.exit_code != 0 and "compression" in bad.stderr
    bad = run_cim("tiles", "build", "cli", "--bbox", "1,2,3")
    assert bad.exit_code != 0 and "W,S,E,N" in bad.stderr
    bad = run_cim("tiles", "build", "cli", "--executor", "tcp://127.0.0.1:1")
    assert bad.exit_code != 0 and "dask://" in bad.stderr
    again = run_cim("tiles", "build", "cli", "--layers", "buildings,facilities", "--bbox", "114.29,30.57,114.31,30.59")
    assert again.exit_code == 0 and "0 written" in again.stderr
    imp = run_cim("tiles", "build", "cli-imp", "--layers", "buildings", "--implicit", "--out", str(tmp_path / "imp"))
    assert imp.exit_code == 0, imp.stderr
    assert "implicitTiling" in json.loads((tmp_path / "imp/buildings/tileset.json").read_text())["root"]
    assert check_tileset(tmp_path / "imp").errors == []
