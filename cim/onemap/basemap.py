"""The offline base map: 256-pixel Web Mercator (EPSG:3857) XYZ tiles drawn from the platform's own layers.

Parcels by land use (GB 50137 major classes), green spaces, water bodies, roads as bands of their width and,
close up, building footprints, burnt with :func:`rasterio.features.rasterize` and written as RGBA PNG. The
palette is a light cartographic one of its own (the 3D tiles keep their colours); the viewer draws the legend
from :func:`legend`, so no table is repeated in JavaScript.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import shapely

HALF_WORLD_M = math.pi * 6_378_137.0
"""Half the width of the Web Mercator square, metres."""
TILE_PX = 256
LAYERS = ("parcels", "green", "water", "roads", "buildings")
"""Layers in drawing order (later ones over earlier ones)."""
MIN_ZOOM = {"parcels": 11, "green": 9, "water": 6, "roads": 9, "buildings": 15}
"""Zoom from which each layer is drawn (a 1-pixel parcel or footprint tells nothing)."""
MAX_ZOOM = 20
MAX_LATITUDE = math.degrees(math.atan(math.sinh(math.pi)))
"""Latitude of the north edge of the Web Mercator square (85.0511…°), degrees."""


class Tile(NamedTuple):
    """An XYZ tile: column ``x`` and row ``y`` (from the north-west) at zoom ``z``."""

    x: int
    y: int
    z: int


class Swatch(NamedTuple):
    """One class of the base map: its layer, key (land-use code, facility kind, road class, use), names, colour."""

    layer: str
    key: str
    zh: str
    en: str
    rgba: tuple[int, int, int, int]


SWATCHES: tuple[Swatch, ...] = (
    Swatch("parcels", "R", "居住用地", "residential land", (246, 236, 205, 255)),
    Swatch("parcels", "A", "公共管理与公共服务用地", "public administration and services", (242, 208, 214, 255)),
    Swatch("parcels", "B", "商业服务业设施用地", "commercial land", (245, 204, 172, 255)),
    Swatch("parcels", "M", "工业用地", "industrial land", (222, 210, 232, 255)),
    Swatch("parcels", "W", "物流仓储用地", "logistics and warehouses", (226, 218, 238, 255)),
    Swatch("parcels", "S", "道路与交通设施用地", "roads and transport land", (232, 232, 232, 255)),
    Swatch("parcels", "U", "公用设施用地", "public utilities", (207, 226, 234, 255)),
    Swatch("parcels", "G", "绿地与广场用地", "green space and squares", (208, 234, 192, 255)),
    Swatch("parcels", "", "其他用地", "other land", (236, 232, 224, 255)),
    Swatch("green", "park", "公园", "park", (170, 214, 150, 255)),
    Swatch("green", "green_space", "绿地", "green space", (186, 222, 166, 255)),
    Swatch("water", "water_body", "水体", "water body", (150, 196, 236, 255)),
    Swatch("roads", "trunk", "快速路", "expressway", (245, 196, 110, 255)),
    Swatch("roads", "primary", "主干路", "arterial road", (250, 214, 140, 255)),
    Swatch("roads", "secondary", "次干路", "secondary road", (252, 234, 176, 255)),
    Swatch("roads", "", "支路", "local road", (255, 255, 255, 255)),
    Swatch("buildings", "", "建筑", "building", (208, 198, 190, 255)),
)
"""Every class the base map draws, in palette order (index 0 is transparent)."""


def _index() -> dict[tuple[str, str], int]:
    return {(s.layer, s.key): i + 1 for i, s in enumerate(SWATCHES)}


_INDEX = _index()
_PALETTE = np.array([(0, 0, 0, 0)] + [s.rgba for s in SWATCHES], dtype=np.uint8)


def palette_index(layer: str, key: str) -> int:
    """Palette index of a class: its own, else its layer's catch-all (land use by its major class letter)."""
    if layer == "parcels":
        key = key[:1].upper()
    return _INDEX.get((layer, key)) or _INDEX.get((layer, ""), 0)


