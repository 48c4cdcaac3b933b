"""Implicit tiling (3D Tiles 1.1 ``implicitTiling``, QUADTREE) of the tiles of an explicit build.

One implicit tileset per tile class (``buildings/tileset.json``, ``elements/…``, ``roads/…``…), each
with a single ``content`` template, referenced as external tilesets by the children of a content-less root
(``tileset.json``). One implicit tree with one ``contents`` entry per class is valid 3D Tiles 1.1 too, but the
official 3d-tiles-validator (0.6.1) cannot traverse it ("the root of the implicit tileset did not define a
template URI"), and a single ``content`` would put every class into one glb, with one property table that
CesiumJS picks and styles.

Within a class tileset, the implicit root is one cell ``z0/x0/y0`` of the fixed global EPSG:4490 grid
(:mod:`tiles.partition`) that contains every content region of the class, so implicit level ``L`` is grid
level ``z0 + L`` and implicit ``x``/``y`` are the grid offsets inside the root cell (x west→east, y
south→north, as the region subdivision). Contents are ``<class>/content/{level}/{x}/{y}.glb``; binary
``.subtree`` files (``<class>/subtrees/{level}/{x}/{y}.subtree``) carry tile, content and child-subtree
availability (bitstreams in Morton order, or constants) and, as tile metadata with the
``TILE_BOUNDING_REGION`` semantic, each tile's tight region (the union of its content and descendants', as
in the explicit build: a building is tiled by its centroid, so its footprint may cross a cell edge).
Implicit tiles cannot carry a ``transform``: each glb gets a root node whose matrix is the content frame
(ENU→ECEF, expressed in glTF's y-up axes), so positions stay float32 relative to the tile centre.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cim.errors import TilesError
from tiles import classes, partition
from tiles.glb import pack_glb, read_glb
from tiles.options import SUBTREE_LEVELS
from tiles.render import TileResult

CONTENT_TEMPLATE = "content/{level}/{x}/{y}.glb"
SUBTREE_TEMPLATE = "subtrees/{level}/{x}/{y}.subtree"
TILE_CLASS = "tile"
TILE_SCHEMA_CLASS: dict[str, Any] = {
    "name": "Implicit tile",
    "properties": {
        "bounding_region": {
            "type": "SCALAR",
            "componentType": "FLOAT64",
            "array": True,
            "count": 6,
            "semantic": "TILE_BOUNDING_REGION",
        }
    },
}


def tileset_schema() -> dict[str, Any]:
    """The schema of implicit tilesets: the feature classes and the tile class of the subtrees' tile metadata
    (in the root tileset too: CesiumJS reads the schema of implicit tiles from the root tileset only)."""
    schema = classes.schema()
    schema["classes"][TILE_CLASS] = TILE_SCHEMA_CLASS
    return schema


# glTF y-up → 3D Tiles z-up: (x, y, z) ↦ (x, −z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])

Region = list[float]


def content_uri(level: int, x: int, y: int) -> str:
    """The content path of implicit tile ``level/x/y``, relative to its class tileset."""
    return f"content/{level}/{x}/{y}.glb"


def subtree_uri(level: int, x: int, y: int) -> str:
    """The subtree path of the subtree rooted at implicit tile ``level/x/y``, relative to its class tileset."""
    return f"subtrees/{level}/{x}/{y}.subtree"


def morton(x: int, y: int) -> int:
    """Morton (Z-order) index of a quadtree tile inside its level: bits of x and y interleaved, x lowest."""
    out = 0
    for bit in range(32):
        out |= ((x >> bit) & 1) << (2 * bit) | ((y >> bit) & 1) << (2 * bit + 1)
    return out


def with_frame(glb: bytes, matrix: NDArray[np.float64]) -> bytes:
    """Re-pack a .glb under one new root node carrying ``matrix`` (ENU→ECEF, z-up, metres) in y-up axes."""
    doc, blob = read_glb(glb)
    node_matrix = Y_UP_TO_Z_UP.T @ matrix @ Y_UP_TO_Z_UP
    scene = doc.get("scene", 0)
    doc["nodes"].append({"matrix": node_matrix.T.ravel().tolist(), "children": doc["scenes"][scene]["nodes"]})
    doc["scenes"][scene]["nodes"] = [len(doc["nodes"]) - 1]
    return pack_glb(doc, blob)


def _union(regions: list[Region]) -> Region:
    r = np.array(regions)
    return [
        float(v) for v in (r[:, 0].min(), r[:, 1].min(), r[:, 2].max(), r[:, 3].max(), r[:, 4].min(), r[:, 5].max())
    ]


def _cell_region(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    w, s, e, n = partition.cell_bounds(z, x, y)
    return math.radians(w), math.radians(s), math.radians(e), math.radians(n)


def _regions(node: partition.Node, own: dict[str, Region], out: dict[tuple[int, int, int], Region]) -> Region | None:
    """Tight region of every tile (its content's ``own[key]`` and its descendants'), keyed by grid z/x/y;
    None when neither the tile nor a descendant has content."""
    regions = [own[node.key]] if node.key in own else []
    for child in node.children:
        r = _regions(child, own, out)
        if r is not None:
            regions.append(r)
    if not regions:
        return None
    out[(node.z, node.x, node.y)] = _union(regions)
    return out[(node.z, node.x, node.y)]


def _availability(bits: NDArray[np.bool_], views: list[bytes]) -> dict[str, Any]:
    if bits.all() or not bits.any():
        return {"constant": int(bits.all())}
    views.append(np.packbits(bits, bitorder="little").tobytes())
    return {"bitstream": len(views) - 1, "availableCount": int(bits.sum())}


def _subtree_bytes(
    root: tuple[int, int, int],
    tiles: dict[tuple[int, int, int], tuple[Region, bool]],
    levels: int,
) -> bytes:
    """One binary subtree: availability of the tiles of ``levels`` levels below ``root`` and their regions."""
    lr, rx, ry = root
    n_tiles = (4**levels - 1) // 3
    tile_bits = np.zeros(n_tiles, bool)
    content_bits = np.zeros(n_tiles, bool)
    child_bits = np.zeros(4**levels, bool)
    regions: dict[int, Region] = {}
    for d in range(levels + 1):
        offset = (4**d - 1) // 3
        for dx in range(1 << d):
            for dy in range(1 << d):
                key = (lr + d, (rx << d) + dx, (ry << d) + dy)
                if key not in tiles:
                    continue
                m = morton(dx, dy)
                if d == levels:
                    child_bits[m] = True
                    continue
                tile_bits[offset + m] = True
                regions[offset + m] = tiles[key][0]
                content_bits[offset + m] = tiles[key][1]
    views: list[bytes] = []
    doc: dict[str, Any] = {
        "tileAvailability": _availability(tile_bits, views),
        "contentAvailability": [_availability(content_bits, views)],
        "childSubtreeAvailability": _availability(child_bits, views),
    }
    ordered = np.array([regions[i] for i in sorted(regions)], dtype="<f8")
    views.append(ordered.tobytes())
    doc["propertyTables"] = [
        {"class": TILE_CLASS, "count": len(regions), "properties": {"bounding_region": {"values": len(views) - 1}}}
    ]
    doc["tileMetadata"] = 0
    blob = b""
    doc["bufferViews"] = []
    for v in views:
        doc["bufferViews"].append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(v)})
        blob += v + b"\0" * ((-len(v)) % 8)
    doc["buffers"] = [{"byteLength": len(blob)}]
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 8)
    return struct.pack("<4sIQQ", b"subt", 1, len(js), len(blob)) + js + blob


def _class_tileset(
    layer: str,
    tiles: dict[tuple[int, int, int], tuple[Region, list[str]]],
    root_region: Region,
    error: float,
    put: Any,
    subtree_levels: int,
) -> dict[str, Any]:
    """Write ``<layer>/tileset.json`` (the implicit quadtree ``tiles`` with the contents of one class) and
    its subtrees; return the tile that references it from the root tileset."""
    available_levels = max(key[0] for key in tiles) + 1
    levels = min(subtree_levels, available_levels)
    own = {key: (region, layer in layers) for key, (region, layers) in tiles.items()}
    for key in tiles:
        if key[0] % levels == 0:
            put(f"{layer}/{subtree_uri(*key)}", _subtree_bytes(key, own, levels))
    tile: dict[str, Any] = {
        "boundingVolume": {"region": root_region},
        "geometricError": error,
        "refine": "REPLACE",
        "content": {"uri": CONTENT_TEMPLATE},
        "implicitTiling": {
            "subdivisionScheme": "QUADTREE",
            "subtreeLevels": levels,
            "availableLevels": available_levels,
            "subtrees": {"uri": SUBTREE_TEMPLATE},
        },
    }
    asset = {"version": "1.1", "generator": "cim tiles"}
    tileset = {"asset": asset, "schema": tileset_schema(), "geometricError": error, "root": tile}
    put(f"{layer}/tileset.json", json.dumps(tileset, separators=(",", ":")).encode("utf-8"))
    return {
        "boundingVolume": {"region": root_region},
        "geometricError": error,
        "content": {"uri": f"{layer}/tileset.json"},
    }


def implicit_root(
    root: partition.Node,
    results: dict[str, TileResult],
    put: Any,
    geometric_error: Any,
    subtree_levels: int = SUBTREE_LEVELS,
) -> dict[str, Any]:
    """Write one implicit quadtree per feature class (``<class>/tileset.json``, its subtrees and contents)
    through ``put(rel, data)``; return the root tile of the tileset that references them as external tilesets.

    Every class tree has the same available tiles and tile regions (those of all classes together), only
    content availability differs: so where a parent's LOD blocks are refined, they are replaced exactly as in
    the explicit build, also where the children hold only BIM elements or facilities.
    ``geometric_error(z)`` gives the geometric error (metres) of grid level ``z``; implicit tiling halves the
    root's per level. Raises :class:`TilesError` when the data straddle 0° E (no single grid cell holds them).
    """
    if subtree_levels < 1:
        raise TilesError("subtree levels must be at least 1")
    grid: dict[tuple[int, int, int], Region] = {}
    whole = _regions(root, {key: res.region for key, res in results.items()}, grid)
    if root.z < 0 or whole is None:
        raise TilesError("implicit tiling needs data inside one level-0 grid cell (it must not straddle 0° E)")
    # The implicit root: the deepest ancestor cell of the partition root that contains every region.
    z0, x0, y0 = root.z, root.x, root.y
    while z0 > 0:
        w, s, e, n = _cell_region(z0, x0, y0)
        if w <= whole[0] and s <= whole[1] and e >= whole[2] and n >= whole[3]:
            break
        z0, x0, y0 = z0 - 1, x0 >> 1, y0 >> 1
    tiles: dict[tuple[int, int, int], tuple[Region, list[str]]] = {}
    for z in range(z0, root.z):  # the chain of (content-less) tiles from the implicit root to the partition root
        d = root.z - z
        tiles[(z - z0, (root.x >> d) - (x0 << (z - z0)), (root.y >> d) - (y0 << (z - z0)))] = (whole, [])
    for node in root.walk():
        region = grid.get((node.z, node.x, node.y))
        if region is None:
            continue
        level = node.z - z0
        x, y = node.x - (x0 << level), node.y - (y0 << level)
        res = results.get(node.key)
        layers = []
        if res is not None:
            for c in res.contents:
                put(f"{c.layer}/{content_uri(level, x, y)}", with_frame(c.glb, res.matrix))
                c.glb = b""
                layers.append(c.layer)
        tiles[(level, x, y)] = (region, layers)
    w, s, e, n = _cell_region(z0, x0, y0)
    region = [w, s, e, n, whole[4], whole[5]]
    error = float(geometric_error(z0))
    present = [c.layer for c in classes.registered() if any(c.layer in t[1] for t in tiles.values())]
    children = [_class_tileset(layer, tiles, region, error, put, subtree_levels) for layer in present]
    # The classes are trees side by side: the content-less root adds them (with REPLACE, CesiumJS would wait
    # for every class before it draws any).
    return {"boundingVolume": {"region": region}, "geometricError": error, "refine": "ADD", "children": children}
