"""IFC ingest against the real public models and the generated samples, on a real PostGIS database.

Every shared model and both samples are ingested once into a database of this module; positions are then
checked against coordinates computed here independently from each file's own georeferencing parameters
(NumPy + pyproj directly, not the platform's code).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.geom
import ifcopenshell.util.placement
import ifcopenshell.util.unit
import numpy as np
import pytest
from pyproj import Transformer
from sqlalchemy import Engine, text

from cim.db.engine import make_engine
from cim.db.scratch import create_database, drop_database
from cim.errors import IngestError
from cim.settings import Settings
from ingest.ifc import IfcIngestReport, ingest_ifc
from ingest.ifc_model import open_model
from sample_models.ifc_bridge import generate_bridge
from sample_models.ifc_office import OfficeLayout, generate_office
from sample_models.site import OFFICE_CLEARANCE_M, OFFICE_SITE, RIVER_LATITUDE
from tests.conftest import IFC_DIR
from tests.ingest.sql import rows

SHARED_FILES = sorted(IFC_DIR.glob("*.ifc"))
NOT_GEOREFERENCED = {
    "IfcOpenHouse_IFC4.ifc",
    "beam-curved-i-shape-tessellated.ifc",
    "mapped-shape-with-multiple-items.ifc",
    "slab-openings.ifc",
    "tessellation-with-individual-colors.ifc",
}
TEST_ORIGIN = (114.30, 30.58, 20.0)
TOLERANCE_M = 0.05

pytestmark = pytest.mark.xdist_group("ifc-ingest")  # the module's shared fixture is built by one worker


@pytest.fixture(scope="module")
def module_db(pg_server_url: str, template_database: str) -> Iterator[str]:
    """One migrated database shared by this module's tests (the models are ingested once)."""
    name = f"cim_ifc_{secrets.token_hex(5)}"
    yield create_database(pg_server_url, name, template=template_database)
    drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def module_engine(module_db: str) -> Iterator[Engine]:
    eng = make_engine(module_db)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def module_settings(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), database_url=module_db)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("samples")
    return {"office": generate_office(folder / "office.ifc"), "bridge": generate_bridge(folder / "bridge.ifc")}


@pytest.fixture(scope="module")
def loaded(module_engine: Engine, module_settings: Settings, samples: dict[str, Path]) -> dict[str, IfcIngestReport]:
    """Every shared model and both samples, ingested once (with --origin where there is no georeference)."""
    reports: dict[str, IfcIngestReport] = {}
    for path in [*SHARED_FILES, *samples.values()]:
        origin = TEST_ORIGIN if path.name in NOT_GEOREFERENCED else None
        reports[path.name] = ingest_ifc(module_engine, path, module_settings, origin=origin)
    return reports


def _body_products(model: ifcopenshell.file) -> list[ifcopenshell.entity_instance]:
    # "Facetation" is the body of terrain-like products (IfcOpenHouse's site); openings are not elements.
    return [
        p
        for p in model.by_type("IfcProduct")
        if p.Representation is not None
        and not p.is_a("IfcOpeningElement")
        and any(r.RepresentationIdentifier in ("Body", "Facetation") for r in p.Representation.Representations)
    ]


def _stored_points(engine: Engine, dataset_id: int, global_id: str) -> np.ndarray:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(g), ST_Y(g), ST_Z(g) FROM (SELECT (ST_DumpPoints(mesh)).geom AS g FROM element "
                "WHERE dataset_id = :d AND global_id = :g) AS p"
            ),
            {"d": dataset_id, "g": global_id},
        ).all()
    return np.asarray(rows, dtype=np.float64)


def _local_vertices(model: ifcopenshell.file, product: ifcopenshell.entity_instance) -> np.ndarray:
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    shape: Any = ifcopenshell.geom.create_shape(settings, product)
    return np.asarray(shape.geometry.verts, dtype=np.float64).reshape(-1, 3)


def _geocentric(lon: np.ndarray, lat: np.ndarray, h: np.ndarray) -> np.ndarray:
    x, y, z = Transformer.from_crs("EPSG:4480", "EPSG:4479", always_xy=True).transform(lon, lat, h)
    return np.column_stack([x, y, z])