def legend() -> list[dict[str, object]]:
    """The base map's classes for the viewer's legend: layer, key, zh, en, CSS colour, minimum zoom."""
    return [
        {
            "layer": s.layer,
            "key": s.key,
            "zh": s.zh,
            "en": s.en,
            "color": "#{:02x}{:02x}{:02x}".format(*s.rgba[:3]),
            "min_zoom": MIN_ZOOM[s.layer],
        }
        for s in SWATCHES
    ]


def tile_bounds(tile: Tile) -> tuple[float, float, float, float]:
    """(west, south, east, north) of ``tile`` in Web Mercator metres.

    >>> tile_bounds(Tile(0, 0, 0))[2] == HALF_WORLD_M
    True
    """
    size = 2 * HALF_WORLD_M / (1 << tile.z)
    west = -HALF_WORLD_M + tile.x * size
    north = HALF_WORLD_M - tile.y * size
    return west, north - size, west + size, north


def tiles_over(bbox: tuple[float, float, float, float], z: int) -> list[Tile]:
    """The tiles of zoom ``z`` that intersect ``bbox`` (west, south, east, north: longitude and latitude in
    decimal degrees, latitudes clamped to Web Mercator's ±85.0511°), row by row from the north-west.

    >>> tiles_over((114.29, 30.58, 114.31, 30.59), 8)
    [Tile(x=209, y=105, z=8)]
    >>> len(tiles_over((-180.0, -90.0, 180.0, 90.0), 2))
    16
    """
    n = 1 << z

    def column(lon: float) -> int:
        return min(n - 1, max(0, math.floor((lon + 180.0) / 360.0 * n)))

    def row(lat: float) -> int:
        lat = min(MAX_LATITUDE, max(-MAX_LATITUDE, lat))
        return min(n - 1, max(0, math.floor((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)))

    west, south, east, north = bbox
    return [Tile(x, y, z) for y in range(row(north), row(south) + 1) for x in range(column(west), column(east) + 1)]


def layers_at(z: int, wanted: tuple[str, ...] = LAYERS) -> tuple[str, ...]:
    """The layers of ``wanted`` drawn at zoom ``z``, in drawing order."""
    return tuple(layer for layer in LAYERS if layer in wanted and z >= MIN_ZOOM[layer])


@dataclass(frozen=True)
class Rendered:
    """A rendered tile: PNG bytes and how many shapes were drawn."""

    png: bytes
    shapes: int


def render_tile(tile: Tile, shapes: dict[str, list[tuple[bytes, str]]]) -> Rendered:
    """Draw WKB shapes (Web Mercator metres, per layer as from :func:`cim.db.onemap.basemap_shapes`) into a PNG."""
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.features import rasterize
    from rasterio.transform import from_bounds

    count = sum(len(v) for v in shapes.values())
    if count == 0:
        return Rendered(empty_png(), 0)
    raster = np.zeros((TILE_PX, TILE_PX), dtype=np.uint8)
    transform = from_bounds(*tile_bounds(tile), TILE_PX, TILE_PX)
    for layer in LAYERS:
        rows = shapes.get(layer)
        if not rows:
            continue
        geoms = shapely.from_wkb([wkb for wkb, _ in rows])
        values = [palette_index(layer, key) for _, key in rows]
        pairs = [(g, v) for g, v in zip(geoms, values, strict=True) if g is not None and not g.is_empty]
        if pairs:
            with warnings.catch_warnings():  # an in-memory burn target has no georeference of its own
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                rasterize(pairs, out=raster, transform=transform, all_touched=layer == "roads", dtype=np.uint8)
    return Rendered(png_of(_PALETTE[raster]), count)


def png_of(rgba: np.ndarray) -> bytes:
    """PNG bytes of an (rows, columns, 4) uint8 RGBA array."""
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    rows, cols, _ = rgba.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile() as memfile:
            with memfile.open(driver="PNG", width=cols, height=rows, count=4, dtype="uint8", ZLEVEL=6) as dst:
                dst.write(np.moveaxis(rgba, 2, 0))
            return bytes(memfile.read())


@lru_cache(maxsize=1)
def empty_png() -> bytes:
    """A fully transparent tile."""
    return png_of(np.zeros((TILE_PX, TILE_PX, 4), dtype=np.uint8))
