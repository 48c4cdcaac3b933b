"""IFC2X3 georeferencing by ePSet_MapConversion in a millimetre model, and --origin/--rotation overrides."""

from __future__ import annotations

import math
from pathlib import Path

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.context
import ifcopenshell.api.geometry
import ifcopenshell.api.project
import ifcopenshell.api.pset
import ifcopenshell.api.root
import ifcopenshell.api.spatial
import ifcopenshell.api.unit
import numpy as np
import pytest
from pyproj import Transformer
from sqlalchemy import Engine, text

from cim.errors import IngestError
from cim.settings import Settings
from ingest.ifc import ingest_ifc
from tests.conftest import IFC_DIR

EASTING, NORTHING, HEIGHT = 536_420.0, 3_383_150.0, 21.5
ANGLE = 30.0  # degrees, x axis counter-clockwise from grid east


def _ifc2x3_mm_model(path: Path, *, with_epset: bool) -> Path:
    f = ifcopenshell.api.project.create_file(version="IFC2X3")
    organisation = f.createIfcOrganization(Name="cim tests")
    f.createIfcPersonAndOrganization(f.createIfcPerson(FamilyName="tester"), organisation)
    f.createIfcApplication(organisation, "1.0", "cim tests", "cim-tests")  # IFC2X3 needs owner history
    project = ifcopenshell.api.root.create_entity(f, ifc_class="IfcProject", name="2x3")
    ifcopenshell.api.unit.assign_unit(f, length={"is_metric": True, "raw": "MILLIMETERS"})
    model = ifcopenshell.api.context.add_context(f, context_type="Model")
    body = ifcopenshell.api.context.add_context(
        f, context_type="Model", context_identifier="Body", target_view="MODEL_VIEW", parent=model
    )
    site = ifcopenshell.api.root.create_entity(f, ifc_class="IfcSite", name="site")
    building = ifcopenshell.api.root.create_entity(f, ifc_class="IfcBuilding", name="楼")
    storey = ifcopenshell.api.root.create_entity(f, ifc_class="IfcBuildingStorey", name="1F")
    ifcopenshell.api.aggregate.assign_object(f, products=[site], relating_object=project)
    ifcopenshell.api.aggregate.assign_object(f, products=[building], relating_object=site)
    ifcopenshell.api.aggregate.assign_object(f, products=[storey], relating_object=building)
    wall = ifcopenshell.api.root.create_entity(f, ifc_class="IfcWall", name="wall")
    rep = ifcopenshell.api.geometry.add_wall_representation(f, context=body, length=10.0, height=3.0, thickness=0.2)
    ifcopenshell.api.geometry.assign_representation(f, product=wall, representation=rep)
    ifcopenshell.api.geometry.edit_object_placement(f, product=wall, matrix=np.eye(4), is_si=True)
    ifcopenshell.api.spatial.assign_container(f, products=[wall], relating_structure=storey)
    if with_epset:
        conv = ifcopenshell.api.pset.add_pset(f, product=site, name="ePSet_MapConversion")
        ifcopenshell.api.pset.edit_pset(
            f,
            pset=conv,
            properties={
                "Eastings": EASTING,
                "Northings": NORTHING,
                "OrthogonalHeight": HEIGHT,
                "XAxisAbscissa": math.cos(math.radians(ANGLE)),
                "XAxisOrdinate": math.sin(math.radians(ANGLE)),
                "Scale": 0.001,  # map metres per model millimetre, as the standard defines it
            },
        )
        crs = ifcopenshell.api.pset.add_pset(f, product=site, name="ePSet_ProjectedCRS")
        ifcopenshell.api.pset.edit_pset(f, pset=crs, properties={"Name": "EPSG:4547"})
    f.write(str(path))
    return path


def _stored_vertices(engine: Engine, dataset_id: int) -> np.ndarray:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(g), ST_Y(g), ST_Z(g) FROM (SELECT (ST_DumpPoints(mesh)).geom AS g FROM element "
                "WHERE dataset_id = :d) AS p"
            ),
            {"d": dataset_id},
        ).all()
    return np.asarray(rows)


def _expected(local_m: np.ndarray, e0: float, n0: float, h0: float, angle: float) -> np.ndarray:
    a, b = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    e = e0 + a * local_m[:, 0] - b * local_m[:, 1]
    n = n0 + b * local_m[:, 0] + a * local_m[:, 1]
    lon, lat = Transformer.from_crs("EPSG:4547", "EPSG:4490", always_xy=True).transform(e, n)
    x, y, z = Transformer.from_crs("EPSG:4480", "EPSG:4479", always_xy=True).transform(lon, lat, h0 + local_m[:, 2])
    return np.column_stack([x, y, z])


