"""What the official 3d-tiles-validator and the Khronos glTF validator check, applied to a tileset directory.

- ``tileset.json`` against the official 3D Tiles 1.1 JSON schemas (jsonschema, $refs through a Registry);
- semantic rules: child regions inside the parent's, geometric error non-increasing towards the leaves,
  content URIs resolve, content (the decoded vertices) inside the content and tile bounding volumes,
  feature ids within featureCount, property tables conforming to the metadata schema;
- every .glb through the npm ``gltf-validator`` (tools/node/validate-gltf.mjs), zero errors;
- terrain: ``layer.json`` and every tile listed as available exists and parses.
- implicit tilesets (:func:`check_implicit`): every binary subtree (header, subtree schema, buffer views,
  availability bitstreams/constants), availability against the files written, derived tile volumes.
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

BASE = "https://cim.invalid/3d-tiles-schema/"
TOL_RAD = 1e-9
TOL_M = 0.01


@cache
def _registry() -> Registry:
    resources = []
    for path in TILES_SCHEMA_DIR.rglob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        uri = BASE + path.relative_to(TILES_SCHEMA_DIR).as_posix()
        doc["$id"] = uri
        resources.append((uri, Resource.from_contents(doc)))
    return Registry().with_resources(resources)


def schema_errors(document: dict[str, Any], schema: str = "tileset.schema.json") -> list[str]:
    """JSON-schema errors of a document against one of the official schemas."""
    registry = _registry()
    root = registry.contents(BASE + schema)
    validator = jsonschema.Draft202012Validator(root, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def gltf_reports(paths: list[Path]) -> list[dict[str, Any]]:
    """Run the Khronos glTF validator on files; one report per file."""
    out = subprocess.run(
        ["node", str(ROOT / "tools/node/validate-gltf.mjs"), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports: list[dict[str, Any]] = json.loads(out.stdout)
    return reports


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
    """Decode a property table into lists/arrays, checking it against the schema class."""
    cls = schema["classes"][table["class"]]["properties"]
    count = table["count"]
    values: dict[str, Any] = {}
    for name, spec in cls.items():
        prop = table["properties"].get(name)
        if prop is None:
            assert not spec.get("required"), f"required property {name} missing"
            continue
        raw = _view_bytes(doc, blob, prop["values"])
        if spec["type"] == "STRING":
            assert prop.get("stringOffsetType", "UINT32") == "UINT32"
            offs = np.frombuffer(_view_bytes(doc, blob, prop["stringOffsets"]), dtype=np.uint32)
            assert len(offs) == count + 1 and offs[0] == 0 and np.all(np.diff(offs.astype(np.int64)) >= 0)
            assert offs[-1] <= len(raw)
            values[name] = [raw[offs[i] : offs[i + 1]].decode("utf-8") for i in range(count)]
        else:
            dt = {"INT64": np.int64, "INT32": np.int32, "FLOAT64": np.float64}[spec["componentType"]]
            assert doc["bufferViews"][prop["values"]].get("byteOffset", 0) % np.dtype(dt).itemsize == 0
            arr = np.frombuffer(raw, dtype=dt)
            assert len(arr) == count, f"{name}: {len(arr)} values for {count} features"
            values[name] = arr
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
    # Implicit tilesets: available tiles (level, x, y) → their available content URIs; subtree files read.
    implicit_tiles: dict[tuple[int, int, int], list[str]] = field(default_factory=dict)
    subtrees: list[Path] = field(default_factory=list)
    beyond_cell: int = 0  # implicit tiles whose TILE_BOUNDING_REGION crosses their implicit cell's edges


def check_tileset(root: Path, *, position_tol_m: float = 0.05) -> TilesetCheck:
    """Validate ``root/tileset.json`` (schema + semantics) and decode every content."""
    result = TilesetCheck()
    tileset = json.loads((root / "tileset.json").read_text(encoding="utf-8"))
    result.errors += schema_errors(tileset)
    if tileset["geometricError"] < tileset["root"]["geometricError"]:
        result.errors.append("tileset geometricError smaller than the root's")
    if "implicitTiling" in tileset["root"]:
        check_implicit(root, tileset, result, position_tol_m)
        return result

    def walk(tile: dict[str, Any], parent: dict[str, Any] | None, acc: np.ndarray, path: str) -> None:
        region = tile["boundingVolume"]["region"]
        if "implicitTiling" in tile:
            result.errors.append(f"{path}: only the root may carry implicitTiling here")
        if parent is not None:
            if not _inside(region, parent["boundingVolume"]["region"]):
                result.errors.append(f"{path}: bounding volume not inside the parent's")
            if tile["geometricError"] > parent["geometricError"]:
                result.errors.append(f"{path}: geometric error larger than the parent's")
        m = acc @ np.array(tile.get("transform", np.eye(4).ravel().tolist())).reshape(4, 4).T
        contents = [tile["content"]] if "content" in tile else list(tile.get("contents", []))
        for content in contents:
            file = root / content["uri"]
            if not file.exists():
                result.errors.append(f"{path}: content {content['uri']} does not resolve")
                continue
            result.contents.append(file)
            prims = decode_glb(file, m)
            if len(prims) != 1 or len(_tables_of(file)) != 1:
                result.errors.append(f"{path}: {content['uri']} must hold one property table")
            creg = content.get("boundingVolume", {}).get("region", region)
            if not _inside(creg, region):
                result.errors.append(f"{path}: content bounding volume not inside the tile's")
            for prim in prims:
                if not _vertices_inside(prim, creg, position_tol_m):
                    result.errors.append(f"{path}: {prim.table['class']} vertices outside the content region")
            if "children" not in tile:
                result.leaves.append((file, prims))
        if not contents and "children" not in tile:
            result.errors.append(f"{path}: leaf without content")
        for i, child in enumerate(tile.get("children", [])):
            walk(child, tile, m, f"{path}/{i}")

    walk(tileset["root"], None, np.eye(4), "root")
    return result


def read_subtree(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a binary ``.subtree`` into its JSON header and binary chunk, checking the header layout."""
    magic, version, jlen, blen = struct.unpack_from("<4sIQQ", data, 0)
    assert magic == b"subt" and version == 1, "not a subtree file"
    assert jlen % 8 == 0 and blen % 8 == 0 and 24 + jlen + blen == len(data), "subtree chunk lengths"
    return json.loads(data[24 : 24 + jlen]), data[24 + jlen :]


