"""A small city written straight into the database for the tile tests: LOD1 buildings, one building with
IFC element meshes (boxes as TIN Z in EPSG:4479), municipal facilities and a DEM GeoTIFF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from sqlalchemy import Connection, Engine, text

from cim import crs
from cim.db.datasets import insert_dataset
from cim.db.tin import tin_ewkb, triangle_records
from tests import factories

ORIGIN = (114.300, 30.580)
USES = ["residential", "commercial", "office", "industrial", "public", "education", "medical", "mixed", "other"]


@dataclass
class City:
    """Ids of what was inserted."""

    building_ids: list[int]
    bim_building_id: int
    element_guids: list[str]
    facility_ids: list[int]
    dem_path: Path


def box_tin_wkb(lon: float, lat: float, base: float, size: tuple[float, float, float], zeta: float = 0.0) -> bytes:
    """A box (east, north, up sizes in metres) at lon/lat/base (normal height) as a TIN Z EWKB in EPSG:4479."""
    m = crs.enu_to_ecef_matrix(lon, lat, base, height_anomaly=zeta)
    sx, sy, sz = size
    c = np.array([[x, y, z] for z in (0, sz) for y in (-sy / 2, sy / 2) for x in (-sx / 2, sx / 2)])
    ecef = (m[:3, :3] @ c.T).T + m[:3, 3]
    # Corner i is at x = i & 1, y = i >> 1 & 1, z = i >> 2; each side is a quad, two outward triangles.
    quads = np.array([[1, 0, 2, 3], [6, 4, 5, 7], [0, 1, 5, 4], [2, 6, 7, 3], [0, 4, 6, 2], [1, 3, 7, 5]])
    faces = np.stack([quads[:, :3], quads[:, [0, 2, 3]]], axis=1).reshape(-1, 3)
    return tin_ewkb(triangle_records(ecef[faces]))


def write_dem(path: Path) -> Path:
    """A 200 × 160 DEM in EPSG:4547 (10 m pixels) around ORIGIN: a gentle slope from 20 to 40 m."""
    x0, y0 = crs.transform_xy([ORIGIN[0] - 0.01], [ORIGIN[1] + 0.008], crs.CGCS2000, 4547)
    w, h = 200, 160
    cols = np.arange(w)[None, :]
    rows = np.arange(h)[:, None]
    data = (20.0 + 20.0 * cols / w + 2.0 * np.sin(rows / 10.0)).astype(np.float32)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=1,
        dtype="float32",
        crs="EPSG:4547",
        transform=from_origin(float(x0[0]), float(y0[0]), 10.0, 10.0),
        nodata=-9999.0,
    ) as dst:
        dst.write(data, 1)
    return path


def add_dem(conn: Connection, path: Path) -> int:
    """Register a DEM dataset row (as the raster ingestor does)."""
    return insert_dataset(
        conn, name="dem", kind="raster", layer="dem", path=str(path), sha256="1" * 64, status="loaded"
    )


def insert_element(
    conn: Connection, dataset_id: int, building_id: int | None, guid: str, wkb: bytes, **values: object
) -> None:
    """Insert one element row with its mesh."""
    conn.execute(
        text(
            "INSERT INTO element (global_id, ifc_class, name, storey, color, mesh, triangle_count, building_id, "
            "dataset_id) VALUES (:g, :c, :n, :s, CAST(:color AS jsonb), ST_GeomFromEWKB(:wkb), 12, :b, :d)"
        ),
        {
            "g": guid,
            "c": values.get("ifc_class", "IfcWall"),
            "n": values.get("name", guid),
            "s": "Level 1",
            "color": values.get("color", "[0.8, 0.2, 0.2, 1.0]"),
            "wkb": wkb,
            "b": building_id,
            "d": dataset_id,
        },
    )


def make_city(engine: Engine, tmp: Path, *, n_buildings: int = 60, seed: int = 3, dem: bool = True) -> City:
    """Insert the test city; returns what was inserted."""
    rng = np.random.default_rng(seed)
    ids: list[int] = []
    guids: list[str] = []
    fac: list[int] = []
    dem_path = write_dem(tmp / "dem.tif") if dem else tmp / "none.tif"
    with engine.begin() as conn:
        if dem:
            add_dem(conn, dem_path)
        ds = factories.dataset(conn, "city")
        for i in range(n_buildings):
            lon = ORIGIN[0] + rng.uniform(-0.006, 0.006)
            lat = ORIGIN[1] + rng.uniform(-0.005, 0.005)
            size = rng.uniform(0.0001, 0.0003)
            if i % 7 == 3:  # an L-shaped (concave) footprint
                fp = shapely.Polygon(
                    [
                        (lon, lat),
                        (lon + size, lat),
                        (lon + size, lat + size / 2),
                        (lon + size / 2, lat + size / 2),
                        (lon + size / 2, lat + size),
                        (lon, lat + size),
                    ]
                )
            elif i % 11 == 5:  # a courtyard (hole), clockwise exterior to test orientation handling
                fp = shapely.Polygon(
                    [(lon, lat), (lon, lat + size), (lon + size, lat + size), (lon + size, lat)],
                    [
                        [
                            (lon + size / 3, lat + size / 3),
                            (lon + 2 * size / 3, lat + size / 3),
                            (lon + 2 * size / 3, lat + 2 * size / 3),
                            (lon + size / 3, lat + 2 * size / 3),
                        ]
                    ],
                )
            else:
                fp = factories.square(lon, lat, size)
            ids.append(
                factories.building(
                    conn,
                    ds,
                    fp,
                    height=float(rng.uniform(6, 90)),
                    base_height=float(rng.uniform(20, 40)),
                    use=USES[i % len(USES)],
                    name=f"楼 {i}",
                    storeys=int(rng.integers(1, 30)),
                    year_built=1990 + i % 30 if i % 5 else None,
                    safety_class="ABCD"[i % 4] if i % 3 else None,
                    cim_level=2,
                )
            )
        # A building with IFC elements.
        blon, blat = ORIGIN[0] + 0.001, ORIGIN[1] + 0.001
        bim = factories.building(
            conn,
            ds,
            factories.square(blon, blat, 0.0002),
            height=15.0,
            base_height=30.0,
            use="office",
            name="BIM office",
            cim_level=5,
        )
        ids.append(bim)
        ifc = factories.dataset(conn, "office.ifc", kind="ifc", layer="ifc")
        for j in range(6):
            g = f"0ElemGuid{j:013d}"
            wkb = box_tin_wkb(blon + 0.0001, blat + 0.0001, 30.0 + 3 * j, (15.0, 12.0, 3.0))
            insert_element(conn, ifc, bim, g, wkb, ifc_class="IfcSlab" if j % 2 else "IfcWall")
            guids.append(g)
        # An element with no building (e.g. a bridge part).
        insert_element(
            conn, ifc, None, "0OrphanGuid00000000000", box_tin_wkb(ORIGIN[0] - 0.003, ORIGIN[1], 25.0, (5, 5, 5))
        )
        guids.append("0OrphanGuid00000000000")
        fds = factories.dataset(conn, "facilities", layer="facilities")
        line = shapely.LineString(
            [
                (ORIGIN[0] - 0.004, ORIGIN[1] - 0.002),
                (ORIGIN[0], ORIGIN[1] - 0.002),
                (ORIGIN[0] + 0.004, ORIGIN[1] - 0.001),
            ]
        )
        fac.append(factories.facility(conn, fds, "pipe_water", line, diameter_mm=600.0, depth_m=2.0, name="DN600"))
        fac.append(
            factories.facility(
                conn,
                fds,
                "pipe_gas",
                shapely.LineString([(ORIGIN[0] - 0.002, ORIGIN[1] + 0.003), (ORIGIN[0] + 0.002, ORIGIN[1] + 0.003)]),
                diameter_mm=300.0,
                invert_start_m=25.0,
                invert_end_m=24.0,
            )
        )
        fac.append(factories.facility(conn, fds, "manhole", shapely.Point(ORIGIN[0], ORIGIN[1] - 0.002), depth_m=2.5))
        fac.append(factories.facility(conn, fds, "street_lamp", shapely.Point(ORIGIN[0] + 0.001, ORIGIN[1] - 0.0022)))
        fac.append(factories.facility(conn, fds, "street_lamp", shapely.Point(ORIGIN[0] + 0.002, ORIGIN[1] - 0.0022)))
        fac.append(
            factories.facility(
                conn, fds, "park", factories.square(ORIGIN[0] - 0.005, ORIGIN[1] + 0.004, 0.001), name="公园"
            )
        )
    return City(ids, bim, guids, fac, dem_path)