# The wall's far top corner and its origin, in metres: 10 m long, 0.2 m thick, 3 m high.
CORNERS = np.array([[0.0, 0.0, 0.0], [10.0, 0.2, 3.0], [10.0, 0.0, 0.0]])


def _nearest(stored: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(expected[:, None, :] - stored[None, :, :], axis=2).min(axis=1).max())


def test_ifc2x3_epset_map_conversion_in_millimetres_places_the_model(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = _ifc2x3_mm_model(tmp_path / "epset.ifc", with_epset=True)
    report = ingest_ifc(engine, path, settings)
    assert (report.schema, report.georef_level, report.georef_method, report.crs_in) == (
        "IFC2X3",
        50,
        "ePSet_MapConversion",
        "EPSG:4547",
    )
    stored = _stored_vertices(engine, report.dataset_id)
    assert _nearest(stored, _expected(CORNERS, EASTING, NORTHING, HEIGHT, ANGLE)) < 0.05


def test_model_without_georeference_is_placed_by_origin_and_rotation(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = _ifc2x3_mm_model(tmp_path / "plain.ifc", with_epset=False)
    report = ingest_ifc(engine, path, settings, origin=(114.3, 30.58, 10.0), rotation=ANGLE)
    lam, phi = math.radians(114.3), math.radians(30.58)
    e_vec = np.array([-math.sin(lam), math.cos(lam), 0.0])
    n_vec = np.array([-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi)])
    u_vec = np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])
    x0, y0, z0 = Transformer.from_crs("EPSG:4480", "EPSG:4479", always_xy=True).transform(114.3, 30.58, 10.0)
    a, b = math.cos(math.radians(ANGLE)), math.sin(math.radians(ANGLE))
    east = a * CORNERS[:, 0] - b * CORNERS[:, 1]
    north = b * CORNERS[:, 0] + a * CORNERS[:, 1]
    expected = np.array([x0, y0, z0]) + np.outer(east, e_vec) + np.outer(north, n_vec) + np.outer(CORNERS[:, 2], u_vec)
    assert _nearest(_stored_vertices(engine, report.dataset_id), expected) < 0.05


def test_map_conversion_to_an_unknown_crs_falls_back_to_the_site_reference_or_asks_for_crs(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    source = (IFC_DIR / "geographic-referencing-gk.ifc").read_text()
    unknown = tmp_path / "gk-unknown-crs.ifc"
    unknown.write_text(source.replace("'EPSG:31467'", "'Stadtnetz Karlsruhe'"))
    report = ingest_ifc(engine, unknown, settings)
    assert report.georef_method == "IfcSite RefLatitude/RefLongitude"
    assert any("map conversion not used" in w for w in report.warnings)

    no_site = tmp_path / "gk-unknown-crs-no-site.ifc"
    no_site.write_text(
        source.replace("'EPSG:31467'", "'Stadtnetz Karlsruhe'").replace("(49,5,43,983700),(8,26,1,247300)", "$,$")
    )
    with pytest.raises(IngestError, match="--crs"):
        ingest_ifc(engine, no_site, settings)
    placed = ingest_ifc(engine, no_site, settings, crs="EPSG:31467")
    assert (placed.georef_level, placed.crs_in) == (50, "EPSG:31467")


def test_map_conversion_scaled_applies_its_axis_factors(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    source = (IFC_DIR / "geographic-referencing-utm.ifc").read_text()
    original = "IFCMAPCONVERSION(#100011,#1,458657.30,5438232.25,113.7,0.270600445976,0.962691746426,1000.)"
    assert original in source
    scaled = tmp_path / "utm-scaled.ifc"
    scaled.write_text(
        source.replace(
            original,
            "IFCMAPCONVERSIONSCALED(#100011,#1,458657.30,5438232.25,113.7,0.270600445976,0.962691746426,1000.,"
            "0.5,0.5,1.)",  # exaggerated factors, so a missed factor shows
        )
    )
    report = ingest_ifc(engine, scaled, settings)
    assert report.georef_method == "IfcMapConversionScaled"
    local = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 4.0], [-0.5, 0.5, 2.0]])  # pyramid vertices, metres
    norm = math.hypot(0.270600445976, 0.962691746426)
    a, b = 0.270600445976 / norm, 0.962691746426 / norm
    e = 458657.30 + 0.5 * (a * local[:, 0] - b * local[:, 1])
    n = 5438232.25 + 0.5 * (b * local[:, 0] + a * local[:, 1])
    lon, lat = Transformer.from_crs("EPSG:25832", "EPSG:4490", always_xy=True).transform(e, n)
    x, y, z = Transformer.from_crs("EPSG:4480", "EPSG:4479", always_xy=True).transform(lon, lat, 113.7 + local[:, 2])
    assert _nearest(_stored_vertices(engine, report.dataset_id), np.column_stack([x, y, z])) < 0.05
