"""Checks of a tileset directory that the official 3d-tiles-validator does NOT do.

The official CesiumGS validator runs on every variant the builder writes (``test_official_validator.py``):
it checks ``tileset.json`` and the subtrees against the 3D Tiles 1.1 schemas, content URIs, content volumes
inside tile volumes, geometric errors, subtree buffers and availability, every glb with the Khronos glTF
validator and the EXT_structural_metadata / EXT_mesh_features / EXT_instance_features rules. What is left
here reads the files back (decoding meshopt and draco, expanding instances) to check what it does not:

- child tile volumes inside their parent's (the validator compares content with tile volumes only);
- the decoded vertices inside their content's / tile's volume (the validator never decodes geometry);
- one property table per glb (the viewer's contract: CesiumJS picks and styles one table per model);
- draco-decoded attributes against their accessors (the Khronos validator does not decode draco);
- the EXT_mesh_gpu_instancing rules (the Khronos validator reports the extension as unsupported);
- implicit tilesets: every file written is available and every available file exists (the validator only
  follows availability), every tile's TILE_BOUNDING_REGION inside its parent's and holding its vertices,
  ``availableLevels`` reached;
- quantized-mesh terrain (not 3D Tiles: the validator does not read it);
- the leaves, so that tests can find every feature exactly once at its place.
"""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
from referencing import Registry, Resource

from cim import crs
from tests.conftest import ROOT, TILES_SCHEMA_DIR
from tiles.glb import read_glb

TOL_RAD = 1e-9
TOL_M = 0.01


@dataclass
class DecodedPrimitive:
    """A primitive decoded back to ECEF (metres) with its feature ids and property table."""

    ecef: np.ndarray
    normals: np.ndarray
    feature_ids: np.ndarray
    indices: np.ndarray
    table: dict[str, Any]


def _view_bytes(doc: dict[str, Any], blob: bytes, index: int) -> bytes:
    view = doc["bufferViews"][index]
    ext = view.get("extensions", {}).get("EXT_meshopt_compression")
    if ext is None:
        assert view["buffer"] == 0
        return blob[view.get("byteOffset", 0) : view.get("byteOffset", 0) + view["byteLength"]]
    import meshoptimizer

    data = blob[ext.get("byteOffset", 0) : ext.get("byteOffset", 0) + ext["byteLength"]]
    if ext["mode"] == "ATTRIBUTES":
        arr = meshoptimizer.decode_vertex_buffer(ext["count"], ext["byteStride"], data)
    else:
        arr = meshoptimizer.decode_index_buffer(ext["count"], ext["byteStride"], data)
    return np.asarray(arr).tobytes()


