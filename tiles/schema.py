"""The 3D Tiles metadata schema's shared parts (EXT_structural_metadata) and the colours of features.

The classes themselves are declared by the tile content classes (:mod:`tiles.classes`; the schema of a
tileset is :func:`tiles.classes.schema`), a contract with the viewer (docs/tiles.md). Integer properties that
may be unknown use ``noData = -1``. Every class has a ``cim_class`` property whose default is the class's own
id and which no property table stores: CesiumJS reads it back
(``feature.getProperty("cim_class")``, ``${cim_class}`` in styles) as the class of the property table that
holds the feature, so the viewer never guesses a class from which properties a feature happens to have.
"""

from __future__ import annotations

from typing import Any

from cim.vocabulary import BUILDING_USES, FACILITY_KINDS, RGB

SCHEMA_ID = "cim"

CLASS_PROPERTY = "cim_class"


def class_property(class_id: str) -> dict[str, Any]:
    """The ``cim_class`` property of class ``class_id``: its default is the class id, no table stores it."""
    return {"type": "STRING", "description": "metadata class of the feature (never stored)", "default": class_id}


NO_VALUE = "none"
"""The name of the ``noData`` value of every enum type: CesiumJS returns ``undefined`` for it (an empty or
NULL column); no vocabulary has a value of that name."""


def enum_type(name: str, values: list[str]) -> dict[str, Any]:
    """An ``EXT_structural_metadata`` enum type of the names ``values`` (0, 1, …) and :data:`NO_VALUE` (after
    them). ``UINT32``: a meshopt-compressed view holds whole 4-byte elements and must be exactly as long as the
    values, so 1-byte values could only be compressed in tables of 4·k features; runs of equal 4-byte values
    cost almost nothing compressed."""
    listed = [{"name": v, "value": i} for i, v in enumerate([*values, NO_VALUE])]
    return {"name": name, "valueType": "UINT32", "values": listed}


def enum_property(enum_id: str, description: str | None = None) -> dict[str, Any]:
    """An ``ENUM`` property of enum type ``enum_id`` whose ``noData`` is :data:`NO_VALUE`."""
    out: dict[str, Any] = {"type": "ENUM", "enumType": enum_id, "noData": NO_VALUE}
    if description is not None:
        out["description"] = description
    return out


USE_COLORS: dict[str, RGB] = {k: v.color for k, v in BUILDING_USES.items()}
"""RGB colours of LOD1 blocks by ``building.use`` (from :data:`cim.vocabulary.BUILDING_USES`)."""

FACILITY_COLORS: dict[str, RGB] = {k: v.color for k, v in FACILITY_KINDS.items()}
"""RGB colours of facilities by ``facility.kind`` (from :data:`cim.vocabulary.FACILITY_KINDS`)."""

ELEMENT_COLORS: dict[str, RGB] = {
    "IfcWall": (225, 220, 210),
    "IfcWallStandardCase": (225, 220, 210),
    "IfcSlab": (190, 190, 190),
    "IfcWindow": (140, 190, 230),
    "IfcDoor": (160, 110, 70),
    "IfcColumn": (200, 200, 200),
    "IfcBeam": (180, 180, 180),
    "IfcRoof": (170, 80, 60),
    "IfcStair": (200, 190, 170),
}
DEFAULT_ELEMENT_COLOR = (200, 200, 200)


def rgba_table(keys: list[str | None], table: dict[str, tuple[int, int, int]], default: tuple[int, int, int]) -> Any:
    """An (n, 4) uint8 array of colours for ``keys`` looked up in ``table`` (alpha 255)."""
    import numpy as np

    names, inverse = np.unique(np.asarray([k or "" for k in keys], dtype=object), return_inverse=True)
    palette = np.array([[*table.get(str(k), default), 255] for k in names], dtype=np.uint8).reshape(-1, 4)
    return palette[inverse.reshape(-1)] if len(keys) else np.zeros((0, 4), dtype=np.uint8)


def __getattr__(name: str) -> Any:
    """``SCHEMA``: the schema of the registered classes at the time of the access (:func:`tiles.classes.schema`)."""
    if name == "SCHEMA":
        from tiles.classes import schema

        return schema()
    raise AttributeError(name)
