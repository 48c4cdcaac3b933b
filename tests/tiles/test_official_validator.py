"""Every tileset variant the builder writes passes the official CesiumGS 3d-tiles-validator with no error, no
warning and no info beyond the extensions the Khronos glTF validator inside it does not read: on the
hand-made city, on the sample city ingested by the real ingestors and on tiny edge cases (a tile with a
single building, empty and non-ASCII strings, null attributes). pygltflib reads every glb back on its own.

The variants are built once per module (two databases), and the validator (node) runs on each one in a
thread pool while the next is being built.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import meshoptimizer
import numpy as np
import pygltflib
import pytest
import shapely
from sqlalchemy import Engine, text

from cim.db.engine import make_engine
from cim.db.scratch import create_database, drop_database
from cim.settings import Settings
from tests import factories
from tests.tiles import official
from tests.tiles.city import box_tin_wkb, insert_element, make_city
from tiles.build import build_tileset

SMALL = {"leaf_capacity": 20.0, "parent_capacity": 12}
FEATURES = ["buildings", "elements", "facilities"]
LINES = ["facilities", "roads", "parcels", "zones", "boundaries"]
"""The line and outline classes (with the facilities they share a site with)."""
LINES_SITE = (114.460, 30.600)
SINGLE = (114.400, 30.600)
STRINGS = (114.420, 30.600)
NULLS = (114.440, 30.600)
EDGE_BOX = 0.01
STRING_NAMES = ["", "ascii only", "黄鹤楼 Ⅱ", "Ünïcödé — 🏠", ""]
pytestmark = pytest.mark.xdist_group("official-validator")  # one worker builds the variants, not each
COMPRESSIONS = {"none": {}, "meshopt": {"compress": "meshopt"}, "draco": {"compress": "draco"}}


def _edge_bbox(site: tuple[float, float]) -> tuple[float, float, float, float]:
    return (site[0] - EDGE_BOX, site[1] - EDGE_BOX, site[0] + EDGE_BOX, site[1] + EDGE_BOX)


def _variants() -> dict[str, tuple[str, dict[str, Any]]]:
    """Variant name → (database, build_tileset keyword arguments)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for c, kw in COMPRESSIONS.items():
        # The hand-made city: every layer (terrain too), explicit and implicit; instanced facilities; BIM alone.
        # Terrain (quantized-mesh) beside the tileset once per layout: the validator does not read it.
        layers = {"layers": [*FEATURES, "terrain"] if c == "none" else FEATURES}
        out[f"city-{c}"] = ("city", {**SMALL, **kw, **layers, "bbox": _edge_bbox((114.3, 30.58))})
        out[f"city-implicit-{c}"] = ("city", {**SMALL, **kw, **layers, "implicit": True, "subtree_levels": 2})
        out[f"city-facilities-{c}"] = ("city", {**kw, "layers": ["facilities"], "bbox": _edge_bbox((114.3, 30.58))})
        out[f"city-elements-{c}"] = ("city", {**kw, "layers": ["elements"]})
        # Ribbons: every compression, explicit and implicit.
        out[f"lines-{c}"] = ("city", {**kw, "layers": LINES, "bbox": _edge_bbox(LINES_SITE)})
        out[f"lines-implicit-{c}"] = ("city", {**kw, "layers": LINES, "bbox": _edge_bbox(LINES_SITE), "implicit": True})
        # The sample city uncompressed: every registered layer (its roads, parcels, zones and districts too).
        sample = {**kw, "leaf_capacity": 600.0, "layers": None if c == "none" else FEATURES}
        out[f"sample-{c}"] = ("sample", sample)
        out[f"sample-implicit-{c}"] = ("sample", {**sample, "layers": FEATURES, "implicit": True, "subtree_levels": 2})
        for edge, site in (("single", SINGLE), ("strings", STRINGS), ("nulls", NULLS)):
            bbox = _edge_bbox(site)
            out[f"{edge}-{c}"] = ("city", {**kw, "layers": FEATURES, "bbox": bbox})
            out[f"{edge}-implicit-{c}"] = ("city", {**kw, "layers": FEATURES, "bbox": bbox, "implicit": True})
    return out


VARIANTS = _variants()


