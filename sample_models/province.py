"""A province of building footprints for the throughput benchmarks: Hubei, one GeoPackage per Gauss–Krüger zone.

Footprints spread over Hubei (108.3–116.1°E, 29.0–33.3°N), clustered around its cities, written one
GeoPackage per CGCS2000 3-degree Gauss–Krüger zone (EPSG:4545–4548) with Chinese attribute names. Fully
vectorised: a million footprints take seconds. :func:`sample_models.district.generate_district` calls it
above :data:`PROVINCE_FROM` buildings.

With ``context=True`` (the province benchmark) each zone's GeoPackage also holds what the health check and
the tiles need, in proportion to the buildings: districts (0.5° cells, county-sized, the buildings carry
their code), parcels (cells with ≥ 5 buildings, 400 m at 1M), roads (the edges of cells with ≥ 10 buildings,
2 km at 1M, every fifth line arterial), parks (one per cell with ≥ 20 buildings, 1 km at 1M; cell sides
shrink with 1 / √n so that these counts grow with the buildings), community service points,
clinics, schools, kindergartens, fire stations, shelters and waterlogging points (one per 300, 1,500,
1,000, 600, 20,000, 2,000 and 5,000 buildings, placed near drawn buildings), a greenway through each city,
and a DEM (EPSG:4490, about one cell per ten buildings). :func:`province_layers` lists what to ingest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely

from cim import crs as cimcrs
from sample_models import district_geometry as dg
from sample_models.district_writer import write_dem, write_layer
from sample_models.sample_files import BLOCK_P, USES_ZH, DistrictFiles

HUBEI_BOUNDS = (108.3, 29.0, 116.1, 33.3)
"""Hubei's extent (west, south, east, north), CGCS2000 degrees."""
PROVINCE_FROM = 50_000
WRITE_CHUNK = 1_000_000
"""Buildings written per append to a zone's GeoPackage."""
HUBEI_CITIES = (
    (114.30, 30.59, 0.30),  # Wuhan (lon, lat, share)
    (111.29, 30.69, 0.08),  # Yichang
    (112.14, 32.04, 0.08),  # Xiangyang
    (112.24, 30.33, 0.06),  # Jingzhou
    (110.80, 32.63, 0.05),  # Shiyan
    (109.49, 30.27, 0.04),  # Enshi
    (115.04, 30.20, 0.05),  # Huangshi
    (113.92, 30.93, 0.04),  # Xiaogan
    (112.20, 31.04, 0.04),  # Jingmen
    (114.88, 30.45, 0.04),  # Huanggang / Ezhou
    (113.38, 31.69, 0.03),  # Suizhou
    (114.32, 29.84, 0.03),  # Xianning
)


