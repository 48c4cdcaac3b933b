"""Differences between two versions of a model by IFC GlobalId, computed by IfcOpenShell's ``ifcdiff``.

``ifcdiff`` compares direct attributes, property sets and a geometry summary (vertex count, sums,
extremes, placement matrix, openings) of every element present in both versions.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from cim.archive.service import Archive, VersionInfo
from cim.errors import ArchiveError

RELATIONSHIPS = ["attributes", "property", "geometry"]


def _materialise(archive: Archive, info: VersionInfo, folder: Path) -> Path:
    path = folder / f"v{info.version}-{info.file_name}"
    with path.open("wb") as out:
        for chunk in archive.open_version(info):
            out.write(chunk)
    if info.file_name and info.file_name.lower().endswith(".ifczip"):
        with zipfile.ZipFile(path) as zf:
            member = next(m for m in zf.namelist() if m.lower().endswith(".ifc"))
            inner = folder / f"v{info.version}.ifc"
            with zf.open(member) as src, inner.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        return inner
    return path


def _describe(model: Any, global_id: str) -> dict[str, Any]:
    try:
        element = model.by_guid(global_id)
    except RuntimeError:
        return {"global_id": global_id}
    return {"global_id": global_id, "ifc_class": element.is_a(), "name": getattr(element, "Name", None)}


def diff_versions(archive: Archive, model_key: str, v1: int, v2: int) -> dict[str, Any]:
    """Elements added, removed and changed (attributes, property sets, geometry) from ``v1`` to ``v2``."""
    import ifcopenshell
    from ifcdiff import IfcDiff

    old_info, new_info = archive.version(model_key, v1), archive.version(model_key, v2)
    with tempfile.TemporaryDirectory(prefix="cim-diff-") as tmp:
        folder = Path(tmp)
        try:
            old = ifcopenshell.open(str(_materialise(archive, old_info, folder)))
            new = ifcopenshell.open(str(_materialise(archive, new_info, folder)))
        except (RuntimeError, OSError, StopIteration) as exc:
            raise ArchiveError(f"the versions of {model_key!r} could not be read as IFC: {exc}") from exc
        differ = IfcDiff(old, new, relationships=RELATIONSHIPS, is_shallow=False)
        with contextlib.redirect_stdout(io.StringIO()):  # ifcdiff prints progress on stdout
            differ.diff()
        changed = []
        for global_id, flags in sorted(differ.change_register.items()):
            entry = _describe(new, global_id)
            entry["changes"] = sorted(k.removesuffix("_changed") for k, v in flags.items() if v)
            changed.append(entry)
        return {
            "model_key": model_key,
            "from": v1,
            "to": v2,
            "schemas": [old.schema, new.schema],
            "added": [_describe(new, g) for g in sorted(differ.added_elements)],
            "removed": [_describe(old, g) for g in sorted(differ.deleted_elements)],
            "changed": changed,
            "counts": {
                "added": len(differ.added_elements),
                "removed": len(differ.deleted_elements),
                "changed": len(changed),
            },
            "method": "ifcdiff " + _ifcdiff_version() + " (attributes, property sets, geometry summary)",
        }


def _ifcdiff_version() -> str:
    import ifcdiff

    return str(getattr(ifcdiff, "__version__", "?"))
