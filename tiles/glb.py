"""Binary glTF 2.0 (.glb) written straight from NumPy buffers, with EXT_mesh_features feature ids,
EXT_structural_metadata property tables, instanced meshes (EXT_mesh_gpu_instancing + EXT_instance_features)
and optional EXT_meshopt_compression or KHR_draco_mesh_compression.

Positions are given in a Z-up frame (the tile's local east-north-up frame, metres); the writer rotates them
into glTF's Y-up convention (x, y, z) → (x, z, −y), which 3D Tiles undoes when it loads the content, so
the tile's ``transform`` is exactly the ENU→ECEF matrix of the content centre.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.schema import CLASS_PROPERTY

GLB_MAGIC = 0x46546C67
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942

FLOAT = 5126
UNSIGNED_INT = 5125
UNSIGNED_SHORT = 5123
UNSIGNED_BYTE = 5121
BYTE = 5120
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963

FEATURE_ID_ATTRIBUTE = "_FEATURE_ID_0"
DRACO_POSITION_BITS = 16  # ≈ 1.5 cm over a 1 km tile: within the 0.1 m placement budget
DRACO_NORMAL_BITS = 8
DRACO_LEVEL = 7  # edgebreaker; the glTF tools' default (level 4: 155 instead of 113 bytes/building, not faster)
_DRACO_SEMANTICS = {0: "POSITION", 1: "NORMAL", 2: "COLOR_0"}

_META_DTYPES = {"INT64": np.int64, "INT32": np.int32, "UINT32": np.uint32, "FLOAT64": np.float64}


@dataclass
class Primitive:
    """One triangle mesh primitive: every array has one row per vertex (indices: 3 per triangle).

    ``positions``: float64 (n, 3) metres, Z-up, relative to the tile centre; ``normals``: (n, 3) unit vectors
    in the same frame; ``colors``: uint8 (n, 4) sRGB + alpha; ``feature_ids``: (n,) index into the property
    table ``table``; ``indices``: (m,) vertex indices, counter-clockwise triangles seen from outside.
    """

    positions: NDArray[np.float64]
    normals: NDArray[np.float32]
    colors: NDArray[np.uint8]
    feature_ids: NDArray[np.int64]
    indices: NDArray[np.int64]
    table: int
    feature_count: int


@dataclass
class PropertyTable:
    """Values of one metadata class for ``count`` features: numeric arrays or lists of strings per property."""

    class_name: str
    count: int
    columns: dict[str, Any] = field(default_factory=dict)


@dataclass
class Instances:
    """One mesh drawn at many places with ``EXT_mesh_gpu_instancing`` (repeated facilities: lamps, manholes…).

    The template mesh is in a local Z-up frame (metres): ``positions`` (n, 3), ``normals`` (n, 3), ``colors``
    uint8 (n, 4), ``indices`` (m,). Each instance k places it in the tile's Z-up frame: ``translations``
    (k, 3) metres relative to the tile centre, ``rotations`` (k, 4) unit quaternions (x, y, z, w),
    ``scales`` (k, 3); ``feature_ids`` (k,) are rows of property table ``table`` (``EXT_instance_features``).
    """

    positions: NDArray[np.float64]
    normals: NDArray[np.float32]
    colors: NDArray[np.uint8]
    indices: NDArray[np.int64]
    translations: NDArray[np.float64]
    rotations: NDArray[np.float64]
    scales: NDArray[np.float64]
    feature_ids: NDArray[np.int64]
    table: int
    feature_count: int


class _Bin:
    """The binary chunk being assembled, with bufferViews (8-byte aligned)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.views: list[dict[str, Any]] = []

    def add(self, data: bytes, target: int | None = None, extra: dict[str, Any] | None = None) -> int:
        pad = (-self.size) % 8
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        if extra:
            view.update(extra)
        self.parts.append(data)
        self.size += len(data)
        self.views.append(view)
        return len(self.views) - 1

    def blob(self) -> bytes:
        pad = (-self.size) % 4
        return b"".join(self.parts) + b"\0" * pad


