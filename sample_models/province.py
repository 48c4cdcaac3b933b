"""A province of building footprints for the throughput benchmarks: Hubei, one GeoPackage per Gauss–Krüger zone.

Footprints spread over Hubei (108.3–116.1°E, 29.0–33.3°N), clustered around its cities, written one
GeoPackage per CGCS2000 3-degree Gauss–Krüger zone (EPSG:4545–4548) with Chinese attribute names. Fully
vectorised: a million footprints take seconds. :func:`sample_models.district.generate_district` calls it
above :data:`PROVINCE_FROM` buildings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cim import crs as cimcrs
from sample_models import district_geometry as dg
from sample_models.district_writer import write_layer
from sample_models.sample_files import BLOCK_P, USES_ZH, DistrictFiles

HUBEI_BOUNDS = (108.3, 29.0, 116.1, 33.3)
"""Hubei's extent (west, south, east, north), CGCS2000 degrees."""
PROVINCE_FROM = 50_000
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
    out: Path, n: int, rng: np.random.Generator, extent: tuple[float, float, float, float]
) -> DistrictFiles:
    """``n`` footprints within ``extent`` (west, south, east, north; CGCS2000 degrees) written into ``out``."""
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
    for z in np.unique(zone):
        m = zone == z
        epsg = cimcrs.GK_CM_EPSG_FIRST + int(z) - 25
        x, y = cimcrs.transform_xy(lon[m], lat[m], 4490, epsg)
        geoms = dg.rectangles(x, y, width[m], depth[m], theta[m])
        path = out / f"hubei_buildings_{epsg}.gpkg"
        path.unlink(missing_ok=True)
        attrs = {"层数": storeys[m], "高度": height[m], "用途": uses[m], "建成年代": year[m], "安全等级": safety[m]}
        write_layer(path, "buildings", geoms, attrs, crs=f"EPSG:{epsg}", geometry_type="Polygon")
        files.zone_files.append(path)
        files.counts[f"EPSG:{epsg}"] = int(m.sum())
    files.layers = [("buildings", "buildings", None)]
    return files
