"""The tile content class registry: one registration per kind of feature a tileset draws.

In the spirit of py3dtiles' ``Tiler`` and pygeoapi's plug-in table: a :class:`TileClass` (see
:mod:`tiles.classes.base`) declares its layer name, source query, partition points and weights, renderer,
metadata class and viewer legend; :func:`register` adds it. The builder (:mod:`tiles.build`), the renderer,
implicit tiling, the metadata schema, ``cim tiles build --layers``, ``POST /jobs/tiles`` and ``GET
/vocabulary`` (the viewer's legends) all read :func:`registered`, so a new class is one module with its
subclass plus its name in :data:`BUILTIN_MODULES` (or a plug-in that calls :func:`register`).
"""

from __future__ import annotations

import importlib
from typing import Any

from tiles.classes.base import Bounds, LegendEntry, RenderContext, Rendered, TileClass, css, ground
from tiles.schema import SCHEMA_ID

__all__ = [
    "BUILTIN_MODULES",
    "TERRAIN",
    "Bounds",
    "LegendEntry",
    "RenderContext",
    "Rendered",
    "TileClass",
    "css",
    "get",
    "ground",
    "layers",
    "register",
    "registered",
    "schema",
    "unregister",
]

BUILTIN_MODULES: tuple[str, ...] = (
    "tiles.classes.buildings",
    "tiles.classes.areas",
    "tiles.classes.facilities",
    "tiles.classes.lines",
)
"""Modules of the built-in classes, imported on first use of the registry; each calls :func:`register`."""
TERRAIN = "terrain"
"""The layer name of the quantized-mesh terrain (not a content class: it is written beside the tileset)."""

_REGISTRY: dict[str, TileClass] = {}
_loaded = False


def register(tile_class: TileClass) -> TileClass:
    """Add (or replace, by layer) a tile content class; classes are drawn in registration order."""
    if tile_class.layer == TERRAIN:
        raise ValueError(f"{TERRAIN!r} is the terrain layer, not a content class")
    _REGISTRY[tile_class.layer] = tile_class
    return tile_class


def unregister(layer: str) -> None:
    """Remove a class (tests that register a toy plug-in clean up with this)."""
    _REGISTRY.pop(layer, None)


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def registered() -> tuple[TileClass, ...]:
    """Every registered class: the built-ins in :data:`BUILTIN_MODULES` order (whichever module was imported
    first), then plug-ins in registration order."""
    _load_builtins()
    rank = {module: i for i, module in enumerate(BUILTIN_MODULES)}
    return tuple(sorted(_REGISTRY.values(), key=lambda c: rank.get(type(c).__module__, len(rank))))


def get(layer: str) -> TileClass:
    """The class registered for ``layer``; :class:`KeyError` when there is none."""
    _load_builtins()
    return _REGISTRY[layer]


def layers() -> tuple[str, ...]:
    """Every layer ``--layers`` accepts: the content classes, then ``terrain``."""
    return (*(c.layer for c in registered()), TERRAIN)


def schema() -> dict[str, Any]:
    """The ``EXT_structural_metadata`` schema of every registered class (in every glb and ``tileset.json``)."""
    classes = registered()
    out: dict[str, Any] = {"id": SCHEMA_ID, "name": "CIM platform features", "version": "1.1.0"}
    enums = {k: v for c in classes for k, v in c.enums.items()}
    if enums:
        out["enums"] = enums
    out["classes"] = {c.metadata_class: c.schema_class() for c in classes}
    return out