def column_min(v: NDArray[Any]) -> NDArray[Any]:
    """The minimum of each column of a 2-D array (column by column: NumPy's ``min(axis=0)`` over a few
    columns is about nine times slower)."""
    return np.array([v[:, i].min() for i in range(v.shape[1])], dtype=v.dtype)


def column_max(v: NDArray[Any]) -> NDArray[Any]:
    """The maximum of each column of a 2-D array (see :func:`column_min`)."""
    return np.array([v[:, i].max() for i in range(v.shape[1])], dtype=v.dtype)


def _y_up(v: NDArray[Any]) -> NDArray[Any]:
    out = np.empty_like(v)
    out[:, 0] = v[:, 0]
    out[:, 1] = v[:, 2]
    out[:, 2] = -v[:, 1]
    return out


def _strings(values: list[str]) -> tuple[bytes, bytes]:
    offsets = np.zeros(len(values) + 1, dtype=np.uint32)
    joined = "".join(values)
    if joined.isascii():  # one byte per character: lengths without encoding each string
        lengths = np.fromiter(map(len, values), dtype=np.uint32, count=len(values))
        data = joined.encode("ascii")
    else:
        encoded = [s.encode("utf-8") for s in values]
        lengths = np.fromiter(map(len, encoded), dtype=np.uint32, count=len(encoded))
        data = b"".join(encoded)
    np.cumsum(lengths, out=offsets[1:])
    return data, offsets.tobytes()


def _enum_values(names: list[str | None], enum: dict[str, Any], no_data: str | None) -> NDArray[Any]:
    """The integer values of enum ``names`` (an empty or None name: the ``noData`` name's value); a name the
    enum does not have is a ValueError."""
    value_of = {v["name"]: v["value"] for v in enum["values"]}
    if no_data is not None:
        value_of[""] = value_of[no_data]
    dtype = _META_DTYPES[enum["valueType"]]
    try:
        return np.fromiter((value_of[n or ""] for n in names), dtype=dtype, count=len(names))
    except KeyError as missing:
        raise ValueError(f"not in enum {enum.get('name', '')!r}: {missing}") from None


class _Writer:
    def __init__(self, compress: str) -> None:
        self.bin = _Bin()
        self.accessors: list[dict[str, Any]] = []
        self.compress = compress
        self.fallback_size = 0
        self.used: set[str] = set()

    def vertex_view(self, data: NDArray[Any] | bytes, stride: int, target: int | None) -> int:
        """A bufferView of vertex data (ARRAY_BUFFER), indices (ELEMENT_ARRAY_BUFFER) or metadata (None);
        meshopt-compressed when asked. Its byteLength is exactly the data's: meshopt needs a whole number of
        ``stride``-byte elements (a ValueError otherwise; padding only ever goes between views)."""
        raw = data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()
        if self.compress != "meshopt" or not raw:
            return self.bin.add(raw, target, {"byteStride": stride} if target == ARRAY_BUFFER else None)
        import meshoptimizer

        if len(raw) % stride:
            raise ValueError(f"meshopt views hold whole {stride}-byte elements, got {len(raw)} bytes")
        count = len(raw) // stride
        if target == ELEMENT_ARRAY_BUFFER:
            encoded = meshoptimizer.encode_index_buffer(
                np.frombuffer(raw, dtype=np.uint16 if stride == 2 else np.uint32).astype(np.uint32), count, None
            )
            mode = "TRIANGLES"
        else:
            encoded = meshoptimizer.encode_vertex_buffer(
                np.frombuffer(raw, dtype=np.uint8).reshape(count, stride), count, stride
            )
            mode = "ATTRIBUTES"
        self.fallback_size += (-self.fallback_size) % 8
        offset = self.fallback_size
        self.fallback_size += len(raw)
        index = self.bin.add(bytes(encoded))
        compressed = self.bin.views[index]
        view: dict[str, Any] = {
            "buffer": 1,
            "byteOffset": offset,
            "byteLength": len(raw),
            "extensions": {
                "EXT_meshopt_compression": {
                    "buffer": 0,
                    "byteOffset": compressed["byteOffset"],
                    "byteLength": compressed["byteLength"],
                    "byteStride": stride,
                    "mode": mode,
                    "count": count,
                }
            },
        }
        if target is not None:
            view["target"] = target
        if target == ARRAY_BUFFER:
            view["byteStride"] = stride
        self.bin.views[index] = view
        self.used.add("EXT_meshopt_compression")
        return index

    def accessor(self, view: int | None, component: int, kind: str, count: int, **extra: Any) -> int:
        acc: dict[str, Any] = {"componentType": component, "count": count, "type": kind}
        if view is not None:
            acc["bufferView"] = view
        acc.update(extra)
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _primitive_json(attrs: dict[str, int], indices: int, material: int, prim: Primitive) -> dict[str, Any]:
    return {
        "attributes": attrs,
        "indices": indices,
        "material": material,
        "mode": 4,
        "extensions": {
            "EXT_mesh_features": {
                "featureIds": [{"featureCount": prim.feature_count, "attribute": 0, "propertyTable": prim.table}]
            }
        },
    }