_NP = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8, 5120: np.int8, 5122: np.int16}
_NC = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def _accessor(doc: dict[str, Any], blob: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    data = _view_bytes(doc, blob, acc["bufferView"])
    dt = np.dtype(_NP[acc["componentType"]])
    nc = _NC[acc["type"]]
    stride = view.get("byteStride", dt.itemsize * nc)
    raw = np.frombuffer(data, dtype=np.uint8)[acc.get("byteOffset", 0) :]
    rows = np.lib.stride_tricks.as_strided(raw, shape=(acc["count"], dt.itemsize * nc), strides=(stride, 1))
    out = np.ascontiguousarray(rows).view(dt).reshape(acc["count"], nc).astype(np.float64)
    if acc.get("normalized"):
        out = np.maximum(out / float(np.iinfo(dt).max), -1.0)
    return out if nc > 1 else out[:, 0]


def read_table(doc: dict[str, Any], blob: bytes, table: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Decode a property table into lists (strings, enum names) and arrays; a property left out (every value
    empty or no data) reads as its empty/noData values, an enum's noData as "" (CesiumJS: undefined). (Its
    layout against the schema is the validator's check.)"""
    cls = schema["classes"][table["class"]]["properties"]
    count = table["count"]
    values: dict[str, Any] = {}
    for name, spec in cls.items():
        prop = table["properties"].get(name)
        if spec["type"] == "STRING":
            if prop is None:
                values[name] = [spec.get("default", "")] * count
                continue
            raw = _view_bytes(doc, blob, prop["values"])
            offs = np.frombuffer(_view_bytes(doc, blob, prop["stringOffsets"]), dtype=np.uint32)
            values[name] = [raw[offs[i] : offs[i + 1]].decode("utf-8") for i in range(count)]
        elif spec["type"] == "ENUM":
            enum = schema["enums"][spec["enumType"]]
            names = {v["value"]: v["name"] for v in enum["values"]} | {-1: ""}
            names[next(v["value"] for v in enum["values"] if v["name"] == spec["noData"])] = ""
            dt = {"UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32}[enum["valueType"]]
            raw_values = np.frombuffer(_view_bytes(doc, blob, prop["values"]), dtype=dt) if prop else [-1] * count
            values[name] = [names[int(v)] for v in raw_values]
        else:
            dt = {"INT64": np.int64, "INT32": np.int32, "FLOAT64": np.float64}[spec["componentType"]]
            if prop is None:
                values[name] = np.full(count, spec.get("noData", 0), dtype=dt)
                continue
            values[name] = np.frombuffer(_view_bytes(doc, blob, prop["values"]), dtype=dt)
    return values


def _draco(
    doc: dict[str, Any], blob: bytes, prim: dict[str, Any], ext: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode a KHR_draco_mesh_compression primitive with DracoPy and check it against its accessors:
    positions, normals, feature ids (exact integers) and triangle indices."""
    import DracoPy

    data = _view_bytes(doc, blob, ext["bufferView"])
    mesh = DracoPy.decode(data)
    by_id = {int(a["unique_id"]): np.asarray(a["data"]) for a in mesh.attributes}
    attrs = prim["attributes"]
    assert set(ext["attributes"]) <= set(attrs), "draco attributes must be primitive attributes"
    decoded = {name: by_id[uid] for name, uid in ext["attributes"].items()}
    for name, values in decoded.items():
        acc = doc["accessors"][attrs[name]]
        assert "bufferView" not in acc and acc["count"] == len(values), name
    pos = decoded["POSITION"].astype(np.float64)
    acc = doc["accessors"][attrs["POSITION"]]
    assert np.allclose(pos.min(axis=0), acc["min"]) and np.allclose(pos.max(axis=0), acc["max"])
    fid = decoded["_FEATURE_ID_0"][:, 0]
    assert np.issubdtype(fid.dtype, np.integer) or np.all(fid == np.rint(fid)), "feature ids must stay exact"
    idx = np.asarray(mesh.faces, dtype=np.int64).ravel()
    assert doc["accessors"][prim["indices"]]["count"] == len(idx)
    return pos, decoded["NORMAL"].astype(np.float64), fid.astype(np.float64), idx


_INSTANCE_FORMATS = {
    "TRANSLATION": ("VEC3", {5126}),
    "ROTATION": ("VEC4", {5126, 5120, 5122}),
    "SCALE": ("VEC3", {5126}),
    "_FEATURE_ID_0": ("SCALAR", {5126, 5121, 5123}),
}


def _quat_matrices(q: np.ndarray) -> np.ndarray:
    """(k, 3, 3) rotation matrices of unit quaternions (x, y, z, w)."""
    x, y, z, w = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=1),
        ],
        axis=1,
    )


def _mesh_primitive(doc: dict[str, Any], blob: bytes, prim: dict[str, Any]) -> tuple[np.ndarray, ...]:
    draco = prim.get("extensions", {}).get("KHR_draco_mesh_compression")
    if draco is not None:
        return _draco(doc, blob, prim, draco)
    p = _accessor(doc, blob, prim["attributes"]["POSITION"])
    nrm = _accessor(doc, blob, prim["attributes"]["NORMAL"])
    fid = (
        _accessor(doc, blob, prim["attributes"]["_FEATURE_ID_0"])
        if "_FEATURE_ID_0" in prim["attributes"]
        else np.zeros(len(p))
    )
    idx = _accessor(doc, blob, prim["indices"]).astype(np.int64)
    assert idx.max() < len(p)
    return p, nrm, fid, idx


def _node_matrix(node: dict[str, Any]) -> np.ndarray:
    if "matrix" in node:
        m = np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T
        r = m[:3, :3]
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(r), 1.0), "rigid matrix"
        return m
    assert "rotation" not in node
    m = np.eye(4)
    m[:3, :3] = np.diag(node.get("scale", [1.0, 1.0, 1.0]))
    m[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return m


def _parent_matrices(doc: dict[str, Any]) -> dict[int, np.ndarray]:
    """For every node, the product of its ancestors' matrices (y-up); every node reached exactly once from the
    scene, mesh nodes carrying no matrix of their own (their scale/translation are applied by the caller)."""
    out: dict[int, np.ndarray] = {}

    def visit(i: int, acc: np.ndarray) -> None:
        assert i not in out, "node reached twice"
        node = doc["nodes"][i]
        out[i] = acc
        if "mesh" in node:
            assert "matrix" not in node and "children" not in node
            return
        for c in node.get("children", []):
            visit(c, acc @ _node_matrix(node))

    for root in doc["scenes"][doc.get("scene", 0)]["nodes"]:
        visit(root, np.eye(4))
    assert sorted(out) == list(range(len(doc["nodes"]))), "every node must be in the scene"
    return out


def decode_glb(path: Path, transform: np.ndarray) -> list[DecodedPrimitive]:
    """The geometry of a .glb in ECEF, given the tile's accumulated transform (4×4): one decoded primitive
    per property table, merging the mesh primitives (EXT_mesh_features) and the instanced meshes
    (EXT_mesh_gpu_instancing + EXT_instance_features, expanded instance by instance) that use it."""
    doc, blob = read_glb(path.read_bytes())
    schema = doc["extensions"]["EXT_structural_metadata"]["schema"]
    tables = doc["extensions"]["EXT_structural_metadata"]["propertyTables"]
    parents = _parent_matrices(doc)
    pieces: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for node_index, node in enumerate(doc["nodes"]):
        if "mesh" not in node:
            continue
        parent = parents[node_index]
        scale = np.array(node.get("scale", [1, 1, 1]))
        trans = np.array(node.get("translation", [0, 0, 0]))
        assert "rotation" not in node and "matrix" not in node
        ext = node.get("extensions", {})
        for prim in doc["meshes"][node["mesh"]]["primitives"]:
            p, nrm, fid, idx = _mesh_primitive(doc, blob, prim)
            if "EXT_mesh_gpu_instancing" in ext:
                assert "EXT_mesh_features" not in prim.get("extensions", {})
                attrs = ext["EXT_mesh_gpu_instancing"]["attributes"]
                for name, (kind, types) in _INSTANCE_FORMATS.items():  # EXT_mesh_gpu_instancing rules
                    acc = doc["accessors"][attrs[name]]
                    assert acc["type"] == kind and acc["componentType"] in types, name
                    view = doc["bufferViews"][acc["bufferView"]]
                    assert "target" not in view and "byteStride" not in view, name
                    assert acc["count"] == doc["accessors"][attrs["TRANSLATION"]]["count"], name
                t = _accessor(doc, blob, attrs["TRANSLATION"])
                r = _quat_matrices(_accessor(doc, blob, attrs["ROTATION"]))
                sc = _accessor(doc, blob, attrs["SCALE"])
                ifid = _accessor(doc, blob, attrs["_FEATURE_ID_0"])
                assert len(t) == len(r) == len(sc) == len(ifid) > 0
                assert np.allclose(np.linalg.det(r), 1.0, atol=1e-4)
                fset = ext["EXT_instance_features"]["featureIds"][0]
                assert fset["attribute"] == 0 and np.all(ifid == np.rint(ifid))
                k, n = len(t), len(p)
                p = t[:, None, :] + np.einsum("kij,knj->kni", r, sc[:, None, :] * p[None])
                nrm = np.einsum("kij,knj->kni", r, nrm[None] / sc[:, None, :])
                nrm = (nrm / np.linalg.norm(nrm, axis=2, keepdims=True)).reshape(-1, 3)
                p = p.reshape(-1, 3)
                idx = (idx[None, :] + n * np.arange(k)[:, None]).ravel()
                fid = np.repeat(ifid, n)
            else:
                fset = prim["extensions"]["EXT_mesh_features"]["featureIds"][0]
            p = p * scale + trans
            p = p @ parent[:3, :3].T + parent[:3, 3]
            nrm = nrm @ parent[:3, :3].T
            zup = np.column_stack([p[:, 0], -p[:, 2], p[:, 1]])
            nup = np.column_stack([nrm[:, 0], -nrm[:, 2], nrm[:, 1]])
            ecef = zup @ transform[:3, :3].T + transform[:3, 3]
            nup = nup @ transform[:3, :3].T
            assert fid.max() < fset["featureCount"] <= tables[fset["propertyTable"]]["count"]
            pieces.setdefault(fset["propertyTable"], []).append((ecef, nup, fid.astype(np.int64), idx))
    out = []
    for t_index, parts in sorted(pieces.items()):
        offsets = np.cumsum([0] + [len(e) for e, _, _, _ in parts[:-1]])
        table = tables[t_index]
        out.append(
            DecodedPrimitive(
                np.concatenate([e for e, _, _, _ in parts]),
                np.concatenate([nn for _, nn, _, _ in parts]),
                np.concatenate([f for _, _, f, _ in parts]),
                np.concatenate([i + o for (_, _, _, i), o in zip(parts, offsets, strict=True)]),
                read_table(doc, blob, table, schema) | {"class": table["class"]},
            )
        )
    return out


def _tables_of(path: Path) -> list[Any]:
    doc, _ = read_glb(path.read_bytes())
    tables: list[Any] = doc["extensions"]["EXT_structural_metadata"]["propertyTables"]
    return tables


def _inside(inner: list[float], outer: list[float]) -> bool:
    return (
        inner[0] >= outer[0] - TOL_RAD
        and inner[1] >= outer[1] - TOL_RAD
        and inner[2] <= outer[2] + TOL_RAD
        and inner[3] <= outer[3] + TOL_RAD
        and inner[4] >= outer[4] - TOL_M
        and inner[5] <= outer[5] + TOL_M
    )


def _vertices_inside(prim: DecodedPrimitive, region: list[float], tol_m: float) -> bool:
    lon, lat, h = crs.geocentric_to_geodetic(prim.ecef)
    lo = np.radians([lon.min(), lat.min()])
    hi = np.radians([lon.max(), lat.max()])
    tol_rad = tol_m / 6.3e6
    return not (
        lo[0] < region[0] - tol_rad
        or lo[1] < region[1] - tol_rad
        or hi[0] > region[2] + tol_rad
        or hi[1] > region[3] + tol_rad
        or h.min() < region[4] - tol_m
        or h.max() > region[5] + tol_m
    )


@dataclass
class TilesetCheck:
    """Everything decoded while checking a tileset."""

    errors: list[str] = field(default_factory=list)
    leaves: list[tuple[Path, list[DecodedPrimitive]]] = field(default_factory=list)
    contents: list[Path] = field(default_factory=list)
    # Implicit class tilesets: available tiles ((class tileset, level, x, y) → their available content path);
    # subtree files read.
    implicit_tiles: dict[tuple[str, int, int, int], list[str]] = field(default_factory=dict)
    subtrees: list[Path] = field(default_factory=list)
    external: list[Path] = field(default_factory=list)  # external tilesets followed
    beyond_cell: int = 0  # implicit tiles whose TILE_BOUNDING_REGION crosses their implicit cell's edges


def check_tileset(root: Path, *, position_tol_m: float = 0.05) -> TilesetCheck:
    """Check ``root/tileset.json`` and the external tilesets it references beyond what the official
    validator checks (see the module docstring), decoding every content."""
    result = TilesetCheck()
    _check_tileset_file(root / "tileset.json", None, np.eye(4), result, position_tol_m)
    written = {p.resolve() for p in root.rglob("*") if p.suffix in (".glb", ".subtree") or p.name == "tileset.json"}
    reached = {p.resolve() for p in [root / "tileset.json", *result.external, *result.contents, *result.subtrees]}
    if written - reached:  # bytes written that no traversal reads
        result.errors.append(f"files nothing references: {sorted(str(p) for p in written - reached)[:5]}")
    return result


def _check_tileset_file(
    path: Path, parent: dict[str, Any] | None, acc: np.ndarray, result: TilesetCheck, position_tol_m: float
) -> None:
    tileset = json.loads(path.read_text(encoding="utf-8"))
    base = path.parent
    if "implicitTiling" in tileset["root"]:
        if parent is not None and not _inside(tileset["root"]["boundingVolume"]["region"], parent):
            result.errors.append(f"{path}: implicit root volume not inside the referencing tile's")
        check_implicit(base, tileset, result, position_tol_m, path.parent.name)
        return

    def walk(tile: dict[str, Any], parent_region: list[float] | None, acc: np.ndarray, where: str) -> None:
        region = tile["boundingVolume"]["region"]
        if parent_region is not None and not _inside(region, parent_region):
            result.errors.append(f"{where}: bounding volume not inside the parent's")
        m = acc @ np.array(tile.get("transform", np.eye(4).ravel().tolist())).reshape(4, 4).T
        contents = [tile["content"]] if "content" in tile else list(tile.get("contents", []))
        for content in contents:
            file = base / content["uri"]
            if file.suffix == ".json":
                result.external.append(file)
                _check_tileset_file(file, region, m, result, position_tol_m)
                continue
            result.contents.append(file)
            prims = decode_glb(file, m)
            if len(prims) != 1 or len(_tables_of(file)) != 1:
                result.errors.append(f"{where}: {content['uri']} must hold one property table")
            creg = content.get("boundingVolume", {}).get("region", region)
            for prim in prims:
                if not _vertices_inside(prim, creg, position_tol_m):
                    result.errors.append(f"{where}: {prim.table['class']} vertices outside the content region")
            if "children" not in tile:
                result.leaves.append((file, prims))
        if not contents and "children" not in tile:
            result.errors.append(f"{where}: leaf without content")
        for i, child in enumerate(tile.get("children", [])):
            walk(child, region, m, f"{where}/{i}")

    walk(tileset["root"], parent, acc, f"{path.name}:root")


def read_subtree(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a binary ``.subtree`` into its JSON header and binary chunk."""
    _magic, _version, jlen, _blen = struct.unpack_from("<4sIQQ", data, 0)
    return json.loads(data[24 : 24 + jlen]), data[24 + jlen :]


def _availability(doc: dict[str, Any], blob: bytes, avail: dict[str, Any], n: int) -> np.ndarray:
    """Decode one availability (constant or bitstream, bits LSB first, Morton order) to n booleans."""
    if "constant" in avail:
        return np.full(n, bool(avail["constant"]))
    view = doc["bufferViews"][avail["bitstream"]]
    raw = np.frombuffer(blob, np.uint8, view["byteLength"], view["byteOffset"])
    return np.unpackbits(raw, bitorder="little").astype(bool)[:n]


def _demorton(m: int) -> tuple[int, int]:
    x = y = 0
    for bit in range(32):
        x |= ((m >> (2 * bit)) & 1) << bit
        y |= ((m >> (2 * bit + 1)) & 1) << bit
    return x, y


def _expand(template: str, level: int, x: int, y: int) -> str:
    return template.replace("{level}", str(level)).replace("{x}", str(x)).replace("{y}", str(y))


def _semantic_property(schema: dict[str, Any], cls: str, semantic: str) -> str | None:
    for name, prop in schema["classes"][cls]["properties"].items():
        if prop.get("semantic") == semantic:
            return str(name)
    return None


def check_implicit(
    root: Path, tileset: dict[str, Any], result: TilesetCheck, position_tol_m: float, name: str = ""
) -> None:
    """Check an implicit quadtree (region root, one content template) in folder ``root`` beyond the official
    validator: availability against the files written, both ways (every available content and subtree exists
    and every content file is available); each tile's bounding volume (its TILE_BOUNDING_REGION metadata, or
    the implicit subdivision of the root region) inside its parent's and holding its content's vertices;
    ``availableLevels`` equal to the depth reached."""
    tile = tileset["root"]
    imp = tile["implicitTiling"]
    errors = result.errors
    levels, available_levels = imp["subtreeLevels"], imp["availableLevels"]
    template = tile["content"]["uri"]
    root_region = tile["boundingVolume"]["region"]
    schema = tileset.get("schema", {})
    n_tiles = (4**levels - 1) // 3
    regions: dict[tuple[int, int, int], list[float]] = {}
    available: dict[tuple[int, int, int], list[str]] = {}
    queue = [(0, 0, 0)]
    while queue:
        s_level, sx, sy = queue.pop()
        path = root / _expand(imp["subtrees"]["uri"], s_level, sx, sy)
        if not path.exists():
            errors.append(f"{name}: subtree {s_level}/{sx}/{sy} is available but missing")
            continue
        result.subtrees.append(path)
        doc, blob = read_subtree(path.read_bytes())
        tiles = _availability(doc, blob, doc["tileAvailability"], n_tiles)
        content_bits = _availability(doc, blob, doc["contentAvailability"][0], n_tiles)
        children = _availability(doc, blob, doc["childSubtreeAvailability"], 4**levels)
        metadata: np.ndarray | None = None
        if "tileMetadata" in doc:
            table = doc["propertyTables"][doc["tileMetadata"]]
            prop = _semantic_property(schema, table["class"], "TILE_BOUNDING_REGION")
            if prop is not None:
                view = doc["bufferViews"][table["properties"][prop]["values"]]
                metadata = np.frombuffer(blob, "<f8", 6 * table["count"], view["byteOffset"]).reshape(-1, 6)
        for order, index in enumerate(np.nonzero(tiles)[0]):
            d = int(np.floor(np.log(3 * index + 1) / np.log(4) + 1e-9))
            x, y = _demorton(int(index) - (4**d - 1) // 3)
            key = (s_level + d, (sx << d) + x, (sy << d) + y)
            size = (root_region[2] - root_region[0]) / (1 << key[0]), (root_region[3] - root_region[1]) / (1 << key[0])
            implicit_region = [
                root_region[0] + key[1] * size[0],
                root_region[1] + key[2] * size[1],
                root_region[0] + (key[1] + 1) * size[0],
                root_region[1] + (key[2] + 1) * size[1],
                root_region[4],
                root_region[5],
            ]
            regions[key] = metadata[order].tolist() if metadata is not None else implicit_region
            if not _inside(regions[key], implicit_region):
                result.beyond_cell += 1
            available[key] = [_expand(template, *key)] if content_bits[index] else []
        for m in np.nonzero(children)[0]:
            x, y = _demorton(int(m))
            queue.append((s_level + levels, (sx << levels) + x, (sy << levels) + y))
    result.implicit_tiles.update({(name, *key): uris for key, uris in available.items()})
    # Files written ↔ availability.
    written = {p.relative_to(root).as_posix() for p in root.glob("subtrees/**/*.subtree")}
    if written != {p.relative_to(root).as_posix() for p in result.subtrees if p.is_relative_to(root)}:
        errors.append(f"{name}: subtree files not reachable by child subtree availability: {sorted(written)[:5]}")
    uris = {u for us in available.values() for u in us}
    existing = {p.relative_to(root).as_posix() for p in root.glob("content/**/*.glb")}
    if uris - existing:
        errors.append(f"{name}: available contents missing: {sorted(uris - existing)[:5]}")
    if existing - uris:
        errors.append(f"{name}: content files not marked available: {sorted(existing - uris)[:5]}")
    if available and max(k[0] for k in available) != available_levels - 1:
        errors.append(f"{name}: availableLevels does not match the deepest available tile")
    for key, tile_uris in sorted(available.items()):
        level, x, y = key
        region = regions[key]
        parent = (level - 1, x >> 1, y >> 1)
        if level > 0 and parent not in regions:
            errors.append(f"{name}: tile {key} available but its parent is not")
        elif not _inside(region, regions[parent] if level > 0 else root_region):
            errors.append(f"{name}: tile {key}: bounding volume not inside the parent's")
        leaf = not any((level + 1, 2 * x + i, 2 * y + j) in available for i in (0, 1) for j in (0, 1))
        for uri in tile_uris:
            file = root / uri
            if not file.exists():
                continue
            result.contents.append(file)
            prims = decode_glb(file, np.eye(4))  # implicit tiles carry no transform: the frame is in the glb
            if len(prims) != 1 or len(_tables_of(file)) != 1:
                errors.append(f"{name}: tile {key}: {uri} must hold one property table")
            for prim in prims:
                if not _vertices_inside(prim, region, position_tol_m):
                    errors.append(f"{name}: tile {key}: {prim.table['class']} vertices outside the tile's volume")
            if leaf:
                result.leaves.append((file, prims))


def check_terrain(root: Path) -> int:
    """Check layer.json and every available tile (header and vertex data); return the tile count."""
    layer = json.loads((root / "layer.json").read_text(encoding="utf-8"))
    assert layer["format"] == "quantized-mesh-1.0" and layer["scheme"] == "tms"
    assert layer["available"][0] == [{"startX": 0, "startY": 0, "endX": 1, "endY": 0}]
    count = 0
    for z, ranges in enumerate(layer["available"]):
        for r in ranges:
            for x in range(r["startX"], r["endX"] + 1):
                for y in range(r["startY"], r["endY"] + 1):
                    data = (root / f"{z}/{x}/{y}.terrain").read_bytes()
                    hmin, hmax = struct.unpack_from("<2f", data, 24)
                    (n,) = struct.unpack_from("<I", data, 88)
                    assert n >= 4 and hmin <= hmax
                    u = np.cumsum(_zigzag(np.frombuffer(data, "<u2", n, 92)))
                    v = np.cumsum(_zigzag(np.frombuffer(data, "<u2", n, 92 + 2 * n)))
                    assert u.min() >= 0 and u.max() <= 32767 and v.min() >= 0 and v.max() <= 32767
                    count += 1
    return count


def _zigzag(a: np.ndarray) -> np.ndarray:
    x = a.astype(np.int64)
    return (x >> 1) ^ (-(x & 1))


# For other suites only (tests/review builds a one-glb tileset with these on another branch): the tile tests
# run the official validator instead (test_official_validator.py), which does both of these and more. Switch
# such a suite to tests.tiles.official.run_validator and these two can go.
_SCHEMA_BASE = "https://cim.invalid/3d-tiles-schema/"


@cache
def _registry() -> Registry:
    resources = []
    for path in TILES_SCHEMA_DIR.rglob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        uri = _SCHEMA_BASE + path.relative_to(TILES_SCHEMA_DIR).as_posix()
        doc["$id"] = uri
        resources.append((uri, Resource.from_contents(doc)))
    return Registry().with_resources(resources)


def schema_errors(document: dict[str, Any], schema: str = "tileset.schema.json") -> list[str]:
    """JSON-schema errors of a document against one of the official 3D Tiles 1.1 schemas."""
    registry = _registry()
    validator = jsonschema.Draft202012Validator(registry.contents(_SCHEMA_BASE + schema), registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def gltf_reports(paths: list[Path]) -> list[dict[str, Any]]:
    """Run the Khronos glTF validator (tools/node/validate-gltf.mjs) on files; one report per file."""
    out = subprocess.run(
        ["node", str(ROOT / "tools/node/validate-gltf.mjs"), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports: list[dict[str, Any]] = json.loads(out.stdout)
    return reports