def _insert_edge_cases(engine: Engine) -> None:
    """Three tiny tiles far from the city: one building; empty and non-ASCII strings; null attributes."""
    with engine.begin() as conn:
        ds = factories.dataset(conn, "edge cases")
        ifc = factories.dataset(conn, "edge.ifc", kind="ifc", layer="ifc")
        fac = factories.dataset(conn, "edge facilities", layer="facilities")
        lon, lat = SINGLE
        factories.building(conn, ds, factories.square(lon, lat), height=20.0, name="单体楼", use="office", storeys=6)
        lon, lat = STRINGS
        for i, name in enumerate(STRING_NAMES):
            factories.building(
                conn,
                ds,
                factories.square(lon + i * 0.0004, lat),
                name=name,
                use="" if i % 2 else "住宅",
            )
        bim = factories.building(conn, ds, factories.square(lon, lat + 0.0005), name="", use="")
        for j, (name, storey) in enumerate([("", "二层"), ("墙 Ⅲ", ""), ("plain", "Level 1")]):
            wkb = box_tin_wkb(lon + 0.0001, lat + 0.0006, 10.0 + 3 * j, (8.0, 6.0, 3.0))
            insert_element(conn, ifc, bim, f"0StrGuid{j:014d}", wkb, name=name)
            conn.execute(
                text("UPDATE element SET storey = :s WHERE global_id = :g"), {"s": storey, "g": f"0StrGuid{j:014d}"}
            )
        for k, name in enumerate(["", "路灯 №1", "lamp"]):
            factories.facility(conn, fac, "street_lamp", shapely.Point(lon + k * 0.0003, lat - 0.0004), name=name)
        lon, lat = NULLS
        factories.building(conn, ds, factories.square(lon, lat), height=9.0)  # name, use, storeys… all NULL
        factories.building(conn, ds, factories.square(lon + 0.0004, lat), height=9.0, name="only a name")
        insert_element(conn, ifc, None, "0NullGuid0000000000000", box_tin_wkb(lon, lat + 0.0005, 5.0, (4, 4, 4)))
        conn.execute(text("UPDATE element SET name = NULL, storey = NULL, color = NULL WHERE global_id LIKE '0Null%'"))
        factories.facility(conn, fac, "manhole", shapely.Point(lon, lat - 0.0004))
        factories.facility(conn, fac, "hydrant", shapely.Point(lon + 0.0003, lat - 0.0004), name=None)
        # As the IFC ingestor does: a location (here the box's foot), so that a bbox selects the elements.
        for guid, (x, y) in {
            **{f"0StrGuid{j:014d}": (STRINGS[0] + 0.0001, STRINGS[1] + 0.0006) for j in range(3)},
            "0NullGuid0000000000000": NULLS,
        }.items():
            conn.execute(
                text("UPDATE element SET location = ST_SetSRID(ST_MakePoint(:x, :y, 0), 4490) WHERE global_id = :g"),
                {"x": x, "y": y, "g": guid},
            )


def _insert_lines(engine: Engine) -> None:
    """Roads (a width, a road class, neither; a multi-line; a hairpin), a greenway, a parcel, a planning
    zone and a district around LINES_SITE: every line and outline class, with empty and null strings."""
    lon, lat = LINES_SITE
    with engine.begin() as conn:
        fac = factories.dataset(conn, "line facilities", layer="facilities")
        plan = factories.dataset(conn, "plans", layer="parcels")
        road = shapely.LineString([(lon - 0.004, lat - 0.001), (lon, lat - 0.001), (lon + 0.003, lat + 0.002)])
        factories.facility(conn, fac, "road", road, name="解放大道", road_class="主干路")
        hairpin = shapely.LineString([(lon - 0.003, lat + 0.001), (lon, lat + 0.001), (lon - 0.003, lat + 0.0012)])
        factories.facility(conn, fac, "road", hairpin, width_m=6.0, name="")
        two = shapely.MultiLineString(
            [[(lon - 0.002, lat), (lon - 0.002, lat + 0.002)], [(lon, lat), (lon, lat + 3e-4)]]
        )
        factories.facility(conn, fac, "road", two)
        factories.facility(conn, fac, "greenway", shapely.LineString([(lon + 0.001, lat - 0.003), (lon + 0.002, lat)]))
        factories.facility(conn, fac, "hydrant", shapely.Point(lon + 0.0005, lat - 0.0005), name="消火栓")
        factories.parcel(conn, plan, factories.square(lon + 0.001, lat + 0.001, 0.0006), code="P-1", land_use="R2")
        factories.planning_zone(conn, plan, factories.square(lon, lat, 0.003), name="江岸片区", zone_type="")
        factories.district(conn, "420102", factories.square(lon, lat, 0.004), 100_000, name="江岸区")