def _draco_primitive(
    w: _Writer, prim: Primitive, pos: NDArray[np.float64], nor: NDArray[np.float64], material: int
) -> dict[str, Any]:
    """One primitive compressed with KHR_draco_mesh_compression (DracoPy, edgebreaker).

    Positions (Y-up, metres) are quantised to ``DRACO_POSITION_BITS`` over the primitive's extent, normals to
    ``DRACO_NORMAL_BITS`` (octahedral); colours (uint8) and feature ids (uint16, or float32 above 65,535
    features: never quantised) are stored exactly as generic integer / float attributes. The encoded mesh is
    decoded once here so that accessor counts, POSITION min/max and the attributes' draco unique ids are the
    ones a decoder will see (draco may reorder and deduplicate vertices).
    """
    import DracoPy

    n = len(pos)
    if prim.feature_count <= 65535:
        fid: NDArray[Any] = prim.feature_ids.astype(np.uint16).reshape(n, 1)
        fid_type = UNSIGNED_SHORT
    else:
        fid = prim.feature_ids.astype(np.float32).reshape(n, 1)
        fid_type = FLOAT
    encoded = DracoPy.encode(
        pos.astype(np.float32),
        faces=np.asarray(prim.indices, dtype=np.uint32).reshape(-1, 3),
        quantization_bits=DRACO_POSITION_BITS,
        compression_level=DRACO_LEVEL,
        colors=np.ascontiguousarray(prim.colors, dtype=np.uint8),
        normals=np.ascontiguousarray(nor, dtype=np.float64),
        normal_quantization_bits=DRACO_NORMAL_BITS,
        generic_attributes={FEATURE_ID_ATTRIBUTE: fid},
    )
    decoded = DracoPy.decode(encoded)
    ids: dict[str, int] = {}
    for att in decoded.attributes:
        semantic = _DRACO_SEMANTICS.get(int(att["attribute_type"])) or att.get("name")
        if semantic:
            ids[str(semantic)] = int(att["unique_id"])
    if set(ids) != {"POSITION", "NORMAL", "COLOR_0", FEATURE_ID_ATTRIBUTE}:
        raise ValueError(f"draco encoding lost attributes: {sorted(ids)}")
    count = len(decoded.points)
    points = np.asarray(decoded.points, dtype=np.float32)
    view = w.bin.add(bytes(encoded))
    attrs = {
        "POSITION": w.accessor(
            None, FLOAT, "VEC3", count, min=column_min(points).tolist(), max=column_max(points).tolist()
        ),
        "NORMAL": w.accessor(None, FLOAT, "VEC3", count),
        "COLOR_0": w.accessor(None, UNSIGNED_BYTE, "VEC4", count, normalized=True),
        FEATURE_ID_ATTRIBUTE: w.accessor(None, fid_type, "SCALAR", count),
    }
    faces = len(decoded.faces) * 3
    ia = w.accessor(None, UNSIGNED_SHORT if count <= 65535 else UNSIGNED_INT, "SCALAR", faces)
    out = _primitive_json(attrs, ia, material, prim)
    out["extensions"]["KHR_draco_mesh_compression"] = {"bufferView": view, "attributes": ids}
    w.used.add("KHR_draco_mesh_compression")
    return out


