"""The official CesiumGS 3d-tiles-validator on a tileset, and pygltflib as an independent glTF reader.

The validator (0.6.1, ``../shared/tools/3d-tiles-validator``) runs the Khronos glTF validator on every glb.
That one does not read EXT_structural_metadata, KHR_draco_mesh_compression, EXT_mesh_gpu_instancing or the
source buffer of EXT_meshopt_compression, so it says "This object may be unused" of buffer views, accessors
and buffers that only those extensions reference. :func:`findings` reads each such glb with pygltflib and
sorts these infos: referenced by one of those extensions (the info is blind to it), or truly unused.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygltflib
import pytest

from tests.conftest import SHARED

VALIDATOR = SHARED / "tools" / "3d-tiles-validator"
KHRONOS_UNSUPPORTED = {
    # The Khronos glTF validator skips these (info "Cannot validate an extension…"); the 3D Tiles validator
    # checks the first three itself, the tests in this folder decode the others.
    "EXT_mesh_features",
    "EXT_structural_metadata",
    "EXT_instance_features",
    "EXT_mesh_gpu_instancing",
    "EXT_meshopt_compression",
    "KHR_draco_mesh_compression",
}
_UNSUPPORTED = re.compile(r"Cannot validate an extension as it is not supported by the validator: '(\w+)'\.")
_CAUSED = re.compile(r"^(?:Content )?(\S+) caused validation (?:errors|warnings|infos)$")
GLB_ALIGNMENT = 8
COMPRESSION_EXTENSIONS = {"meshopt": "EXT_meshopt_compression", "draco": "KHR_draco_mesh_compression"}
"""The glTF extension each ``compress`` option of the builder requires of the contents it compresses."""


def validator() -> Path:
    """The validator's launcher; a test fails (never skips) when ``../shared`` does not hold it."""
    if not VALIDATOR.is_file():
        pytest.fail(
            f"the official 3d-tiles-validator is missing at {VALIDATOR}: CI checks out ../shared beside the "
            "repository (shared/tools/3d-tiles-validator); put it there to run the tile tests"
        )
    return VALIDATOR