def _load_sample_city(engine: Engine, settings: Settings, folder: Path) -> None:
    from ingest.ifc import ingest_ifc
    from sample_models.city import sample_city_files
    from sample_models.load import load_district

    district, office, bridge, _ = sample_city_files(folder, buildings=300)
    load_district(engine, settings, district)
    for model in (office, bridge):
        ingest_ifc(engine, model, settings)


@dataclass
class Built:
    """A variant's folder and its validator report."""

    out: Path
    report: dict[str, Any]


@pytest.fixture(scope="module")
def built(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Built]]:
    """Every variant built, each validated by the official validator (in parallel with the next builds)."""
    official.validator()
    root = tmp_path_factory.mktemp("official")
    names = {db: f"cim_tv_{db}_{secrets.token_hex(4)}" for db in ("city", "sample")}
    engines: dict[str, Engine] = {}
    settings: dict[str, Settings] = {}
    try:
        for db, name in names.items():
            url = create_database(pg_server_url, name, template=template_database)
            engines[db] = make_engine(url)
            settings[db] = Settings(data_dir=root / db / "data", database_url=url)
        (root / "city").mkdir()
        make_city(engines["city"], root / "city")
        _insert_edge_cases(engines["city"])
        _insert_lines(engines["city"])
        futures: dict[str, Future[dict[str, Any]]] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for db in ("city", "sample"):
                if db == "sample":
                    _load_sample_city(engines[db], settings[db], root / "samples")
                for variant, (where, kw) in VARIANTS.items():
                    if where != db:
                        continue
                    out = root / "tiles" / variant
                    build_tileset(engines[db], settings[db], variant, out=out, **kw)
                    futures[variant] = pool.submit(
                        official.run_validator, out / "tileset.json", root / f"{variant}.json"
                    )
            yield {variant: Built(root / "tiles" / variant, f.result()) for variant, f in futures.items()}
    finally:
        for engine in engines.values():
            engine.dispose()
        for name in names.values():
            drop_database(pg_server_url, name)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_passes_the_official_validator_without_errors_warnings_or_unused_bytes(
    built: dict[str, Built], variant: str
) -> None:
    b = built[variant]
    assert b.report["numErrors"] == 0 and b.report["numWarnings"] == 0, b.report["issues"][:3]
    found = official.findings(b.report, b.out / "tileset.json")
    assert found.errors == [] and found.warnings == []
    assert found.unexpected_infos == []
    assert found.truly_unused == [], "bytes written that nothing reads"
    # The validator reached every content the builder wrote (implicit ones through the subtrees too).
    written = {p.resolve() for p in b.out.rglob("*.glb")}
    assert written and {p.resolve() for p in found.glbs} == written
    compress = VARIANTS[variant][1].get("compress", "none")
    wanted = official.COMPRESSION_EXTENSIONS.get(compress)
    assert wanted is None or wanted in found.unsupported


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pygltflib_reads_every_glb_as_the_builder_meant_it(built: dict[str, Built], variant: str) -> None:
    compress = VARIANTS[variant][1].get("compress", "none")
    for path in sorted(built[variant].out.rglob("*.glb")):
        gltf = pygltflib.GLTF2.load_binary(str(path))
        assert official.unreferenced(gltf) == [], path
        used, required = set(gltf.extensionsUsed), set(gltf.extensionsRequired)
        assert required <= used and {"EXT_mesh_features", "EXT_structural_metadata"} <= used
        meta = gltf.extensions["EXT_structural_metadata"]
        (table,) = meta["propertyTables"]  # one class per glb: CesiumJS picks one property table per model
        assert table["class"] in meta["schema"]["classes"]
        # The table names its class for the viewer: cim_class defaults to the class id and is never stored.
        assert meta["schema"]["classes"][table["class"]]["properties"]["cim_class"]["default"] == table["class"]
        assert "cim_class" not in table["properties"]
        feature_sets = [
            fs
            for m in gltf.meshes
            for p in m.primitives
            for fs in (p.extensions or {}).get("EXT_mesh_features", {}).get("featureIds", [])
        ] + [
            fs for n in gltf.nodes for fs in (n.extensions or {}).get("EXT_instance_features", {}).get("featureIds", [])
        ]
        assert feature_sets and all(
            fs["propertyTable"] == 0 and fs["featureCount"] <= table["count"] for fs in feature_sets
        )
        if compress == "meshopt":
            assert {"EXT_meshopt_compression", "KHR_mesh_quantization"} & required
        if compress == "draco" and any(
            "EXT_mesh_features" in (p.extensions or {}) for m in gltf.meshes for p in m.primitives
        ):
            assert "KHR_draco_mesh_compression" in required
        # String views hold exactly their strings: byteLength == the last offset.
        for prop in table["properties"].values():
            if "stringOffsets" in prop:
                offsets = _view_array(gltf, prop["stringOffsets"], np.uint32)
                assert len(offsets) == table["count"] + 1
                assert gltf.bufferViews[prop["values"]].byteLength == int(offsets[-1]) > 0