def _expected_map_conversion(model: ifcopenshell.file, local: np.ndarray) -> np.ndarray:
    """IfcMapConversion by its definition: E = E0 + s(a·x − b·y), N = N0 + s(b·x + a·y), H = H0 + s·z.

    Local coordinates are in metres and every tested file's map unit is the metre, so s = 1: the samples
    write Scale 1, the buildingSMART millimetre samples write 1000 for "1000 mm per metre".
    """
    conv = model.by_type("IfcMapConversion")[0]
    assert conv.Scale in (None, 1.0, 1000.0)
    a, b = conv.XAxisAbscissa, conv.XAxisOrdinate
    norm = math.hypot(a, b)
    a, b = a / norm, b / norm
    e = conv.Eastings + a * local[:, 0] - b * local[:, 1]
    n = conv.Northings + b * local[:, 0] + a * local[:, 1]
    h = conv.OrthogonalHeight + local[:, 2]
    lon, lat = Transformer.from_crs(conv.TargetCRS.Name, "EPSG:4490", always_xy=True).transform(e, n)
    return _geocentric(np.asarray(lon), np.asarray(lat), h)


def _expected_tangent_plane(
    lon0: float, lat0: float, h0: float, local: np.ndarray, north: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """East-north-up offsets from a reference point, with the model turned by its TrueNorth."""
    nx, ny = north
    east = local[:, 0] * ny - local[:, 1] * nx
    northing = local[:, 0] * nx + local[:, 1] * ny
    lam, phi = math.radians(lon0), math.radians(lat0)
    e_vec = np.array([-math.sin(lam), math.cos(lam), 0.0])
    n_vec = np.array([-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi)])
    u_vec = np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])
    origin = _geocentric(np.array([lon0]), np.array([lat0]), np.array([h0]))[0]
    return origin + np.outer(east, e_vec) + np.outer(northing, n_vec) + np.outer(local[:, 2], u_vec)


def _dms(value: tuple[int, ...]) -> float:
    parts = list(value) + [0] * (4 - len(value))
    return parts[0] + parts[1] / 60 + parts[2] / 3600 + parts[3] / 3.6e9


def _expected_site(model: ifcopenshell.file, local: np.ndarray) -> np.ndarray:
    site = next(s for s in model.by_type("IfcSite") if s.RefLatitude)
    unit = ifcopenshell.util.unit.calculate_unit_scale(model)
    origin = ifcopenshell.util.placement.get_local_placement(site.ObjectPlacement)[:3, 3] * unit
    north = (0.0, 1.0)
    for context in model.by_type("IfcGeometricRepresentationContext", include_subtypes=False):
        if context.TrueNorth is not None:
            nx, ny = context.TrueNorth.DirectionRatios[:2]
            norm = math.hypot(nx, ny)
            north = (nx / norm, ny / norm)
    h0 = (site.RefElevation or 0.0) * unit
    return _expected_tangent_plane(_dms(site.RefLongitude), _dms(site.RefLatitude), h0, local - origin, north)


def _expected_rigid(model: ifcopenshell.file, local: np.ndarray) -> np.ndarray:
    op = model.by_type("IfcRigidOperation")[0]
    assert op.TargetCRS.is_a("IfcGeographicCRS")
    lon, lat = op.FirstCoordinate.wrappedValue, op.SecondCoordinate.wrappedValue
    return _expected_tangent_plane(lon, lat, op.Height, local)


GEOREFERENCED = {
    "geographic-referencing-gk.ifc": _expected_map_conversion,
    "geographic-referencing-utm.ifc": _expected_map_conversion,
    "geographic-referencing-rigid-operation.ifc": _expected_rigid,
    "AC20-FZK-Haus.ifc": _expected_site,
    "duplex.ifc": _expected_site,
    "KIT-Simple-Road-Test-Web-IFC4x3_RC2.ifc": _expected_site,
    "office.ifc": _expected_map_conversion,
    "bridge.ifc": _expected_map_conversion,
}


