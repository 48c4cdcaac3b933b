"""A plausible synthetic Wuhan district (EPSG:4547) — or a province of building footprints — for the demo.

District mode (default, ``buildings`` ≲ 50,000): within :data:`sample_models.site.DISTRICT_BOUNDS`, a
connected road grid with a bridge over the river (along ``RIVER_LATITUDE``), ~2,000 buildings of mixed use,
height and age (some C/D safety classes, some above 80 m, two above 100 m), water, drainage and gas pipes
along the roads with manholes and hydrants, street lamps, parks of several sizes, a greenway, schools,
kindergartens, clinics, community service points, a fire station, shelters, waterlogging points, parcels
with planning limits (one kept free around ``OFFICE_SITE`` for the IFC office), height-control zones,
three districts with population, the river as a water body and a 10 m DEM with the river valley and
low-lying areas. Written as one GeoPackage (a layer per theme), a GBK Shapefile of the buildings with
Chinese field names, and a GeoTIFF DEM.

Province mode (``buildings`` > 50,000 without an extent, e.g. 1,000,000): :mod:`sample_models.province`.
Loading what was written: :func:`sample_models.load.load_district`.

``python -m sample_models.district --out DIR [--buildings N] [--seed S]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from cim import crs as cimcrs
from sample_models import district_geometry as dg
from sample_models.district_writer import write_dem, write_layer
from sample_models.province import HUBEI_BOUNDS, PROVINCE_FROM, generate_province
from sample_models.sample_files import BLOCK_P, BLOCK_USES, USES_ZH, DistrictFiles
from sample_models.site import (
    BRIDGE_SITE,
    DISTRICT_BOUNDS,
    DISTRICT_CRS,
    OFFICE_CLEARANCE_M,
    OFFICE_GROUND_HEIGHT,
    OFFICE_SITE,
    RIVER_LATITUDE,
)

BUILDING_FIELDS = ("编号", "名称", "层数", "高度", "用途", "建成年代", "结构", "安全等级", "地址", "区划代码")
"""Chinese field names of the building layers (each ≤ 10 bytes in GBK, as DBF requires)."""
DISTRICTS = (
    ("420103", "江汉区", 152_000),
    ("420102", "江岸区", 128_000),
    ("420106", "武昌区", 176_000),
)


def generate_district(
    out_dir: Path, *, buildings: int = 2000, seed: int = 7, extent: tuple[float, float, float, float] | None = None
) -> DistrictFiles:
    """Generate the sample district (or, above 50,000 buildings without ``extent``, Hubei's footprints).

    ``extent``: (west, south, east, north) CGCS2000 degrees; default the district, or Hubei in province mode.
    Returns the written files; existing outputs in ``out_dir`` are replaced.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if extent is None and buildings > PROVINCE_FROM:
        return generate_province(out, buildings, rng, HUBEI_BOUNDS)
    if extent is not None and (extent[2] - extent[0] > 1.0 or extent[3] - extent[1] > 1.0):
        return generate_province(out, buildings, rng, extent)
    return _district(out, buildings, rng, extent or DISTRICT_BOUNDS)


# --------------------------------------------------------------------------------------------- district


@dataclass
class _Frame:
    """The district's metric frame: bounds in EPSG:4547 metres and the river/office positions there."""

    x0: float
    y0: float
    x1: float
    y1: float
    river_y: float
    bridge_x: float
    office: tuple[float, float]

    @classmethod
    def of(cls, extent: tuple[float, float, float, float]) -> _Frame:
        w, s, e, n = extent
        xs, ys = cimcrs.transform_xy([w, e, w, e], [s, s, n, n], 4490, DISTRICT_CRS)
        (bx,), (ry,) = cimcrs.transform_xy([BRIDGE_SITE[0]], [RIVER_LATITUDE], 4490, DISTRICT_CRS)
        (ox,), (oy,) = cimcrs.transform_xy([OFFICE_SITE[0]], [OFFICE_SITE[1]], 4490, DISTRICT_CRS)
        return cls(float(xs.max()), float(ys.max()), float(xs.min()), float(ys.min()), ry, bx, (ox, oy)).inner(xs, ys)

    def inner(self, xs: np.ndarray, ys: np.ndarray) -> _Frame:
        # The inscribed rectangle of the projected (slightly rotated) lon/lat box.
        x0, x1 = max(xs[0], xs[2]), min(xs[1], xs[3])
        y0, y1 = max(ys[0], ys[1]), min(ys[2], ys[3])
        return _Frame(float(x0), float(y0), float(x1), float(y1), self.river_y, self.bridge_x, self.office)

    def river_centre(self, x: np.ndarray) -> np.ndarray:
        """Northing of the river's centre line at eastings ``x`` (a gentle meander)."""
        return self.river_y + 25.0 * np.sin((np.asarray(x) - self.x0) / 600.0)


def _district(
    out: Path, n_buildings: int, rng: np.random.Generator, extent: tuple[float, float, float, float]
) -> DistrictFiles:
    fr = _Frame.of(extent)
    files = DistrictFiles(out_dir=out, crs=DISTRICT_CRS)
    gpkg = out / "district.gpkg"
    gpkg.unlink(missing_ok=True)
    files.gpkg = gpkg
    layers: dict[str, tuple[np.ndarray, dict[str, Any], str]] = {}

    cols, rows = _grid_lines(fr)
    roads, road_attrs, bridge_geom = _roads(fr, cols, rows)
    layers["road"] = (roads, road_attrs, "LineString")
    layers["bridge"] = (np.array([bridge_geom]), {"名称": ["江汉一桥"], "宽度": [30.0]}, "Polygon")
    river = _river(fr)
    layers["water_body"] = (np.array([river]), {"名称": ["示范河"], "类型": ["河流"]}, "Polygon")
    dem, dem_frame = _dem(fr)
    files.dem = out / "district_dem.tif"
    write_dem(files.dem, dem, *dem_frame, DISTRICT_CRS)

    blocks, block_use = _blocks(fr, cols, rows, rng)
    office_parcel = shapely.box(
        fr.office[0] - OFFICE_CLEARANCE_M + 10,
        fr.office[1] - OFFICE_CLEARANCE_M + 10,
        fr.office[0] + OFFICE_CLEARANCE_M - 10,
        fr.office[1] + OFFICE_CLEARANCE_M - 10,
    )
    parks, park_names = _parks(blocks, block_use, rng)
    layers["park"] = (parks, {"名称": park_names}, "Polygon")
    greenway = shapely.LineString(
        np.column_stack([np.linspace(fr.x0, fr.x1, 60), fr.river_centre(np.linspace(fr.x0, fr.x1, 60)) + 65.0])
    )
    layers["greenway"] = (np.array([greenway]), {"名称": ["滨江绿道"], "宽度": [6.0]}, "LineString")

    keep_out = shapely.union_all(
        [*parks, shapely.buffer(river, 40.0), office_parcel.buffer(10.0), *shapely.buffer(roads, 12.0)]
    )
    bgeoms, battrs = _buildings(fr, blocks, block_use, keep_out, n_buildings, rng)
    layers["buildings"] = (bgeoms, battrs, "Polygon")
    files.buildings = len(bgeoms)

    layers.update(_pipes(roads, road_attrs, rng))
    layers.update(_points(fr, blocks, block_use, keep_out, dem, dem_frame, rng))
    layers["street_lamp"] = _lamps(roads)
    parcels, parcel_attrs = _parcels(blocks, block_use, office_parcel, parks, rng)
    layers["parcels"] = (parcels, parcel_attrs, "MultiPolygon")
    layers["planning"] = _planning(fr)
    layers["districts"] = _districts(fr)

    for name, (geoms, attrs, gtype) in layers.items():
        write_layer(gpkg, name, geoms, attrs, crs=DISTRICT_CRS, geometry_type=gtype)
        files.counts[name] = len(geoms)
    files.shapefile = out / "buildings_gbk.shp"
    for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        files.shapefile.with_suffix(suffix).unlink(missing_ok=True)
    write_layer(
        files.shapefile,
        None,
        bgeoms,
        battrs,
        crs=DISTRICT_CRS,
        geometry_type="Polygon",
        driver="ESRI Shapefile",
        encoding="GBK",
    )
    files.layers = [
        ("districts", "districts", None),
        ("parcels", "parcels", None),
        ("planning", "planning", None),
        ("buildings", "buildings", None),
    ]
    files.layers += [(k, "facilities", k) for k in layers if k not in {"districts", "parcels", "planning", "buildings"}]
    return files


def _grid_lines(fr: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """Eastings of north–south roads (one through the bridge) and northings of east–west roads (two bank roads)."""
    cols = np.arange(fr.x0 + 150.0, fr.x1 - 100.0, 420.0)
    cols[np.argmin(np.abs(cols - fr.bridge_x))] = fr.bridge_x
    rows = np.arange(fr.y0 + 150.0, fr.y1 - 100.0, 380.0)
    rows = rows[np.abs(rows - fr.river_y) > 260.0]
    rows = np.sort(np.concatenate([rows, [fr.river_y - 110.0, fr.river_y + 110.0]]))
    return cols, rows


def _roads(fr: _Frame, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, dict[str, Any], shapely.Polygon]:
    segs: list[tuple[float, float, float, float]] = []
    klass: list[str] = []
    names: list[str] = []
    ew_names = ["建设大道", "解放大道", "中山大道", "沿江大道", "滨江路", "京汉大道", "武珞路", "中北路", "和平大道"]
    ns_names = [
        "新华路",
        "青年路",
        "江汉路",
        "前进路",
        "黄浦路",
        "友谊路",
        "洞庭街",
        "三阳路",
        "大智路",
        "一元路",
        "车站路",
        "汉口路",
        "胜利街",
    ]
    bank = {int(np.argmin(np.abs(rows - (fr.river_y - 110.0)))), int(np.argmin(np.abs(rows - (fr.river_y + 110.0))))}
    for j, y in enumerate(rows):
        for i in range(len(cols) - 1):
            segs.append((cols[i], y, cols[i + 1], y))
            klass.append("主干路" if j % 3 == 0 or j in bank else "次干路")
            names.append(ew_names[j % len(ew_names)])
    south, north = min(bank), max(bank)
    for i, x in enumerate(cols):
        is_bridge = bool(np.isclose(x, fr.bridge_x))
        for j in range(len(rows) - 1):
            if j == south and north == j + 1 and not is_bridge:
                continue  # no crossing of the river except on the bridge
            segs.append((x, rows[j], x, rows[j + 1]))
            klass.append("主干路" if i % 3 == 0 or is_bridge else ("次干路" if i % 2 == 0 else "支路"))
            names.append(ns_names[i % len(ns_names)])
    xy = np.array(segs).reshape(-1, 2, 2)
    lines = np.asarray(shapely.linestrings(xy))
    width = np.array([{"主干路": 40.0, "次干路": 24.0, "支路": 16.0}[k] for k in klass])
    bridge = shapely.box(fr.bridge_x - 15.0, fr.river_y - 90.0, fr.bridge_x + 15.0, fr.river_y + 90.0)
    attrs = {"名称": names, "道路等级": klass, "路宽": width}
    return lines, attrs, bridge


def _river(fr: _Frame) -> shapely.Polygon:
    x = np.linspace(fr.x0 - 50.0, fr.x1 + 50.0, 200)
    c = fr.river_centre(x)
    ring = np.concatenate([np.column_stack([x, c - 40.0]), np.column_stack([x[::-1], c[::-1] + 40.0])])
    return shapely.Polygon(ring)


LOW_SPOTS = ((0.22, 0.78), (0.63, 0.85), (0.41, 0.25), (0.82, 0.18), (0.12, 0.35))
"""Low-lying areas (fractions of the district's width/height): waterlogging happens there."""


def _dem(fr: _Frame) -> tuple[np.ndarray, tuple[float, float, float]]:
    cell = 10.0
    west, north = fr.x0 - 300.0, fr.y1 + 300.0
    nx, ny = int((fr.x1 - fr.x0 + 600.0) / cell), int((fr.y1 - fr.y0 + 600.0) / cell)
    x = west + (np.arange(nx) + 0.5) * cell
    y = north - (np.arange(ny) + 0.5) * cell
    X, Y = np.meshgrid(x, y)
    h = _height_surface(fr, X, Y)
    # Tie the office site's ground to OFFICE_GROUND_HEIGHT exactly.
    h += OFFICE_GROUND_HEIGHT - float(_height_surface(fr, np.array([fr.office[0]]), np.array([fr.office[1]]))[0])
    return h.astype(np.float32), (west, north, cell)


def _height_surface(fr: _Frame, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    d = np.abs(Y - fr.river_centre(X))
    h = 24.0 + 0.0012 * (Y - fr.river_y) + 0.0008 * (X - fr.x0)  # rising gently away from the river
    h -= 10.0 * np.exp(-((d / 180.0) ** 2))  # river valley
    h -= np.where(d < 40.0, 3.0, 0.0)  # river bed
    for fx, fy in LOW_SPOTS:
        cx, cy = fr.x0 + fx * (fr.x1 - fr.x0), fr.y0 + fy * (fr.y1 - fr.y0)
        h -= 3.5 * np.exp(-(((X - cx) ** 2 + (Y - cy) ** 2) / (2 * 120.0**2)))
    return np.asarray(h)


def _blocks(fr: _Frame, cols: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs = np.concatenate([[fr.x0], cols, [fr.x1]])
    ys = np.concatenate([[fr.y0], rows, [fr.y1]])
    bx0, by0 = np.meshgrid(xs[:-1], ys[:-1])
    bx1, by1 = np.meshgrid(xs[1:], ys[1:])
    inset = 22.0
    boxes = np.asarray(shapely.box(bx0.ravel() + inset, by0.ravel() + inset, bx1.ravel() - inset, by1.ravel() - inset))
    cy = (by0.ravel() + by1.ravel()) / 2
    river_at = fr.river_centre((bx0.ravel() + bx1.ravel()) / 2)
    ok = (np.abs(cy - river_at) > 130.0) & (shapely.area(boxes) > 20_000.0)
    boxes = boxes[ok]
    use = rng.choice(BLOCK_USES, size=len(boxes), p=BLOCK_P)
    # Offices and commerce cluster near the centre, industry at the edge.
    centre = np.array([(fr.x0 + fr.x1) / 2, (fr.y0 + fr.y1) / 2])
    dist = np.hypot(*(shapely.get_coordinates(shapely.centroid(boxes)) - centre).T)
    use[(dist < 700.0) & (use == "industrial")] = "office"
    use[(dist > 1800.0) & (use == "office")] = "residential"
    return boxes, use


def _parks(blocks: np.ndarray, use: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """One whole-block park (> 5000 m²), three medium (2000–5000 m²) and four pocket parks (< 2000 m²)."""
    order = rng.permutation(np.flatnonzero(use == "residential"))
    big = blocks[order[0]]
    use[order[0]] = "park"
    parks: list[shapely.Polygon] = [shapely.buffer(big, -15.0)]
    names = ["中山公园"]
    sizes = [(60.0, 60.0), (55.0, 50.0), (70.0, 45.0), (35.0, 40.0), (30.0, 30.0), (40.0, 25.0), (28.0, 35.0)]
    for k, (w, d) in enumerate(sizes):
        minx, miny, _, _ = blocks[order[1 + k]].bounds
        parks.append(shapely.box(minx, miny, minx + w, miny + d))
        names.append(f"{'街心' if w * d < 2000 else '社区'}公园{k + 1}号")
    return np.array(parks, dtype=object), names


def _buildings(
    fr: _Frame, blocks: np.ndarray, block_use: np.ndarray, keep_out: Any, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    usable = block_use != "park"
    area = float(shapely.area(blocks[usable]).sum())
    lot = float(np.clip(np.sqrt(area / max(n * 1.6, 1)), 18.0, 70.0))
    cx: list[np.ndarray] = []
    cy: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for i in np.flatnonzero(usable):
        x0, y0, x1, y1 = blocks[i].bounds
        gx, gy = np.meshgrid(
            np.arange(x0 + lot / 2, x1 - lot / 2 + 1e-6, lot), np.arange(y0 + lot / 2, y1 - lot / 2 + 1e-6, lot)
        )
        cx.append(gx.ravel())
        cy.append(gy.ravel())
        owner.append(np.full(gx.size, i))
    X, Y, own = np.concatenate(cx), np.concatenate(cy), np.concatenate(owner)
    free = ~shapely.intersects_xy(keep_out, X, Y)
    dx, dy = X - fr.office[0], Y - fr.office[1]
    free &= (np.abs(dx) > OFFICE_CLEARANCE_M + lot) | (np.abs(dy) > OFFICE_CLEARANCE_M + lot)
    idx = np.flatnonzero(free)
    pick = np.sort(rng.choice(idx, size=min(n, idx.size), replace=False))
    X, Y, own = X[pick], Y[pick], own[pick]
    use = block_use[own]
    k = len(pick)
    # Mixed blocks: some pure residential or commercial buildings; schools and clinics have annexes.
    storeys = np.empty(k, dtype=np.int64)
    r = rng.random(k)
    res = use == "residential"
    storeys[res] = np.where(r[res] < 0.55, rng.integers(5, 8, res.sum()), rng.integers(11, 32, res.sum()))
    for u, lo, hi in (
        ("commercial", 2, 9),
        ("office", 8, 24),
        ("mixed", 6, 26),
        ("industrial", 1, 4),
        ("education", 3, 6),
        ("medical", 4, 16),
        ("public", 2, 6),
    ):
        m = use == u
        storeys[m] = rng.integers(lo, hi, m.sum())
    year = np.where(storeys > 15, rng.integers(1998, 2024, k), rng.integers(1958, 2024, k))
    storey_h = np.where(np.isin(use, ["commercial", "office"]), 3.8, 3.0)
    height = np.round(storeys * storey_h + rng.uniform(0.5, 2.5, k), 1)
    # Landmarks: ten towers above 80 m and two above 100 m, in office/commercial blocks near the centre.
    tall_pool = np.flatnonzero(np.isin(use, ["office", "commercial", "mixed"]))
    towers = rng.choice(tall_pool, size=min(12, tall_pool.size), replace=False)
    storeys[towers] = rng.integers(22, 27, towers.size)
    height[towers] = np.round(storeys[towers] * 3.6 + rng.uniform(0.5, 2.0, towers.size), 1)
    height[towers[:2]] = [128.5, 106.0]
    storeys[towers[:2]] = [33, 28]
    year[towers] = rng.integers(2005, 2024, towers.size)
    width = np.clip(lot * rng.uniform(0.45, 0.8, k), 10.0, 60.0)
    depth = np.clip(lot * rng.uniform(0.35, 0.7, k), 9.0, 45.0)
    big = np.isin(use, ["industrial", "commercial", "education"])
    width[big] *= 1.15
    theta = rng.normal(0.0, 0.03, k)
    geoms = dg.rectangles(X, Y, width, depth, theta)
    p = rng.random(k)
    old, mid = year < 1980, (year >= 1980) & (year < 1995)
    safety = np.where(p < 0.5, "A", "B").astype(object)
    safety[old & (p < 0.28)] = "C"
    safety[old & (p < 0.10)] = "D"
    safety[mid & (p < 0.08)] = "C"
    safety[mid & (p < 0.015)] = "D"
    structure = np.where(storeys >= 10, "剪力墙", np.where(year < 1990, "砖混", "框架")).astype(object)
    structure[use == "industrial"] = "钢结构"
    code = _district_codes(fr, X, Y)
    streets = np.array(["新华路", "青年路", "江汉路", "解放大道", "建设大道", "中山大道", "沿江大道", "武珞路"])
    street = streets[rng.integers(0, len(streets), k)]
    num = rng.integers(1, 400, k)
    ids = np.char.add("B", np.char.zfill(np.arange(1, k + 1).astype(str), 5))
    estates = np.array(["幸福里", "江汉花园", "汉兴苑", "民意小区", "新村", "锦绣华庭", "滨江苑", "同兴里"])
    names = np.char.add(
        np.char.add(estates[rng.integers(0, len(estates), k)], np.char.mod("%d", (np.arange(k) % 40) + 1)), "栋"
    )
    names = names.astype(object)
    names[use == "office"] = np.char.add("江汉国际", np.char.mod("%d号楼", np.arange((use == "office").sum()) + 1))
    names[use == "commercial"] = np.char.add("商业楼", np.char.mod("%d", np.arange((use == "commercial").sum()) + 1))
    height_field = height.copy()
    height_field[rng.random(k) < 0.15] = np.nan  # some surveys lack heights: floors × storey height applies
    height_field[towers] = height[towers]
    attrs = {
        "编号": ids.astype(object),
        "名称": names,
        "层数": storeys,
        "高度": height_field,
        "用途": np.array([USES_ZH[u] for u in use], dtype=object),
        "建成年代": year,
        "结构": structure,
        "安全等级": safety,
        "地址": np.char.add(np.char.add("武汉市", street.astype(str)), np.char.mod("%d号", num)).astype(object),
        "区划代码": code,
    }
    return geoms, attrs


def _district_codes(fr: _Frame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    north = y > fr.river_centre(x)
    west = x < (fr.x0 + fr.x1) / 2
    return np.where(~north, DISTRICTS[2][0], np.where(west, DISTRICTS[0][0], DISTRICTS[1][0])).astype(object)


def _districts(fr: _Frame) -> tuple[np.ndarray, dict[str, Any], str]:
    x = np.linspace(fr.x0, fr.x1, 100)
    c = fr.river_centre(x)
    mid = (fr.x0 + fr.x1) / 2
    south = shapely.Polygon(np.concatenate([[[fr.x0, fr.y0], [fr.x1, fr.y0]], np.column_stack([x, c])[::-1]]))
    north = shapely.Polygon(np.concatenate([np.column_stack([x, c]), [[fr.x1, fr.y1], [fr.x0, fr.y1]]]))
    west = shapely.intersection(north, shapely.box(fr.x0, fr.y0, mid, fr.y1))
    east = shapely.intersection(north, shapely.box(mid, fr.y0, fr.x1, fr.y1))
    geoms = np.array([shapely.MultiPolygon([g]) for g in (west, east, south)], dtype=object)
    attrs = {
        "行政区划代码": [d[0] for d in DISTRICTS],
        "名称": [d[1] for d in DISTRICTS],
        "常住人口": [d[2] for d in DISTRICTS],
        "级别": ["district"] * 3,
        "上级代码": ["420100"] * 3,
    }
    return geoms, attrs, "MultiPolygon"


def _pipes(
    roads: np.ndarray, road_attrs: dict[str, Any], rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, dict[str, Any], str]]:
    n = len(roads)
    main = np.asarray(road_attrs["道路等级"]) == "主干路"
    water = dg.offset_lines(roads, 6.0)
    drain = dg.offset_lines(roads, -7.0)
    gas_mask = main | (rng.random(n) < 0.5)
    gas = dg.offset_lines(roads[gas_mask], 9.0)
    depth_d = rng.uniform(2.0, 3.5, n)
    out: dict[str, tuple[np.ndarray, dict[str, Any], str]] = {
        "pipe_water": (
            water,
            {
                "管径": np.where(main, 600.0, rng.choice([200.0, 300.0, 400.0], n)),
                "埋深": np.round(rng.uniform(1.2, 1.8, n), 2),
                "材质": ["球墨铸铁"] * n,
                "压力等级": ["0.4MPa"] * n,
            },
            "LineString",
        ),
        "pipe_drainage": (
            drain,
            {
                "管径": np.where(main, 1200.0, rng.choice([400.0, 600.0, 800.0], n)),
                "埋深": np.round(depth_d, 2),
                "材质": ["钢筋混凝土"] * n,
            },
            "LineString",
        ),
        "pipe_gas": (
            gas,
            {
                "管径": rng.choice([110.0, 160.0, 250.0], int(gas_mask.sum())),
                "埋深": np.round(rng.uniform(0.9, 1.4, int(gas_mask.sum())), 2),
                "材质": rng.choice(["PE", "钢"], int(gas_mask.sum())).astype(object),
                "压力等级": rng.choice(["中压", "低压"], int(gas_mask.sum())).astype(object),
            },
            "LineString",
        ),
    }
    ends = shapely.get_coordinates(drain).reshape(-1, 2, 2)[:, 0]
    mid_pts, _ = dg.points_along(drain, 60.0)
    manholes = np.concatenate([np.asarray(shapely.points(ends)), mid_pts])
    out["manhole"] = (
        manholes,
        {"类型": ["雨污检查井"] * len(manholes), "井深": np.round(rng.uniform(2.0, 3.8, len(manholes)), 2)},
        "Point",
    )
    hydrants, _ = dg.points_along(water, 120.0, offset=2.0)
    out["hydrant"] = (hydrants, {"型号": ["SS100"] * len(hydrants)}, "Point")
    return out


def _lamps(roads: np.ndarray) -> tuple[np.ndarray, dict[str, Any], str]:
    left, _ = dg.points_along(roads, 50.0, offset=11.0)
    right, _ = dg.points_along(roads, 50.0, offset=-11.0)
    lamps = np.concatenate([left, right])
    return lamps, {"功率W": np.full(len(lamps), 150.0)}, "Point"


def _points(
    fr: _Frame,
    blocks: np.ndarray,
    use: np.ndarray,
    keep_out: Any,
    dem: np.ndarray,
    dem_frame: tuple[float, float, float],
    rng: np.random.Generator,
) -> dict[str, tuple[np.ndarray, dict[str, Any], str]]:
    def near_edge(mask: np.ndarray, count: int) -> np.ndarray:
        chosen = rng.choice(np.flatnonzero(mask), size=min(count, int(mask.sum())), replace=False)
        x0, y0, _x1, _y1 = np.array([blocks[i].bounds for i in chosen]).T
        return np.asarray(shapely.points(x0 + 15.0, y0 + 15.0 + rng.uniform(0, 30, len(chosen))))

    res = use == "residential"
    out: dict[str, tuple[np.ndarray, dict[str, Any], str]] = {}
    schools = near_edge((use == "education") | res, 6)
    out["school"] = (
        schools,
        {"名称": [f"江汉第{i + 1}小学" for i in range(len(schools))], "学位数": rng.integers(8, 24, len(schools)) * 45},
        "Point",
    )
    kg = near_edge(res, 8)
    out["kindergarten"] = (
        kg,
        {"名称": [f"阳光幼儿园{i + 1}园" for i in range(len(kg))], "学位数": rng.integers(6, 12, len(kg)) * 30},
        "Point",
    )
    clinics = near_edge(res | (use == "medical"), 6)
    out["clinic"] = (clinics, {"名称": [f"社区卫生服务站{i + 1}" for i in range(len(clinics))]}, "Point")
    cs = near_edge(res | (use == "mixed"), 10)
    out["community_service"] = (cs, {"名称": [f"社区党群服务中心{i + 1}" for i in range(len(cs))]}, "Point")
    fire = shapely.points([fr.x0 + 0.55 * (fr.x1 - fr.x0)], [fr.y0 + 0.7 * (fr.y1 - fr.y0)])
    out["fire_station"] = (np.asarray(fire), {"名称": ["江汉消防救援站"], "车辆数": [8]}, "Point")
    shelters = []
    for fx, fy, w, d in ((0.3, 0.6, 120, 90), (0.7, 0.55, 100, 100), (0.5, 0.2, 140, 80), (0.15, 0.9, 90, 70)):
        cx, cy = fr.x0 + fx * (fr.x1 - fr.x0), fr.y0 + fy * (fr.y1 - fr.y0)
        shelters.append(shapely.box(cx - w / 2, cy - d / 2, cx + w / 2, cy + d / 2))
    cap = [int(s.area / 2.0) for s in shelters]  # 2 m² per person (GB 51143 short-term shelters)
    out["shelter"] = (
        np.array(shelters, dtype=object),
        {"名称": [f"应急避难场所{i + 1}" for i in range(4)], "容纳人数": cap, "面积": [s.area for s in shelters]},
        "Polygon",
    )
    spots = np.array([(fr.x0 + fx * (fr.x1 - fr.x0), fr.y0 + fy * (fr.y1 - fr.y0)) for fx, fy in LOW_SPOTS])
    extra = spots[:3] + rng.normal(0, 60, (3, 2))
    allspots = np.concatenate([spots, extra])
    out["waterlogging_point"] = (
        np.asarray(shapely.points(allspots)),
        {
            "名称": [f"积水点{i + 1}" for i in range(len(allspots))],
            "最大积水深度m": np.round(rng.uniform(0.2, 0.6, len(allspots)), 2),
        },
        "Point",
    )
    _ = (keep_out, dem, dem_frame)
    return out


LIMITS = {
    "residential": ("R2", 80.0, 2.5, 0.30, 0.35, 8.0),
    "commercial": ("B1", 100.0, 4.0, 0.45, 0.20, 10.0),
    "office": ("B2", 150.0, 5.0, 0.40, 0.25, 10.0),
    "mixed": ("Rb", 100.0, 3.5, 0.40, 0.30, 10.0),
    "industrial": ("M1", 24.0, 1.2, 0.50, 0.15, 5.0),
    "education": ("A33", 24.0, 1.0, 0.30, 0.35, 8.0),
    "medical": ("A5", 50.0, 2.0, 0.35, 0.35, 8.0),
    "public": ("A1", 40.0, 2.0, 0.35, 0.30, 8.0),
    "park": ("G1", 12.0, 0.1, 0.05, 0.70, 5.0),
}


def _parcels(
    blocks: np.ndarray, use: np.ndarray, office: shapely.Polygon, parks: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    geoms = [shapely.difference(b, office) if b.intersects(office) else b for b in blocks]
    rows = [LIMITS[u] for u in use]
    codes = [f"JH-{i + 1:03d}" for i in range(len(geoms))]
    geoms.append(office)
    rows.append(("B2", 60.0, 3.0, 0.40, 0.30, 10.0))
    codes.append("JH-OFFICE-01")
    names = [None] * (len(geoms) - 1) + ["江汉区办公楼建设用地"]
    multi = np.array([g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in geoms], dtype=object)
    attrs = {
        "地块编码": codes,
        "名称": names,
        "用地性质": [r[0] for r in rows],
        "建筑限高": [r[1] for r in rows],
        "容积率": [r[2] for r in rows],
        "建筑密度": [r[3] for r in rows],
        "绿地率": [r[4] for r in rows],
        "建筑退线": [r[5] for r in rows],
    }
    _ = (parks, rng)
    return multi, attrs


def _planning(fr: _Frame) -> tuple[np.ndarray, dict[str, Any], str]:
    x = np.linspace(fr.x0, fr.x1, 100)
    c = fr.river_centre(x)
    riverside = shapely.Polygon(
        np.concatenate([np.column_stack([x, c - 300.0]), np.column_stack([x, c + 300.0])[::-1]])
    )
    cx, cy = (fr.x0 + fr.x1) / 2, (fr.y0 + fr.y1) / 2
    core = shapely.box(cx - 700.0, cy + 200.0, cx + 700.0, cy + 1200.0).difference(riverside)
    geoms = np.array(
        [shapely.MultiPolygon([riverside]), shapely.MultiPolygon([core]) if core.geom_type == "Polygon" else core],
        dtype=object,
    )
    attrs = {
        "单元编码": ["HK-01", "HK-02"],
        "名称": ["滨江风貌控制区", "中央商务区"],
        "类型": ["height", "height"],
        "建筑限高": [60.0, 200.0],
        "容积率": [2.0, 6.0],
    }
    return geoms, attrs, "MultiPolygon"


# --------------------------------------------------------------------------------------------- province


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m sample_models.district --out DIR [--buildings N] [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--buildings", type=int, default=2000, help="number of buildings (> 50000: Hubei)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    files = generate_district(args.out, buildings=args.buildings, seed=args.seed)
    written = [p for p in (files.gpkg, files.shapefile, files.dem) if p is not None] + files.zone_files
    for p in written:
        print(p)
    print(f"{files.buildings} buildings in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