def _view_array(gltf: pygltflib.GLTF2, index: int, dtype: Any) -> np.ndarray:
    """A buffer view's values read with pygltflib (meshopt views decoded with meshoptimizer)."""
    view = gltf.bufferViews[index]
    blob = gltf.binary_blob() or b""
    meshopt = (view.extensions or {}).get("EXT_meshopt_compression")
    if meshopt is None:
        start = view.byteOffset or 0
        return np.frombuffer(blob[start : start + view.byteLength], dtype=dtype)
    start = meshopt.get("byteOffset", 0)
    data = blob[start : start + meshopt["byteLength"]]
    decoded = meshoptimizer.decode_vertex_buffer(meshopt["count"], meshopt["byteStride"], data)
    return np.frombuffer(np.asarray(decoded).tobytes(), dtype=dtype)


def _strings(gltf: pygltflib.GLTF2, table: dict[str, Any], name: str) -> list[str]:
    prop = table["properties"].get(name)
    if prop is None:
        return [""] * table["count"]
    raw = _view_array(gltf, prop["values"], np.uint8).tobytes()
    offsets = _view_array(gltf, prop["stringOffsets"], np.uint32)
    return [raw[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(table["count"])]


def _enum_names(gltf: pygltflib.GLTF2, table: dict[str, Any], name: str) -> list[str]:
    """An ENUM property's names read with pygltflib, its noData as "" (what CesiumJS returns as undefined)."""
    schema = gltf.extensions["EXT_structural_metadata"]["schema"]
    spec = schema["classes"][table["class"]]["properties"][name]
    enum = schema["enums"][spec["enumType"]]
    assert enum["valueType"] == "UINT32"
    names = {v["value"]: ("" if v["name"] == spec["noData"] else v["name"]) for v in enum["values"]}
    return [names[int(v)] for v in _view_array(gltf, table["properties"][name]["values"], np.uint32)]


@pytest.mark.parametrize("compress", sorted(COMPRESSIONS))
def test_empty_non_ascii_and_null_strings_read_back_with_pygltflib(built: dict[str, Built], compress: str) -> None:
    names: dict[str, list[str]] = {}
    for edge in ("strings", "nulls", "single"):
        for path in sorted(built[f"{edge}-{compress}"].out.rglob("*.glb")):
            gltf = pygltflib.GLTF2.load_binary(str(path))
            (table,) = gltf.extensions["EXT_structural_metadata"]["propertyTables"]
            for prop in ("name", "use", "storey", "kind"):
                if (
                    prop
                    in gltf.extensions["EXT_structural_metadata"]["schema"]["classes"][table["class"]]["properties"]
                ):
                    read = _enum_names if (table["class"], prop) == ("building", "use") else _strings
                    names.setdefault(f"{edge}/{table['class']}/{prop}", []).extend(read(gltf, table, prop))
    assert sorted(names["strings/building/name"]) == sorted(STRING_NAMES)  # (the BIM building: its elements)
    # building.use is an enum of the vocabulary: a value outside it (住宅: ingest maps it) reads as "other".
    assert sorted(names["strings/building/use"]) == sorted(["other", "", "other", "", "other"])
    assert sorted(names["strings/element/name"]) == ["", "plain", "墙 Ⅲ"]
    assert sorted(names["strings/element/storey"]) == ["", "Level 1", "二层"]
    assert sorted(names["strings/facility/name"]) == ["", "lamp", "路灯 №1"]
    # NULL reads as the empty string; a property empty in every feature is left out (no zero-length view).
    assert sorted(names["nulls/building/name"]) == ["", "only a name"]
    assert names["nulls/building/use"] == ["", ""] and names["nulls/element/storey"] == [""]
    assert names["single/building/name"] == ["单体楼"]


def test_a_missing_validator_fails_the_tests_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(official, "VALIDATOR", tmp_path / "nowhere" / "3d-tiles-validator")
    with pytest.raises(pytest.fail.Exception, match=r"3d-tiles-validator is missing at .*CI checks out \.\./shared"):
        official.validator()
