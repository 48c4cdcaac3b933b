"""The ``areas`` tile class (water bodies and green spaces draped on the ground, tiles/classes/areas.py): every
variant it is built in passes the official CesiumGS 3d-tiles-validator with no error, no warning and nothing
unused; read back, each area is in exactly one leaf, lies on the DEM, faces up, covers its polygon's area
(holes left open) and names its kind; the facilities class no longer draws water or green slabs.

Built once for the module on the hand-made city (tests/tiles/city.py: DEM, buildings, facilities, a park)
plus a lake with an island, a multi-part green space, a nameless pond, a shelter and a park stored as a
point; the validator runs in a thread pool while the next variant is built (as test_official_validator.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pygltflib
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import Engine

from cim import crs
from cim.db.engine import make_engine
from cim.db.scratch import create_database, drop_database
from cim.dem import sample_heights
from cim.settings import Settings
from tests import factories
from tests.tiles import official
from tests.tiles.city import City, make_city
from tests.tiles.test_official_validator import SMALL, Built
from tests.tiles.validation import check_tileset
from tiles import classes
from tiles.build import build_tileset
from tiles.classes.areas import AREA_KINDS, AREA_LIFT_M, drape, is_area

SITE = (114.304, 30.583)
"""South-west corner of the lake (inside the test city's DEM)."""
LAKE = shapely.Polygon(
    [
        (SITE[0], SITE[1]),
        (SITE[0] + 0.0032, SITE[1]),
        (SITE[0] + 0.0032, SITE[1] + 0.0021),
        (SITE[0], SITE[1] + 0.0018),
    ],
    [[(SITE[0] + 0.001, SITE[1] + 0.0007), (SITE[0] + 0.0016, SITE[1] + 0.0007), (SITE[0] + 0.0013, SITE[1] + 0.0012)]],
)
"""A lake over many grid cells with an island (a hole)."""
GREEN = shapely.MultiPolygon(
    [factories.square(SITE[0] - 0.0012, SITE[1], 0.0004), factories.square(SITE[0] - 0.0012, SITE[1] + 0.0008, 0.0003)]
)
POND = factories.square(SITE[0] + 0.0036, SITE[1] + 0.0002, 0.00015)
VARIANTS: dict[str, dict[str, Any]] = {
    "areas-none": {"layers": ["areas"]},
    "areas-meshopt": {"layers": ["areas"], "compress": "meshopt"},
    "areas-draco": {"layers": ["areas"], "compress": "draco"},
    "areas-implicit-none": {"layers": ["areas"], "implicit": True},
    "areas-implicit-meshopt": {"layers": ["areas"], "implicit": True, "compress": "meshopt"},
    # Beside the other classes, in small tiles (the lake's partition point decides its leaf), with terrain.
    "mixed-none": {**SMALL, "layers": ["buildings", "areas", "facilities", "terrain"]},
    "mixed-implicit-draco": {
        **SMALL,
        "layers": ["buildings", "areas", "facilities"],
        "implicit": True,
        "compress": "draco",
    },
}

pytestmark = pytest.mark.xdist_group("areas-validator")  # the module's shared fixture is built by one worker


def _insert_areas(engine: Engine) -> dict[str, int]:
    """The area facilities (and two that are not areas) of the test; name → facility id."""
    with engine.begin() as conn:
        ds = factories.dataset(conn, "areas", layer="facilities")
        ids = {
            "lake": factories.facility(conn, ds, "water_body", LAKE, name="月湖 Moon Lake", district_code="420103"),
            "green": factories.facility(conn, ds, "green_space", GREEN, name="绿地"),
            "pond": factories.facility(conn, ds, "water_body", POND),  # no name
            "shelter": factories.facility(conn, ds, "shelter", factories.square(SITE[0], SITE[1] - 0.0008, 0.0003)),
            "point park": factories.facility(conn, ds, "park", shapely.Point(SITE[0] - 0.002, SITE[1] - 0.0005)),
        }
    return ids


@pytest.fixture(scope="module")
def site(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, City, dict[str, int], dict[str, Built]]]:
    """The city and its areas in a database of its own, every variant built and validated."""
    official.validator()
    root = tmp_path_factory.mktemp("areas")
    name = f"cim_ta_{secrets.token_hex(4)}"
    url = create_database(pg_server_url, name, template=template_database)
    engine = make_engine(url)
    try:
        settings = Settings(data_dir=root / "data", database_url=url)
        city = make_city(engine, root)
        ids = _insert_areas(engine)
        futures: dict[str, Future[dict[str, Any]]] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for variant, kw in VARIANTS.items():
                out = root / "tiles" / variant
                build_tileset(engine, settings, variant, out=out, **kw)
                futures[variant] = pool.submit(official.run_validator, out / "tileset.json", root / f"{variant}.json")
            built = {v: Built(root / "tiles" / v, f.result()) for v, f in futures.items()}
        yield settings, city, ids, built
    finally:
        engine.dispose()
        drop_database(pg_server_url, name)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_official_validator_passes_every_areas_variant_with_nothing_unused(
    site: tuple[Settings, City, dict[str, int], dict[str, Built]], variant: str
) -> None:
    b = site[3][variant]
    assert (b.report["numErrors"], b.report["numWarnings"]) == (0, 0), b.report["issues"][:3]
    found = official.findings(b.report, b.out / "tileset.json")
    assert (found.errors, found.warnings, found.unexpected_infos, found.truly_unused) == ([], [], [], [])
    areas = {p.resolve() for p in b.out.rglob("*.glb") if "-areas" in p.name or "/areas/" in p.as_posix()}
    assert areas and areas <= {p.resolve() for p in found.glbs}, "the validator did not reach every area content"
    for path in areas:
        gltf = pygltflib.GLTF2.load_binary(str(path))
        assert official.unreferenced(gltf) == [], path
        (table,) = gltf.extensions["EXT_structural_metadata"]["propertyTables"]
        assert table["class"] == "area"


