"""The options of a tileset build, as pg2b3dm's ``TilingSettings`` / ``OutputSettings``: what to tile and how
(:class:`TilingOptions`), where and how to write it (:class:`OutputOptions`). The command line, the jobs API
and the review approval each build one of each; :func:`tiles.build.build_tileset` takes them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiles.source import BBox

LEAF_CAPACITY = 3000.0
"""Largest feature weight of a leaf tile (a LOD1 building weighs 1)."""
PARENT_CAPACITY = 250
"""Features (the largest) a parent tile carries of each class that appears in parents."""
PARTITION_ROWS = 1_000_000
"""Counted rows (buildings) a build holds at once: a larger one is streamed by partition (grid cells)."""
SUBTREE_LEVELS = 4
"""Levels per binary subtree of implicit tiling."""
COMPRESSIONS = ("none", "meshopt", "draco")


@dataclass(frozen=True)
class TilingOptions:
    """What to tile: ``layers`` (tile classes and ``terrain``; None: every registered one), ``bbox``
    (west, south, east, north CGCS2000 degrees), leaf and parent capacities, implicit tiling, and how many
    counted rows a build holds at once (``partition_rows``; more are streamed partition by partition)."""

    layers: tuple[str, ...] | None = None
    bbox: BBox | None = None
    leaf_capacity: float = LEAF_CAPACITY
    parent_capacity: int = PARENT_CAPACITY
    implicit: bool = False
    subtree_levels: int = SUBTREE_LEVELS
    partition_rows: int = PARTITION_ROWS


@dataclass(frozen=True)
class OutputOptions:
    """Where and how to write: ``out`` (default ``$CIM_DATA_DIR/tiles/NAME``), ``compress`` (none | meshopt |
    draco) and ``jobs`` (worker processes)."""

    out: Path | None = None
    compress: str = "none"
    jobs: int = 1


def with_overrides(
    tiling: TilingOptions | None, output: OutputOptions | None, overrides: dict[str, Any]
) -> tuple[TilingOptions, OutputOptions]:
    """``tiling`` and ``output`` (defaults when None) with the fields named in ``overrides`` replaced; a
    :class:`TypeError` for a name that is a field of neither."""
    tiling, output = tiling or TilingOptions(), output or OutputOptions()
    t_fields = {f.name for f in dataclasses.fields(TilingOptions)}
    o_fields = {f.name for f in dataclasses.fields(OutputOptions)}
    unknown = sorted(set(overrides) - t_fields - o_fields)
    if unknown:
        raise TypeError(f"unknown build options {unknown}")
    t = {k: v for k, v in overrides.items() if k in t_fields}
    if t.get("layers") is not None:
        t["layers"] = tuple(t["layers"])
    tiling = dataclasses.replace(tiling, **t)
    output = dataclasses.replace(output, **{k: v for k, v in overrides.items() if k in o_fields})
    return tiling, output
