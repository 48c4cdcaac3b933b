"""The interface of a tile content class (what one kind of feature contributes to a tileset).

A :class:`TileClass` says, in one object, everything the builder, the metadata schema, the command line, the
jobs API and the viewer need about one kind of feature: its layer name (``--layers``), its metadata class in
the ``EXT_structural_metadata`` schema, how to read its rows from PostGIS as column arrays (:meth:`read`),
where each row sits in the quadtree and what it weighs (:meth:`points`), how rows become a mesh and a property
table (:meth:`render`) and the legend the viewer shows for it (:meth:`legend`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from cim import crs
from cim.vocabulary import DEFAULT_FACILITY_COLOR, FACILITY_KINDS, FacilityKind, Term
from tiles.geometry import Mesh
from tiles.glb import Instances, PropertyTable
from tiles.schema import CLASS_PROPERTY, FACILITY_COLORS, class_property, rgba_table
from tiles.source import BBox, BuildingSource, CellCounts, Columns


def scalar(
    component_type: str, description: str | None = None, *, required: bool = False, no_data: int | None = None
) -> dict[str, Any]:
    """An ``EXT_structural_metadata`` SCALAR property definition (``INT64``, ``FLOAT64``…)."""
    definition: dict[str, Any] = {"type": "SCALAR", "componentType": component_type}
    if required:
        definition["required"] = True
    if no_data is not None:
        definition["noData"] = no_data
    if description is not None:
        definition["description"] = description
    return definition


STRING: dict[str, Any] = {"type": "STRING"}
"""A STRING property definition."""


@dataclass(frozen=True)
class LegendEntry:
    """One legend line of a tile class: the value of its legend property, Chinese and English labels and the
    CSS colour the tiles (and the viewer's style) give it."""

    value: str
    zh: str
    en: str
    color: str

    @classmethod
    def of(cls, value: str, term: Term | FacilityKind) -> LegendEntry:
        """The legend line of a vocabulary term (:mod:`cim.vocabulary`): its labels and its colour."""
        return cls(value, term.zh, term.en, css(term.color))


@dataclass(frozen=True)
class RenderContext:
    """What a renderer knows about the tile it draws into."""

    key: str
    height_anomaly: float = 0.0
    dem_path: str | None = None
    source: BuildingSource | None = None
    simplified: bool = False
    """A parent (coarser) tile: draw simplified shapes."""


class Bounds:
    """Running lon/lat/normal-height bounds of what a renderer drew (degrees, metres)."""

    def __init__(self) -> None:
        self.lo = np.array([np.inf, np.inf, np.inf])
        self.hi = -self.lo

    def add(self, lon: NDArray[np.float64], lat: NDArray[np.float64], h: NDArray[np.float64]) -> None:
        """Extend by points given as lon/lat degrees and normal heights."""
        if len(lon):
            self.lo = np.minimum(self.lo, [np.min(lon), np.min(lat), np.min(h)])
            self.hi = np.maximum(self.hi, [np.max(lon), np.max(lat), np.max(h)])

    def add_ecef(self, xyz: NDArray[np.float64], height_anomaly: float) -> None:
        """Extend by ECEF points."""
        if len(xyz):
            lon, lat, h = crs.geocentric_to_geodetic(xyz, height_anomaly=height_anomaly)
            self.add(lon, lat, h)


@dataclass
class Rendered:
    """A class's features in one tile: the merged mesh (ECEF), the property table, one colour per feature,
    the bounds drawn and, optionally, instanced meshes placed once the tile frame is known
    (``instances(matrix)``, ``matrix`` = the tile's ENU→ECEF frame)."""

    mesh: Mesh
    table: PropertyTable
    colors: NDArray[np.uint8]
    bounds: Bounds
    instances: Callable[[NDArray[np.float64]], list[Instances]] | None = None

    @property
    def empty(self) -> bool:
        """Nothing to draw."""
        return len(self.mesh.indices) == 0 and self.instances is None


def ground(dem_path: str | None, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.float64]:
    """Normal heights of the DEM at lon/lat (0 where there is no DEM or no value)."""
    if dem_path is None or len(lon) == 0:
        return np.zeros(len(lon))
    from cim.dem import sample_heights

    h = sample_heights(Path(dem_path), lon, lat)
    return np.where(np.isfinite(h), h, 0.0)


def css(rgb: tuple[int, int, int]) -> str:
    """``#rrggbb`` of an RGB triple (0–255)."""
    return "#" + "".join(f"{c:02x}" for c in rgb)


class TileClass(ABC):
    """One tile content class (subclass it, then :func:`tiles.classes.register` an instance).

    Class attributes: ``layer`` (``--layers`` name, content file suffix, implicit sub-tileset folder),
    ``metadata_class`` (class id in the schema, named by each glb's property table), ``title``,
    ``properties`` (the class's ``EXT_structural_metadata`` properties; ``cim_class`` is added),
    ``id_property`` (the property that identifies a feature), ``legend_property`` (the property the legend
    keys, or None), ``needs_dem`` (the renderer drapes on the DEM), ``owner`` (layer whose rows carry this
    class's rows: a building's IFC elements go with the building and replace its block) with ``owner_column``,
    ``in_parents`` (parent tiles carry a simplified selection of this class, by :meth:`importance`),
    ``enums`` (the schema's enum types that its ``ENUM`` properties name, by id).
    """

    layer: ClassVar[str]
    metadata_class: ClassVar[str]
    title: ClassVar[str]
    zh: ClassVar[str] = ""
    properties: ClassVar[dict[str, dict[str, Any]]]
    id_property: ClassVar[str]
    legend_property: ClassVar[str | None] = None
    needs_dem: ClassVar[bool] = False
    owner: ClassVar[str | None] = None
    owner_column: ClassVar[str] = ""
    in_parents: ClassVar[bool] = False
    enums: ClassVar[dict[str, dict[str, Any]]] = {}

    def schema_class(self) -> dict[str, Any]:
        """The class's entry in the tileset's metadata schema."""
        props = dict(self.properties)
        first = next(iter(props))
        ordered = {first: props.pop(first), CLASS_PROPERTY: class_property(self.metadata_class), **props}
        return {"name": self.title, "properties": ordered}

    def legend(self) -> list[LegendEntry]:
        """The viewer's legend of this class (value of :attr:`legend_property` → label and colour)."""
        return []

    @abstractmethod
    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        """The live rows of this class (inside ``bbox``) as column arrays; must have an ``id`` column."""

    def points(self, cols: Columns, height_anomaly: float) -> tuple[NDArray[np.float64], ...]:
        """Partition point (lon, lat degrees) and weight of every row; default the ``px``/``py`` columns, 1."""
        return np.asarray(cols["px"], np.float64), np.asarray(cols["py"], np.float64), np.ones(len(cols))

    def cell_counts(self, conn: Connection, level: int) -> CellCounts | None:
        """Live rows per grid cell at ``level`` by partition point (cell columns, rows, counts; counted in the
        database), so that a large build can be read partition by partition; None (the default): the class
        is small, read whole once."""
        return None

    def read_ids(self, conn: Connection, ids: NDArray[np.int64]) -> Columns | None:
        """The live rows with these ids (as :meth:`read`), for the rows that other classes attach to it; None
        (the default): not supported, and a build with attached rows of this class is held whole."""
        return None

    def importance(self, cols: Columns) -> NDArray[np.float64]:
        """How much each row deserves a place in a parent tile (with :attr:`in_parents`)."""
        return np.ones(len(cols))

    def ship(self, cols: Columns) -> Columns:
        """The columns a tile job carries to its worker (default all; a class whose renderer reads its own
        rows ships less)."""
        return cols

    @abstractmethod
    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        """Mesh, property table (class :attr:`metadata_class`, one row per row of ``cols``) and colours."""

    def describe(self) -> dict[str, Any]:
        """The class as the viewer's vocabulary serves it."""
        return {
            "layer": self.layer,
            "class": self.metadata_class,
            "title": self.title,
            "zh": self.zh or self.title,
            "id_property": self.id_property,
            "legend_property": self.legend_property,
            "legend": [{"value": e.value, "zh": e.zh, "en": e.en, "color": e.color} for e in self.legend()],
        }


class FacilityTileClass(TileClass):
    """A tile class drawn from the ``facility`` table: identified by ``facility_id``, coloured by ``kind``, on the
    DEM, with at least the id, kind and name properties (a subclass adds its own with :meth:`with_properties`)."""

    id_property = "facility_id"
    legend_property = "kind"
    needs_dem = True
    properties: ClassVar[dict[str, dict[str, Any]]] = {
        "facility_id": scalar("INT64", required=True),
        "kind": STRING,
        "name": STRING,
    }

    @classmethod
    def with_properties(cls, **more: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The facility properties followed by ``more`` (in order)."""
        return FacilityTileClass.properties | more

    @staticmethod
    def kind_legend(kinds: Iterable[str]) -> list[LegendEntry]:
        """Legend lines of these facility kinds, in their order."""
        return [LegendEntry.of(k, FACILITY_KINDS[k]) for k in kinds]

    @staticmethod
    def kind_colors(kinds: Iterable[str]) -> NDArray[np.uint8]:
        """Per-feature RGBA colours of facilities of these kinds."""
        return np.asarray(rgba_table(list(kinds), FACILITY_COLORS, DEFAULT_FACILITY_COLOR), dtype=np.uint8)