def generate_province(
    out: Path, n: int, rng: np.random.Generator, extent: tuple[float, float, float, float], *, context: bool = False
) -> DistrictFiles:
    """``n`` footprints within ``extent`` (west, south, east, north; CGCS2000 degrees) written into ``out``.

    ``context``: also districts, parcels, facilities and a DEM in proportion (module docstring).
    """
    w, s, e, nn = extent
    shares = np.array([c[2] for c in HUBEI_CITIES])
    clustered = int(n * 0.8)
    city = rng.choice(len(HUBEI_CITIES), size=clustered, p=shares / shares.sum())
    centres = np.array([(c[0], c[1]) for c in HUBEI_CITIES])
    lon = np.concatenate([centres[city, 0] + rng.normal(0, 0.06, clustered), rng.uniform(w, e, n - clustered)])
    lat = np.concatenate([centres[city, 1] + rng.normal(0, 0.05, clustered), rng.uniform(s, nn, n - clustered)])
    lon = np.clip(lon, w, e)
    lat = np.clip(lat, s, nn)
    zone = np.floor((lon + 1.5) / 3.0).astype(np.int64)
    files = DistrictFiles(out_dir=out, crs="per zone", buildings=n)
    storeys = np.where(rng.random(n) < 0.7, rng.integers(1, 8, n), rng.integers(8, 34, n))
    height = np.round(storeys * 3.0 + rng.uniform(0.3, 2.0, n), 1)
    uses = np.array(list(USES_ZH.values()), dtype=object)[rng.choice(len(USES_ZH), n, p=BLOCK_P)]
    year = rng.integers(1960, 2024, n)
    safety = np.array(["A", "B", "C", "D"], dtype=object)[rng.choice(4, n, p=(0.55, 0.37, 0.06, 0.02))]
    width = rng.uniform(10.0, 40.0, n)
    depth = rng.uniform(9.0, 25.0, n)
    theta = rng.uniform(0, np.pi, n)
    layers = _context(lon, lat, extent, rng) if context else {}
    codes = _district_code(lon, lat) if context else None
    for z in np.unique(zone):
        m = zone == z
        epsg = cimcrs.GK_CM_EPSG_FIRST + int(z) - 25
        path = out / f"hubei_buildings_{epsg}.gpkg"
        path.unlink(missing_ok=True)
        index = np.flatnonzero(m)
        for start in range(0, len(index), WRITE_CHUNK):  # appended in chunks: memory bounded at 10M buildings
            i = index[start : start + WRITE_CHUNK]
            x, y = cimcrs.transform_xy(lon[i], lat[i], 4490, epsg)
            geoms = dg.rectangles(x, y, width[i], depth[i], theta[i])
            attrs = {"层数": storeys[i], "高度": height[i], "用途": uses[i], "建成年代": year[i], "安全等级": safety[i]}
            if codes is not None:
                attrs["所属区县代码"] = codes[i]
            write_layer(path, "buildings", geoms, attrs, crs=f"EPSG:{epsg}", geometry_type="Polygon")
            del geoms, attrs
        files.zone_files.append(path)
        files.counts[f"EPSG:{epsg}"] = int(m.sum())
        for name, (lgeoms, lattrs, gtype, rep_lon) in layers.items():
            keep = np.floor((rep_lon + 1.5) / 3.0).astype(np.int64) == z
            if not keep.any():
                continue
            projected = shapely.transform(
                lgeoms[keep], lambda xy, e=epsg: np.column_stack(cimcrs.transform_xy(xy[:, 0], xy[:, 1], 4490, e))
            )
            write_layer(
                path,
                name,
                projected,
                {k: np.asarray(v)[keep] for k, v in lattrs.items()},
                crs=f"EPSG:{epsg}",
                geometry_type=gtype,
            )
            files.counts[f"EPSG:{epsg}/{name}"] = int(keep.sum())
    files.layers = [("buildings", "buildings", None)]
    if context:
        files.dem = out / "hubei_dem.tif"
        _write_dem(files.dem, extent, n)
    return files


def province_layers(files: DistrictFiles) -> list[tuple[Path, str, str, str | None]]:
    """What to ingest from a context province, in load order: (GeoPackage, source layer, target layer, kind).

    Districts and parcels first, then facilities, then buildings (a zone's file holds only the layers that
    have features in that zone).
    """
    order = ["districts", "parcels", *FACILITY_KINDS, "buildings"]
    out: list[tuple[Path, str, str, str | None]] = []
    for name in order:
        for path in files.zone_files:
            epsg = path.stem.rsplit("_", 1)[1]
            if name == "buildings" or f"EPSG:{epsg}/{name}" in files.counts:
                target = name if name in ("districts", "parcels", "buildings") else "facilities"
                out.append((path, name, target, None if target != "facilities" else name))
    return out


FACILITY_KINDS = (
    "road",
    "park",
    "greenway",
    "community_service",
    "clinic",
    "school",
    "kindergarten",
    "fire_station",
    "shelter",
    "waterlogging_point",
)
"""Facility layers of a context province (GeoPackage layer name = facility kind)."""
DISTRICT_DEG = 0.5
PARCEL_DEG = 0.004
ROAD_DEG = 0.02
PARK_DEG = 0.01
"""Cell sides (degrees) at 1,000,000 buildings; parcel, road and park cells scale with 1 / √n, so that their
counts grow in proportion to the buildings (districts are administrative: a fixed grid)."""
PER_FACILITY = {
    "community_service": 300,
    "clinic": 1_500,
    "school": 1_000,
    "kindergarten": 600,
    "fire_station": 20_000,
    "shelter": 2_000,
    "waterlogging_point": 5_000,
}
"""Buildings per facility of each point-like kind."""
M_PER_DEG = 111_000.0


