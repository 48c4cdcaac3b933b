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

SCHEMA_ID = "cim"

CLASS_PROPERTY = "cim_class"


def class_property(class_id: str) -> dict[str, Any]:
    """The ``cim_class`` property of class ``class_id``: its default is the class id, no table stores it."""
    return {"type": "STRING", "description": "metadata class of the feature (never stored)", "default": class_id}


USE_COLORS: dict[str, tuple[int, int, int]] = {
    "residential": (236, 226, 206),
    "commercial": (240, 180, 120),
    "office": (160, 190, 230),
    "industrial": (190, 170, 200),
    "public": (170, 215, 170),
    "education": (250, 220, 120),
    "medical": (240, 150, 150),
    "mixed": (220, 200, 170),
    "other": (210, 210, 210),
}
"""RGB colours (0–255) of LOD1 blocks by ``building.use``."""

DEFAULT_BUILDING_COLOR = (215, 215, 215)

FACILITY_COLORS: dict[str, tuple[int, int, int]] = {
    "pipe_water": (40, 110, 230),
    "pipe_drainage": (130, 90, 50),
    "pipe_gas": (240, 210, 40),
    "pipe_heat": (230, 70, 50),
    "pipe_power": (200, 40, 160),
    "pipe_telecom": (40, 190, 90),
    "manhole": (90, 90, 90),
    "hydrant": (220, 30, 30),
    "street_lamp": (60, 60, 70),
    "road": (110, 110, 110),
    "greenway": (70, 160, 80),
    "park": (110, 190, 100),
    "green_space": (130, 200, 110),
    "water_body": (80, 150, 220),
}
DEFAULT_FACILITY_COLOR = (150, 150, 150)

ELEMENT_COLORS: dict[str, tuple[int, int, int]] = {
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