def _path_of(name: str, samples: dict[str, Path]) -> Path:
    return samples[name.removesuffix(".ifc")] if name in ("office.ifc", "bridge.ifc") else IFC_DIR / name


def test_every_shared_model_and_sample_ingests_with_all_its_elements(
    loaded: dict[str, IfcIngestReport], module_engine: Engine, samples: dict[str, Path]
) -> None:
    assert len(loaded) == len(SHARED_FILES) + 2
    for name, report in loaded.items():
        model, _ = open_model(_path_of(name, samples))
        expected = len(_body_products(model))
        assert report.failed == [], name
        assert report.elements == expected, name
        with module_engine.connect() as conn:
            stored = conn.execute(
                text("SELECT count(*), sum(triangle_count) FROM element WHERE dataset_id = :d"),
                {"d": report.dataset_id},
            ).one()
            bad_meshes = conn.execute(
                text(
                    "SELECT count(*) FROM element WHERE dataset_id = :d AND (ST_SRID(mesh) <> 4479 OR "
                    "ST_NumGeometries(mesh) <> triangle_count OR ST_NPoints(mesh) <> 4 * triangle_count)"
                ),
                {"d": report.dataset_id},
            ).scalar_one()
        assert stored[0] == expected, name
        assert stored[1] == report.triangles > 0, name
        assert bad_meshes == 0, name


def test_georeference_levels_and_crs_are_recorded(loaded: dict[str, IfcIngestReport]) -> None:
    assert (loaded["geographic-referencing-gk.ifc"].georef_level, loaded["geographic-referencing-gk.ifc"].crs_in) == (
        50,
        "EPSG:31467",
    )
    assert loaded["geographic-referencing-utm.ifc"].crs_in == "EPSG:25832"
    assert loaded["geographic-referencing-rigid-operation.ifc"].georef_method == "IfcRigidOperation"
    assert loaded["AC20-FZK-Haus.ifc"].georef_level == 40  # RefLatitude + site placement + TrueNorth
    assert loaded["duplex.ifc"].georef_level == 20
    assert loaded["office.ifc"].crs_in == "EPSG:4547"
    assert loaded["KIT-Simple-Road-Test-Web-IFC4x3_RC2.ifc"].schema == "IFC4X3_RC2"
    assert loaded["IfcOpenHouse_IFC4.ifc"].georef_method == "override --origin"


@pytest.mark.parametrize("name", sorted(GEOREFERENCED))
def test_stored_positions_agree_with_the_files_own_georeference(
    name: str, loaded: dict[str, IfcIngestReport], module_engine: Engine, samples: dict[str, Path]
) -> None:
    model, _ = open_model(_path_of(name, samples))
    report = loaded[name]
    checked = 0
    for product in _body_products(model)[:6]:
        local = _local_vertices(model, product)
        local = local[np.hypot(local[:, 0], local[:, 1]) < 300.0]  # tangent-plane checks stay near the origin
        if not len(local):
            continue
        expected = GEOREFERENCED[name](model, local)
        stored = _stored_points(module_engine, report.dataset_id, product.GlobalId)
        distances = np.linalg.norm(expected[:, None, :] - stored[None, :, :], axis=2).min(axis=1)
        assert distances.max() < TOLERANCE_M, (name, product.GlobalId, distances.max())
        checked += 1
    assert checked > 0


