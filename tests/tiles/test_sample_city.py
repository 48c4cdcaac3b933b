"""The sample city ingested through the real ingestors (district GIS + DEM, IFC office and bridge) builds
into a tileset that passes the validator-style checks, with every live building at one leaf (uncompressed,
meshopt and draco; and as an implicit quadtree with meshopt)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from cim.settings import Settings
from tests.tiles.validation import check_terrain, check_tileset
from tiles.build import build_tileset
from tiles.glb import read_glb


def test_sample_city_tileset_is_valid(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    from ingest.ifc import ingest_ifc
    from sample_models.city import sample_city_files
    from sample_models.load import load_district

    district, office, bridge, _ = sample_city_files(tmp_path / "samples", buildings=300)
    load_district(engine, settings, district)
    for model in (office, bridge):
        ingest_ifc(engine, model, settings)
    for compress in ("none", "meshopt", "draco"):
        _check_build(engine, settings, tmp_path / compress, compress)
    _check_build(engine, settings, tmp_path / "implicit", "meshopt", implicit=True)  # frame node over quantised nodes


def _check_build(engine: Engine, settings: Settings, out: Path, compress: str, *, implicit: bool = False) -> None:
    report = build_tileset(
        engine, settings, "sample", out=out, compress=compress, leaf_capacity=150.0, implicit=implicit, subtree_levels=2
    )
    checked = check_tileset(out, position_tol_m=0.05 if compress == "none" else 0.5)
    assert checked.errors == []
    assert bool(checked.subtrees) == implicit
    assert check_terrain(out / "terrain") == report.terrain_tiles > 0
    with engine.connect() as conn:
        live = {int(r[0]) for r in conn.execute(text("SELECT id FROM building WHERE valid_to IS NULL"))}
        n_elements = conn.execute(
            text("SELECT count(*) FROM element WHERE valid_to IS NULL AND mesh IS NOT NULL")
        ).scalar()
    seen: list[int] = []
    guids = 0
    for _, prims in checked.leaves:
        for prim in prims:
            if prim.table["class"] == "building":
                seen += [int(b) for b in prim.table["building_id"]]
            elif prim.table["class"] == "element":
                guids += len(prim.table["global_id"])
                seen += sorted({int(b) for b in prim.table["building_id"]} - {-1})
    assert sorted(seen) == sorted(live) and len(seen) == len(set(seen))
    assert guids == n_elements > 0
    # Manholes, hydrants and lamps repeat: drawn by EXT_mesh_gpu_instancing; roads and greenways are ribbons
    # of the road class, water and green areas of the area class: every facility once, in one of the three.
    required = [read_glb(path.read_bytes())[0].get("extensionsRequired", []) for path in checked.contents]
    assert any("EXT_mesh_gpu_instancing" in r for r in required)
    facility_ids = [
        int(f)
        for _, prims in checked.leaves
        for p in prims
        if p.table["class"] in ("facility", "road", "area")
        for f in p.table["facility_id"]
    ]
    with engine.connect() as conn:
        n_facilities = conn.execute(text("SELECT count(*) FROM facility WHERE valid_to IS NULL")).scalar()
    assert len(facility_ids) == len(set(facility_ids)) == n_facilities