def _district_code(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The code of the 0.5° district cell of each position (``HB`` + column + row; cells never cross a zone edge)."""
    col = np.floor(lon / DISTRICT_DEG).astype(np.int64)
    row = np.floor(lat / DISTRICT_DEG).astype(np.int64)
    return np.char.add(np.char.add("HB", col.astype(str)), np.char.add("-", row.astype(str))).astype(object)


def _aligned(deg: float) -> float:
    """``deg`` rounded so that a whole number of cells fills a district cell (no cell crosses a zone edge)."""
    return DISTRICT_DEG / max(1, round(DISTRICT_DEG / deg))


def _cells(lon: np.ndarray, lat: np.ndarray, deg: float, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid cells of ``deg`` degrees holding at least ``min_count`` positions: column, row, count."""
    col = np.floor(lon / deg).astype(np.int64)
    row = np.floor(lat / deg).astype(np.int64)
    keys, counts = np.unique(np.stack([col, row], 1), axis=0, return_counts=True)
    keep = counts >= min_count
    return keys[keep, 0], keys[keep, 1], counts[keep]


def _boxes(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    return np.asarray(shapely.box(x0, y0, x1, y1))


def _near(
    lon: np.ndarray, lat: np.ndarray, k: int, spread_m: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` positions near randomly drawn buildings (within ``spread_m`` metres)."""
    i = rng.integers(0, len(lon), k)
    d = spread_m / M_PER_DEG
    return lon[i] + rng.uniform(-d, d, k), lat[i] + rng.uniform(-d, d, k)


Layer = tuple[np.ndarray, dict[str, Any], str, np.ndarray]


def _context(
    lon: np.ndarray, lat: np.ndarray, extent: tuple[float, float, float, float], rng: np.random.Generator
) -> dict[str, Layer]:
    """Districts, parcels and facilities (lon/lat geometries, attributes, geometry type, representative lon)."""
    n = len(lon)
    scale = float(np.sqrt(1_000_000 / max(n, 1)))
    parcel_deg, road_deg, park_deg = (_aligned(d * scale) for d in (PARCEL_DEG, ROAD_DEG, PARK_DEG))
    layers: dict[str, Layer] = {}
    c, r, k = _cells(lon, lat, DISTRICT_DEG, 1)
    x0, y0 = np.maximum(c * DISTRICT_DEG, extent[0]), np.maximum(r * DISTRICT_DEG, extent[1])
    x1, y1 = np.minimum((c + 1) * DISTRICT_DEG, extent[2]), np.minimum((r + 1) * DISTRICT_DEG, extent[3])
    polys = np.asarray(shapely.multipolygons(_boxes(x0, y0, x1, y1), indices=np.arange(len(c))))
    codes = _district_code(x0 + 1e-9, y0 + 1e-9)
    layers["districts"] = (
        polys,
        {"行政区划代码": codes, "名称": codes, "常住人口": (k * 3).astype(np.int64)},
        "MultiPolygon",
        x0 + 1e-9,
    )
    c, r, _ = _cells(lon, lat, parcel_deg, 5)
    inset = 10.0 / M_PER_DEG
    parcels = _boxes(
        c * parcel_deg + inset, r * parcel_deg + inset, (c + 1) * parcel_deg - inset, (r + 1) * parcel_deg - inset
    )
    use = rng.choice(["R2", "B1", "M1"], len(c), p=(0.7, 0.2, 0.1))
    layers["parcels"] = (
        np.asarray(shapely.multipolygons(parcels, indices=np.arange(len(c)))),
        {
            "地块编码": [f"HB-P{i}" for i in range(len(c))],
            "用地性质": use,
            "容积率": np.round(rng.uniform(1.0, 4.0, len(c)), 2),
            "建筑密度": np.round(rng.uniform(0.2, 0.4, len(c)), 2),
        },
        "MultiPolygon",
        (c + 0.5) * parcel_deg,
    )
    # Roads: the south and west edges of occupied 2 km cells (shared edges once: noded at the corners).
    c, r, _ = _cells(lon, lat, road_deg, 10)
    edges = np.unique(
        np.concatenate([np.stack([c, r, np.zeros_like(c)], 1), np.stack([c, r, np.ones_like(c)], 1)]), axis=0
    )
    ex, ey, vertical = edges[:, 0] * road_deg, edges[:, 1] * road_deg, edges[:, 2] == 1
    coords = np.stack(
        [
            np.stack([ex, ey], 1),
            np.stack([np.where(vertical, ex, ex + road_deg), np.where(vertical, ey + road_deg, ey)], 1),
        ],
        1,
    )
    line = np.where(vertical, edges[:, 0], edges[:, 1])
    layers["road"] = (
        np.asarray(shapely.linestrings(coords)),
        {
            "道路等级": np.where(line % 5 == 0, "arterial", np.where(line % 2 == 0, "secondary", "branch")),
            "宽度": np.where(line % 5 == 0, 30.0, 15.0),
        },
        "LineString",
        ex + np.where(vertical, 0.0, road_deg / 2),
    )
    c, r, _ = _cells(lon, lat, park_deg, 20)
    side = np.sqrt(rng.uniform(1_500, 12_000, len(c))) / M_PER_DEG / 2
    px, py = (c + rng.uniform(0.2, 0.8, len(c))) * park_deg, (r + rng.uniform(0.2, 0.8, len(c))) * park_deg
    layers["park"] = (
        _boxes(px - side, py - side, px + side, py + side),
        {"名称": [f"公园{i}" for i in range(len(c))]},
        "Polygon",
        px,
    )
    gx = np.array([cx for cx, _, _ in HUBEI_CITIES])
    gy = np.array([cy for _, cy, _ in HUBEI_CITIES])
    t = np.linspace(-0.1, 0.1, 40)
    greenways = np.asarray(
        [shapely.LineString(np.column_stack([x + t, y + 0.01 * np.sin(t * 60)])) for x, y in zip(gx, gy, strict=True)]
    )
    layers["greenway"] = (greenways, {"名称": [f"绿道{i}" for i in range(len(gx))]}, "LineString", gx - 0.1)
    for kind, per in PER_FACILITY.items():
        count = max(1, n // per)
        fx, fy = _near(lon, lat, count, 150.0, rng)
        if kind == "shelter":
            h = 40.0 / M_PER_DEG
            geoms = _boxes(fx - h, fy - h, fx + h, fy + h)
            layers[kind] = (geoms, {"面积": rng.uniform(3_000, 20_000, count)}, "Polygon", fx)
        else:
            layers[kind] = (
                np.asarray(shapely.points(fx, fy)),
                {"名称": [f"{kind}{i}" for i in range(count)]},
                "Point",
                fx,
            )
    return layers


def _write_dem(path: Path, extent: tuple[float, float, float, float], n: int) -> None:
    """A DEM over ``extent`` in EPSG:4490, about one cell per ten buildings (between 200 × 100 and 4,000 × 2,200)."""
    w, s, e, nn = extent
    cells = min(max(n / 10, 20_000), 8_800_000)
    deg = float(np.sqrt((e - w) * (nn - s) / cells))
    nx, ny = int(np.ceil((e - w) / deg)), int(np.ceil((nn - s) / deg))
    x = w + (np.arange(nx) + 0.5) * deg
    y = nn - (np.arange(ny) + 0.5) * deg
    X, Y = np.meshgrid(x, y)
    h = 30.0 + 1500.0 * np.clip((111.5 - X) / 3.0, 0, 1) + 40.0 * np.sin(X * 7.0) * np.cos(Y * 5.0)
    write_dem(path, h.astype(np.float32), w, nn, deg, "EPSG:4490")