def run_validator(tileset: Path, report: Path) -> dict[str, Any]:
    """Validate ``tileset`` (a tileset.json) and return the validator's JSON report (also kept in ``report``)."""
    out = subprocess.run(
        [str(validator()), "--tilesetFile", str(tileset), "--reportFile", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if not report.exists():
        raise AssertionError(f"the validator wrote no report for {tileset}: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return result


def extension_references(gltf: pygltflib.GLTF2) -> set[tuple[str, int]]:
    """(``bufferViews`` | ``accessors`` | ``buffers``, index) of the objects that extensions the Khronos
    validator does not read refer to."""
    refs: set[tuple[str, int]] = set()
    for table in (gltf.extensions or {}).get("EXT_structural_metadata", {}).get("propertyTables", []):
        for prop in table["properties"].values():
            refs |= {("bufferViews", prop[k]) for k in ("values", "stringOffsets", "arrayOffsets") if k in prop}
    for mesh in gltf.meshes:
        for prim in mesh.primitives:
            draco = (prim.extensions or {}).get("KHR_draco_mesh_compression")
            if draco:
                refs.add(("bufferViews", draco["bufferView"]))
    for node in gltf.nodes:
        instancing = (node.extensions or {}).get("EXT_mesh_gpu_instancing")
        if instancing:
            refs |= {("accessors", a) for a in instancing["attributes"].values()}
    for view in gltf.bufferViews:
        meshopt = (view.extensions or {}).get("EXT_meshopt_compression")
        if meshopt:
            refs.add(("buffers", meshopt["buffer"]))
    return refs


def unreferenced(gltf: pygltflib.GLTF2) -> list[str]:
    """What a glb holds that nothing reads: accessors no primitive or instancing uses, buffer views no accessor
    or extension uses, and bytes of the binary chunk outside every view (beyond 8-byte alignment padding)."""
    used_accessors: set[int] = set()
    for mesh in gltf.meshes:
        for prim in mesh.primitives:
            used_accessors |= {v for v in vars(prim.attributes).values() if isinstance(v, int)}
            if prim.indices is not None:
                used_accessors.add(prim.indices)
    refs = extension_references(gltf)
    used_accessors |= {i for kind, i in refs if kind == "accessors"}
    used_views = {
        a.bufferView for i, a in enumerate(gltf.accessors) if i in used_accessors and a.bufferView is not None
    }
    used_views |= {i for kind, i in refs if kind == "bufferViews"}
    problems = [f"accessor {i} unused" for i in range(len(gltf.accessors)) if i not in used_accessors]
    problems += [f"bufferView {i} unused" for i in range(len(gltf.bufferViews)) if i not in used_views]
    blob = gltf.binary_blob() or b""
    covered: list[tuple[int, int]] = []
    for view in gltf.bufferViews:
        meshopt = (view.extensions or {}).get("EXT_meshopt_compression")
        if meshopt:
            covered.append((meshopt.get("byteOffset", 0), meshopt["byteLength"]))
        elif view.buffer == 0:
            covered.append((view.byteOffset or 0, view.byteLength))
    end = 0
    for offset, length in sorted(covered):
        if offset - end >= GLB_ALIGNMENT:
            problems.append(f"{offset - end} bytes at {end} outside every buffer view")
        end = max(end, offset + length)
    if len(blob) - end >= GLB_ALIGNMENT:
        problems.append(f"{len(blob) - end} bytes at the end of the binary chunk outside every buffer view")
    return problems


@dataclass
class Findings:
    """The validator's issues over the whole report tree (external tilesets and contents included)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unexpected_infos: list[str] = field(default_factory=list)
    truly_unused: list[str] = field(default_factory=list)  # "may be unused" of objects nothing references
    blind_unused: int = 0  # "may be unused" of objects only extensions the Khronos validator skips reference
    unsupported: set[str] = field(default_factory=set)
    glbs: set[Path] = field(default_factory=set)  # content files the validator reached


def findings(report: dict[str, Any], tileset: Path) -> Findings:
    """Walk every issue of ``report`` (of ``tileset``), resolving the glb each content issue is about."""
    out = Findings()
    refs: dict[Path, set[tuple[str, int]]] = {}

    def walk(issues: list[dict[str, Any]], base: Path, glb: Path | None) -> None:
        for issue in issues:
            severity, message, path = issue["severity"], issue["message"], issue.get("path", "")
            where = f"{glb or base}: {issue['type']} {path} {message}"
            here_base, here_glb = base, glb
            caused = _CAUSED.match(message)
            if caused and issue["type"].startswith("EXTERNAL_TILESET"):
                here_base = (base / caused.group(1)).parent
            elif caused and caused.group(1).endswith(".glb"):
                here_glb = base / caused.group(1)
                out.glbs.add(here_glb)
            if severity == "ERROR":
                out.errors.append(where)
            elif severity == "WARNING":
                out.warnings.append(where)
            elif caused:
                pass  # the summary of its causes
            elif (m := _UNSUPPORTED.match(message)) and m.group(1) in KHRONOS_UNSUPPORTED:
                out.unsupported.add(m.group(1))
            elif message == "This object may be unused." and glb is not None:
                if glb not in refs:
                    refs[glb] = extension_references(pygltflib.GLTF2.load_binary(str(glb)))
                kind, index = path.strip("/").split("/")[:2]
                if (kind, int(index)) in refs[glb]:
                    out.blind_unused += 1
                else:
                    out.truly_unused.append(where)
            else:
                out.unexpected_infos.append(where)
            walk(issue.get("causes", []), here_base, here_glb)

    walk(report["issues"], tileset.parent, None)
    return out