def test_office_building_row_has_footprint_heights_storeys_and_chinese_properties(
    loaded: dict[str, IfcIngestReport], module_engine: Engine
) -> None:
    report = loaded["office.ifc"]
    with module_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT name, address, storeys, gross_floor_area, cim_level, facility_type, base_height, height, "
                "ST_Area(footprint::geography), ST_Distance(footprint::geography, "
                "ST_SetSRID(ST_Point(:lon, :lat), 4490)::geography), ST_MaxDistance(footprint, "
                "ST_SetSRID(ST_Point(:lon, :lat), 4490)), attributes, id "
                "FROM building WHERE dataset_id = :d AND valid_to IS NULL"
            ),
            {"d": report.dataset_id, "lon": OFFICE_SITE[0], "lat": OFFICE_SITE[1]},
        ).one()
        elements = conn.execute(
            text("SELECT count(*) FROM element WHERE building_id = :b AND valid_to IS NULL"), {"b": row.id}
        ).scalar_one()
        wall = conn.execute(
            text(
                "SELECT properties, storey, material, color FROM element WHERE dataset_id = :d AND ifc_class = "
                "'IfcWall' AND properties ? '构件信息' LIMIT 1"
            ),
            {"d": report.dataset_id},
        ).one()
    assert row.name == "示例办公楼" and "武汉市" in row.address
    assert row.storeys == OfficeLayout().storeys
    assert row.gross_floor_area == pytest.approx(5 * 36.0 * 21.6)
    assert (row.cim_level, row.facility_type) == (6, "IfcBuilding")
    assert row.base_height == pytest.approx(24.0 - 0.25, abs=0.01)
    assert row.height == pytest.approx(5 * 3.6, abs=0.3)
    assert 700 < row[8] < 900  # m², 36 m × 21.6 m plus the wall thickness
    assert row[9] == 0.0  # the site point lies inside the footprint
    assert row[10] * 111_000 < OFFICE_CLEARANCE_M / 2
    assert row.attributes["建筑信息"]["结构类型"] == "框架结构"
    assert elements == report.elements
    assert wall.properties["构件信息"]["材料"] == "加气混凝土砌块"
    assert wall.storey and wall.material and len(wall.color) == 4


def test_bridge_is_a_facility_spanning_the_river(loaded: dict[str, IfcIngestReport], module_engine: Engine) -> None:
    report = loaded["bridge.ifc"]
    (row,) = rows(
        module_engine,
        "SELECT facility_type, cim_level, ST_YMin(footprint::box2d), ST_YMax(footprint::box2d), "
        "(SELECT count(*) FROM element e WHERE e.building_id = b.id) FROM building b WHERE dataset_id = :d",
        d=report.dataset_id,
    )
    assert row[0] == "IfcBridge"
    assert row[2] < RIVER_LATITUDE - 0.0005 and row[3] > RIVER_LATITUDE + 0.0005  # > 55 m each side
    assert row[4] == report.elements == 15


def test_road_model_becomes_an_ifcroad_facility(loaded: dict[str, IfcIngestReport], module_engine: Engine) -> None:
    report = loaded["KIT-Simple-Road-Test-Web-IFC4x3_RC2.ifc"]
    with module_engine.connect() as conn:
        types = conn.execute(
            text("SELECT facility_type FROM building WHERE dataset_id = :d"), {"d": report.dataset_id}
        ).scalars()
        assert "IfcRoad" in set(types)


def test_reingesting_identical_bytes_changes_nothing(
    loaded: dict[str, IfcIngestReport], module_engine: Engine, module_settings: Settings, samples: dict[str, Path]
) -> None:
    before = _table_counts(module_engine)
    again = ingest_ifc(module_engine, samples["office"], module_settings)
    assert again.skipped and again.dataset_id == loaded["office.ifc"].dataset_id
    assert _table_counts(module_engine) == before


def test_truncated_file_is_refused_and_leaves_the_database_unchanged(
    loaded: dict[str, IfcIngestReport], module_engine: Engine, module_settings: Settings, tmp_path: Path
) -> None:
    before = _table_counts(module_engine)
    data = (IFC_DIR / "duplex.ifc").read_bytes()
    truncated = tmp_path / "duplex-truncated.ifc"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="truncated"):
        ingest_ifc(module_engine, truncated, module_settings)
    assert _table_counts(module_engine) == before


def test_model_without_georeference_is_refused_with_how_to_place_it(
    loaded: dict[str, IfcIngestReport], module_engine: Engine, module_settings: Settings
) -> None:
    before = _table_counts(module_engine)
    with pytest.raises(IngestError, match="--origin") as info:
        ingest_ifc(module_engine, IFC_DIR / "slab-openings.ifc", module_settings)
    assert "--crs" in str(info.value)
    assert _table_counts(module_engine) == before


def _table_counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("dataset", "building", "element")
        )