def _availability(doc: dict[str, Any], blob: bytes, avail: dict[str, Any], n: int, what: str) -> np.ndarray:
    """Decode one availability (constant or bitstream, bits LSB first, Morton order) to n booleans."""
    if "constant" in avail:
        assert "bitstream" not in avail, what
        return np.full(n, bool(avail["constant"]))
    view = doc["bufferViews"][avail["bitstream"]]
    buffer = doc["buffers"][view["buffer"]]
    assert view["buffer"] == 0 and "uri" not in buffer, f"{what}: bitstream must be in the internal buffer"
    assert view["byteOffset"] % 8 == 0 and view["byteOffset"] + view["byteLength"] <= buffer["byteLength"] <= len(blob)
    assert view["byteLength"] >= (n + 7) // 8, f"{what}: bitstream too short"
    raw = np.frombuffer(blob, np.uint8, view["byteLength"], view["byteOffset"])
    bits = np.unpackbits(raw, bitorder="little").astype(bool)
    assert not bits[n:].any(), f"{what}: padding bits must be 0"
    bits = bits[:n]
    if "availableCount" in avail:
        assert avail["availableCount"] == int(bits.sum()), f"{what}: availableCount"
    return bits


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


def check_implicit(root: Path, tileset: dict[str, Any], result: TilesetCheck, position_tol_m: float) -> None:
    """Check an implicit quadtree root (region): every subtree (binary header, JSON schema, buffer views,
    availability), availability against the files written (every available content exists and every content
    file is available, child subtree availability ↔ subtree files, parents of available tiles available),
    each tile's bounding volume (implicit subdivision of the root region, or its TILE_BOUNDING_REGION metadata)
    inside its parent's and holding its content's vertices, a positive root geometric error (implicit tiling
    halves it per level, so it decreases towards the leaves by construction)."""
    tile = tileset["root"]
    imp = tile["implicitTiling"]
    errors = result.errors
    if imp["subdivisionScheme"] != "QUADTREE" or "region" not in tile["boundingVolume"]:
        errors.append("root: only QUADTREE over a region is checked here")
        return
    if "children" in tile or "transform" in tile or "metadata" in tile:
        errors.append("root: an implicit root must not have children, metadata or a transform")
    if any("boundingVolume" in c for c in ([tile["content"]] if "content" in tile else tile.get("contents", []))):
        errors.append("root: implicit content templates must omit boundingVolume")
    levels, available_levels = imp["subtreeLevels"], imp["availableLevels"]
    contents = [tile["content"]] if "content" in tile else list(tile.get("contents", []))
    templates = [c["uri"] for c in contents]
    if any("{level}" not in t or "{x}" not in t or "{y}" not in t for t in templates):
        errors.append("root: content URIs must be templates with {level}, {x} and {y}")
    root_region = tile["boundingVolume"]["region"]
    root_error = tile["geometricError"]
    if not root_error > 0:
        errors.append("root: an implicit root needs a positive geometric error (halved per level)")
    schema = tileset.get("schema", {})
    n_tiles = (4**levels - 1) // 3
    regions: dict[tuple[int, int, int], list[float]] = {}
    queue = [(0, 0, 0)]
    while queue:
        s_level, sx, sy = queue.pop()
        path = root / _expand(imp["subtrees"]["uri"], s_level, sx, sy)
        if not path.exists():
            errors.append(f"subtree {path.name} ({s_level}/{sx}/{sy}) is available but missing")
            continue
        result.subtrees.append(path)
        doc, blob = read_subtree(path.read_bytes())
        errors.extend(f"{path.name}: {e}" for e in schema_errors(doc, "Subtree/subtree.schema.json"))
        tiles = _availability(doc, blob, doc["tileAvailability"], n_tiles, "tileAvailability")
        cavail = doc.get("contentAvailability", [])
        if len(cavail) != len(templates):
            errors.append(f"{path.name}: {len(cavail)} content availabilities for {len(templates)} contents")
            continue
        content_bits = [_availability(doc, blob, a, n_tiles, "contentAvailability") for a in cavail]
        children = _availability(doc, blob, doc["childSubtreeAvailability"], 4**levels, "childSubtreeAvailability")
        if not tiles[0]:
            errors.append(f"{path.name}: the subtree root tile is not available")
        metadata: np.ndarray | None = None
        if "tileMetadata" in doc:
            table = doc["propertyTables"][doc["tileMetadata"]]
            name = _semantic_property(schema, table["class"], "TILE_BOUNDING_REGION")
            if table["count"] != int(tiles.sum()):
                errors.append(f"{path.name}: tile metadata count {table['count']} != available tiles {tiles.sum()}")
            elif name is not None:
                view = doc["bufferViews"][table["properties"][name]["values"]]
                assert view["byteOffset"] % 8 == 0 and view["byteLength"] == 48 * table["count"]
                metadata = np.frombuffer(blob, "<f8", 6 * table["count"], view["byteOffset"]).reshape(-1, 6)
        for order, index in enumerate(np.nonzero(tiles)[0]):
            d = int(np.floor(np.log(3 * index + 1) / np.log(4) + 1e-9))
            x, y = _demorton(int(index) - (4**d - 1) // 3)
            key = (s_level + d, (sx << d) + x, (sy << d) + y)
            if key[0] >= available_levels:
                errors.append(f"tile {key} beyond availableLevels")
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
            uris = []
            for k, bits in enumerate(content_bits):
                if bits[index]:
                    uris.append(_expand(templates[k], *key))
            result.implicit_tiles[key] = uris
        for k, bits in enumerate(content_bits):
            if (bits & ~tiles).any():
                errors.append(f"{path.name}: content {k} available where the tile is not")
        for m in np.nonzero(children)[0]:
            x, y = _demorton(int(m))
            child = (s_level + levels, (sx << levels) + x, (sy << levels) + y)
            parent_index = (4 ** (levels - 1) - 1) // 3 + (int(m) >> 2)
            if not tiles[parent_index]:
                errors.append(f"{path.name}: child subtree {child} under an unavailable tile")
            queue.append(child)
    # Files written ↔ availability.
    written = {p.relative_to(root).as_posix() for p in root.glob("subtrees/**/*.subtree")}
    if written != {p.relative_to(root).as_posix() for p in result.subtrees}:
        errors.append(f"subtree files not reachable by child subtree availability: {written}")
    available = {u for uris in result.implicit_tiles.values() for u in uris}
    existing = {p.relative_to(root).as_posix() for p in root.glob("content/**/*.glb")}
    if available - existing:
        errors.append(f"available contents missing: {sorted(available - existing)[:5]}")
    if existing - available:
        errors.append(f"content files not marked available: {sorted(existing - available)[:5]}")
    if result.implicit_tiles and max(k[0] for k in result.implicit_tiles) != available_levels - 1:
        errors.append("availableLevels does not match the deepest available tile")
    for key, uris in sorted(result.implicit_tiles.items()):
        level, x, y = key
        region = regions[key]
        if level > 0:
            parent = (level - 1, x >> 1, y >> 1)
            if parent not in regions:
                errors.append(f"tile {key}: available but its parent is not")
            elif not _inside(region, regions[parent]):
                errors.append(f"tile {key}: bounding volume not inside the parent's")
        else:
            if not _inside(region, root_region):
                errors.append("implicit root tile: bounding volume not inside the root's")
        leaf = not any((level + 1, 2 * x + i, 2 * y + j) in result.implicit_tiles for i in (0, 1) for j in (0, 1))
        for uri in uris:
            file = root / uri
            if not file.exists():
                continue
            result.contents.append(file)
            prims = decode_glb(file, np.eye(4))  # implicit tiles carry no transform: the frame is in the glb
            if len(prims) != 1 or len(_tables_of(file)) != 1:
                errors.append(f"tile {key}: {uri} must hold one property table")
            for prim in prims:
                if not _vertices_inside(prim, region, position_tol_m):
                    errors.append(f"tile {key}: {prim.table['class']} vertices outside the tile's bounding volume")
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