def _geodesic_area(geom: Any) -> float:
    """Area (m²) on the ellipsoid: each exterior ring's less its holes'."""
    geod = Geod(ellps="GRS80")

    def ring(r: Any) -> float:
        lon, lat = np.asarray(r.coords).T
        return abs(float(geod.polygon_area_perimeter(lon, lat)[0]))

    return sum(ring(p.exterior) - sum(ring(h) for h in p.interiors) for p in getattr(geom, "geoms", [geom]))


def _leaf_tables(built: Built, compress: str) -> tuple[list[Any], list[int]]:
    """The decoded area primitives at leaf level, and every facility id of the facility class."""
    checked = check_tileset(built.out, position_tol_m=0.05 if compress == "none" else 0.5)
    assert checked.errors == []
    prims = [p for _, ps in checked.leaves for p in ps]
    facility_ids = [int(i) for p in prims if p.table["class"] == "facility" for i in p.table["facility_id"]]
    return [p for p in prims if p.table["class"] == "area"], facility_ids


@pytest.mark.parametrize("variant", ["areas-none", "areas-draco", "mixed-none", "mixed-implicit-draco"])
def test_each_area_lies_once_on_the_dem_faces_up_and_covers_its_polygon(
    site: tuple[Settings, City, dict[str, int], dict[str, Built]], variant: str
) -> None:
    settings, city, ids, built = site
    compress = VARIANTS[variant].get("compress", "none")
    prims, facility_ids = _leaf_tables(built[variant], compress)
    zeta = settings.height_anomaly
    drawn: dict[int, float] = {}
    for prim in prims:
        t = prim.table
        lon, lat, h = crs.geocentric_to_geodetic(prim.ecef, height_anomaly=zeta)
        # On the DEM (the lift above it), within the decoder's precision.
        assert np.abs(h - (sample_heights(city.dem_path, lon, lat) + AREA_LIFT_M)).max() < (
            0.02 if compress == "none" else 0.5
        )
        tri = prim.indices.reshape(-1, 3)
        up = crs.geodetic_to_geocentric(lon, lat, h + 1.0, height_anomaly=zeta) - prim.ecef
        cross = np.cross(prim.ecef[tri[:, 1]] - prim.ecef[tri[:, 0]], prim.ecef[tri[:, 2]] - prim.ecef[tri[:, 0]])
        assert np.all(np.einsum("ij,ij->i", cross, up[tri[:, 0]]) > 0), "a triangle faces down"
        assert np.all(np.einsum("ij,ij->i", prim.normals, up) > 0.99)
        area = np.linalg.norm(cross, axis=1) / 2
        for fid, facility_id in enumerate(t["facility_id"].tolist()):
            assert facility_id not in drawn, "an area in two leaves"
            drawn[facility_id] = float(area[prim.feature_ids[tri[:, 0]] == fid].sum())
            row = t["kind"][fid], t["name"][fid], t["district_code"][fid]
            expected = {
                ids["lake"]: ("water_body", "月湖 Moon Lake", "420103"),
                ids["green"]: ("green_space", "绿地", ""),
                ids["pond"]: ("water_body", "", ""),
            }
            if facility_id in expected:
                assert row == expected[facility_id]
                assert t["area_m2"][fid] == pytest.approx(drawn[facility_id], rel=0.01)
    # The city's park and the three areas, each once; the shelter and the point park are not areas.
    park = next(i for i in city.facility_ids if i not in (ids["shelter"], ids["point park"]) and i in drawn)
    assert set(drawn) == {ids["lake"], ids["green"], ids["pond"], park}
    for key, geom in (("lake", LAKE), ("green", GREEN), ("pond", POND)):
        assert drawn[ids[key]] == pytest.approx(_geodesic_area(geom), rel=0.005), key
    if "facilities" in VARIANTS[variant]["layers"]:
        assert {ids["shelter"], ids["point park"]} <= set(facility_ids)
        assert not set(drawn) & set(facility_ids), "water or green drawn by the facilities class too"