def _instanced_node(w: _Writer, inst: Instances, mesh: int) -> dict[str, Any]:
    """The template mesh's primitive is written by the caller; this writes the per-instance accessors (not
    quantised: float32 translations, quaternions, scales and feature ids) and returns the node."""
    k = len(inst.translations)
    t = _y_up(inst.translations).astype(np.float32)
    q = np.column_stack([_y_up(inst.rotations[:, :3]), inst.rotations[:, 3]]).astype(np.float32)
    sc = inst.scales[:, [0, 2, 1]].astype(np.float32)  # Z-up (x, y, z) scale → Y-up (x, z, y)
    attrs = {
        "TRANSLATION": w.accessor(
            w.vertex_view(t, 12, None), FLOAT, "VEC3", k, min=column_min(t).tolist(), max=column_max(t).tolist()
        ),
        "ROTATION": w.accessor(w.vertex_view(q, 16, None), FLOAT, "VEC4", k),
        "SCALE": w.accessor(w.vertex_view(sc, 12, None), FLOAT, "VEC3", k),
        FEATURE_ID_ATTRIBUTE: w.accessor(
            w.vertex_view(inst.feature_ids.astype(np.float32), 4, None), FLOAT, "SCALAR", k
        ),
    }
    w.used.add("EXT_mesh_gpu_instancing")
    return {
        "mesh": mesh,
        "extensions": {
            "EXT_mesh_gpu_instancing": {"attributes": attrs},
            "EXT_instance_features": {
                "featureIds": [{"featureCount": inst.feature_count, "attribute": 0, "propertyTable": inst.table}]
            },
        },
    }


def _template_primitive(w: _Writer, inst: Instances, material: int) -> dict[str, Any]:
    n = len(inst.positions)
    pos = _y_up(inst.positions).astype(np.float32)
    attrs = {
        "POSITION": w.accessor(
            w.vertex_view(pos, 12, ARRAY_BUFFER),
            FLOAT,
            "VEC3",
            n,
            min=column_min(pos).tolist(),
            max=column_max(pos).tolist(),
        ),
        "NORMAL": w.accessor(
            w.vertex_view(_y_up(inst.normals.astype(np.float64)).astype(np.float32), 12, ARRAY_BUFFER),
            FLOAT,
            "VEC3",
            n,
        ),
        "COLOR_0": w.accessor(
            w.vertex_view(np.ascontiguousarray(inst.colors, dtype=np.uint8), 4, ARRAY_BUFFER),
            UNSIGNED_BYTE,
            "VEC4",
            n,
            normalized=True,
        ),
    }
    iv = w.vertex_view(inst.indices.astype(np.uint32), 4, ELEMENT_ARRAY_BUFFER)
    ia = w.accessor(iv, UNSIGNED_INT, "SCALAR", len(inst.indices))
    return {"attributes": attrs, "indices": ia, "material": material, "mode": 4}