def test_the_registry_serves_the_areas_class_and_its_legend_by_kind() -> None:
    area = classes.get("areas")
    described = area.describe()
    assert (described["layer"], described["class"], described["legend_property"]) == ("areas", "area", "kind")
    assert [e["value"] for e in described["legend"]] == list(AREA_KINDS) == ["park", "green_space", "water_body"]
    assert {e["value"]: e["zh"] for e in described["legend"]}["water_body"] == "水体"
    facility_legend = {e.value for e in classes.get("facilities").legend()}
    assert not facility_legend & set(AREA_KINDS) and {"shelter", "bridge", "pipe_gas"} <= facility_legend
    assert "areas" in classes.layers()


def test_an_area_kind_counts_as_an_area_only_as_a_polygon() -> None:
    wkbs = [shapely.to_wkb(g) for g in (LAKE, GREEN, shapely.Point(0, 0), LAKE)]
    wkbs.append(shapely.to_wkb(shapely.Point(1, 2), byte_order=0))
    assert is_area(["water_body", "park", "park", "shelter", "park"], wkbs).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_drape_cuts_along_the_grid_and_keeps_holes_open() -> None:
    flat = drape(np.array([LAKE, POND]), lambda lon, lat: np.zeros(len(lon)), cell=0.0005)
    lon, lat, _ = crs.geocentric_to_geodetic(flat.positions)
    tri = flat.indices.reshape(-1, 3)
    # Every triangle within one grid cell (the vertices of each are inside one 0.0005° square).
    cells = np.floor(np.stack([lon, lat], axis=1)[tri] / 0.0005 + 1e-9)
    assert np.all(cells.max(axis=1) - cells.min(axis=1) <= 1)
    inside_hole = shapely.contains_xy(shapely.Polygon(LAKE.interiors[0]), lon[tri].mean(axis=1), lat[tri].mean(axis=1))
    assert not inside_hole.any(), "a triangle covers the island"
    assert set(np.unique(flat.feature)) == {0, 1} and len(tri) > 20