def write_glb(
    primitives: list[Primitive],
    tables: list[PropertyTable],
    *,
    compress: str = "none",
    instances: list[Instances] | None = None,
) -> bytes:
    """Encode primitives (one mesh, node 0), instanced meshes (one node each, ``EXT_mesh_gpu_instancing`` +
    ``EXT_instance_features``) and property tables as one .glb (bytes).

    ``compress="meshopt"`` quantises positions to 16 bits of one step for the three axes (KHR_mesh_quantization,
    node scale/offset) and
    normals to 8 bits and compresses vertex and index buffers with EXT_meshopt_compression;
    ``compress="draco"`` encodes each primitive with KHR_draco_mesh_compression (see ``_draco_primitive``;
    property tables stay plain buffer views).
    """
    w = _Writer(compress)
    quantize = compress == "meshopt"
    meshes_prims: list[dict[str, Any]] = []
    material_index = 0
    all_pos = [p.positions for p in primitives if len(p.positions)]
    lo = np.min([column_min(p) for p in all_pos], axis=0) if all_pos else np.zeros(3)
    hi = np.max([column_max(p) for p in all_pos], axis=0) if all_pos else np.ones(3)
    lo_y, hi_y = _y_up(lo[None, :])[0], _y_up(hi[None, :])[0]
    qmin = np.minimum(lo_y, hi_y)
    # One step for the three axes (the largest span / 65535: ≈ 3 cm over a 2 km tile, within the 0.1 m
    # placement budget): heights quantised as finely as a 100 m span allows (1.5 mm) only cost bytes.
    scale = np.full(3, max(float(np.abs(hi_y - lo_y).max()), 1e-6) / 65535.0)
    for prim in primitives:
        n = len(prim.positions)
        pos = _y_up(prim.positions)
        nor = _y_up(prim.normals.astype(np.float64))
        if compress == "draco" and n and len(prim.indices):
            meshes_prims.append(_draco_primitive(w, prim, pos, nor, material_index))
            continue
        attrs: dict[str, int] = {}
        if quantize:
            q = np.clip(np.rint((pos - qmin) / scale), 0, 65535).astype(np.uint16)
            buf = np.zeros((n, 4), dtype=np.uint16)
            buf[:, :3] = q
            v = w.vertex_view(buf, 8, ARRAY_BUFFER)
            attrs["POSITION"] = w.accessor(
                v, UNSIGNED_SHORT, "VEC3", n, min=column_min(q).tolist(), max=column_max(q).tolist()
            )
            nb = np.zeros((n, 4), dtype=np.int8)
            nb[:, :3] = np.clip(np.rint(nor * 127.0), -127, 127).astype(np.int8)
            v = w.vertex_view(nb, 4, ARRAY_BUFFER)
            attrs["NORMAL"] = w.accessor(v, BYTE, "VEC3", n, normalized=True)
            w.used.add("KHR_mesh_quantization")
        else:
            p32 = pos.astype(np.float32)
            v = w.vertex_view(p32, 12, ARRAY_BUFFER)
            attrs["POSITION"] = w.accessor(
                v, FLOAT, "VEC3", n, min=column_min(p32).tolist(), max=column_max(p32).tolist()
            )
            v = w.vertex_view(nor.astype(np.float32), 12, ARRAY_BUFFER)
            attrs["NORMAL"] = w.accessor(v, FLOAT, "VEC3", n)
        v = w.vertex_view(np.ascontiguousarray(prim.colors, dtype=np.uint8), 4, ARRAY_BUFFER)
        attrs["COLOR_0"] = w.accessor(v, UNSIGNED_BYTE, "VEC4", n, normalized=True)
        if prim.feature_count <= 65535:  # unsigned short ids (padded to 4 bytes): compress far better
            ids = np.zeros((n, 2), dtype=np.uint16)
            ids[:, 0] = prim.feature_ids
            v = w.vertex_view(ids, 4, ARRAY_BUFFER)
            attrs["_FEATURE_ID_0"] = w.accessor(v, UNSIGNED_SHORT, "SCALAR", n)
        else:
            v = w.vertex_view(prim.feature_ids.astype(np.float32), 4, ARRAY_BUFFER)
            attrs["_FEATURE_ID_0"] = w.accessor(v, FLOAT, "SCALAR", n)
        if n <= 65535:  # 16-bit indices when they fit
            iv = w.vertex_view(prim.indices.astype(np.uint16), 2, ELEMENT_ARRAY_BUFFER)
            ia = w.accessor(iv, UNSIGNED_SHORT, "SCALAR", len(prim.indices))
        else:
            iv = w.vertex_view(prim.indices.astype(np.uint32), 4, ELEMENT_ARRAY_BUFFER)
            ia = w.accessor(iv, UNSIGNED_INT, "SCALAR", len(prim.indices))
        meshes_prims.append(_primitive_json(attrs, ia, material_index, prim))
    from tiles.classes import schema as registered_schema

    schema = registered_schema()  # with the classes of this glb's tables only (fewer bytes per tile)
    schema["classes"] = {t.class_name: schema["classes"][t.class_name] for t in tables}
    named = {p["enumType"] for c in schema["classes"].values() for p in c["properties"].values() if "enumType" in p}
    if named:
        schema["enums"] = {k: v for k, v in schema["enums"].items() if k in named}
    else:
        schema.pop("enums", None)
    prop_tables: list[dict[str, Any]] = []
    for table in tables:
        cls = schema["classes"][table.class_name]["properties"]
        props: dict[str, Any] = {}
        for name, spec in cls.items():
            if name == CLASS_PROPERTY:
                continue  # read as its default, the class id: no bytes
            values = table.columns[name]
            if spec["type"] == "STRING":
                data, offsets = _strings(list(values))
                if not data:  # every value empty: leave the (optional) property out, no zero-length views
                    continue
                # String bytes stay a plain view: its byteLength must equal the last offset, and a meshopt
                # view's byteLength must be a whole number of 4-byte elements.
                props[name] = {
                    "values": w.bin.add(data),
                    "stringOffsets": w.vertex_view(offsets, 4, None),
                    "stringOffsetType": "UINT32",
                }
            else:
                if spec["type"] == "ENUM":
                    arr = _enum_values(list(values), schema["enums"][spec["enumType"]], spec.get("noData"))
                else:
                    arr = np.asarray(values, dtype=_META_DTYPES[spec["componentType"]])
                props[name] = {"values": w.vertex_view(arr.tobytes(), arr.dtype.itemsize, None)}
        prop_tables.append({"class": table.class_name, "count": table.count, "properties": props})
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "cim tiles"},
        "scene": 0,
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [1, 1, 1, 1],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 1.0,
                },
                "doubleSided": False,
            }
        ],
        "accessors": w.accessors,
        "bufferViews": w.bin.views,
        "extensionsUsed": ["EXT_mesh_features", "EXT_structural_metadata"],
        "extensions": {"EXT_structural_metadata": {"schema": schema, "propertyTables": prop_tables}},
    }
    nodes: list[dict[str, Any]] = []
    meshes: list[dict[str, Any]] = []
    if meshes_prims:
        nodes.append({"mesh": 0})
        meshes.append({"primitives": meshes_prims})
        if quantize:
            nodes[0]["translation"] = qmin.tolist()
            nodes[0]["scale"] = scale.tolist()
    for inst in instances or []:
        # Template meshes stay plain (meshopt-compressed buffers at most): they are a few dozen vertices.
        meshes.append({"primitives": [_template_primitive(w, inst, material_index)]})
        nodes.append(_instanced_node(w, inst, len(meshes) - 1))
    if not nodes:
        raise ValueError("a .glb needs at least one primitive or instanced mesh")
    if instances:
        doc["extensionsUsed"].append("EXT_instance_features")
    doc["scenes"] = [{"nodes": list(range(len(nodes)))}]
    doc["nodes"] = nodes
    doc["meshes"] = meshes
    required = sorted(w.used)
    if required:
        doc["extensionsUsed"] += required
        doc["extensionsRequired"] = required
    blob = w.bin.blob()
    doc["buffers"] = [{"byteLength": len(blob)}]
    if w.fallback_size:
        doc["buffers"].append(
            {"byteLength": w.fallback_size, "extensions": {"EXT_meshopt_compression": {"fallback": True}}}
        )
    return pack_glb(doc, blob)


def pack_glb(doc: dict[str, Any], blob: bytes) -> bytes:
    """A .glb of a glTF JSON document and its binary chunk (both padded to 4 bytes: JSON with spaces, the
    binary chunk with zeros)."""
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    blob += b"\0" * ((-len(blob)) % 4)
    total = 12 + 8 + len(js) + 8 + len(blob)
    return b"".join(
        [
            struct.pack("<III", GLB_MAGIC, 2, total),
            struct.pack("<II", len(js), CHUNK_JSON),
            js,
            struct.pack("<II", len(blob), CHUNK_BIN),
            blob,
        ]
    )


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a .glb into its JSON document and binary chunk (for tests and tools)."""
    magic, version, total = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2 or total != len(data):
        raise ValueError("not a glTF 2.0 binary")
    jlen, _jtype = struct.unpack_from("<II", data, 12)
    doc = json.loads(data[20 : 20 + jlen])
    off = 20 + jlen
    blob = b""
    if off < len(data):
        blen, _ = struct.unpack_from("<II", data, off)
        blob = data[off + 8 : off + 8 + blen]
    return doc, blob
