"""The reviewed model as the checks see it: the open IFC file, its georeference, and per-element plan
geometry in the metric Gauss–Krüger zone of the site.

This is the one module of :mod:`cim.review` that uses the IFC readers of :mod:`ingest` (opening the file,
georeference, the geometry iterator), imported inside :func:`load_model` as the API's job runner does, so
the review measures exactly what an approval would ingest.

Frames: ``x``/``y`` are metres in the CGCS2000 3-degree Gauss–Krüger zone ``zone_epsg`` (EPSG:4534–4554,
x east, y north) of the model's centre; heights are normal heights in metres (1985 datum); ``centre_model``
is in the model's own world coordinates (metres), the frame of BCF viewpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ifcopenshell
import numpy as np
import shapely
from numpy.typing import NDArray

from cim import crs
from cim.errors import CimError, ReviewError

log = logging.getLogger(__name__)

NOT_ENVELOPE = ("IfcSpace", "IfcSite", "IfcGeographicElement", "IfcAnnotation")
"""Products that are not part of the building's envelope (for height, footprint, shadows)."""
BELOW_GROUND_CLASSES = ("IfcFooting", "IfcPile")
GREEN_WORDS = ("GREEN", "VEGETATION", "绿地", "绿化", "LAWN", "GRASS")


@dataclass
class Elements:
    """Plan geometry of the model's elements with a body, row i = element i (metric zone, normal heights)."""

    global_ids: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    step_ids: list[int] = field(default_factory=list)
    hulls: NDArray[Any] = field(default_factory=lambda: np.zeros(0, dtype=object))
    zmin: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    zmax: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    plan_area: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    centre_model: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    centre_lonlat: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    envelope: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    green: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.global_ids)


@dataclass
class ReviewModel:
    """An opened IFC model with what every check needs; geometry only when it has a georeference."""

    path: Path
    file_name: str
    sha256: str
    size_bytes: int
    ifc: ifcopenshell.file
    schema: str
    georef: Any = None
    georef_error: str | None = None
    zone_epsg: Any = None  # EPSG code of the GK zone, or a tangent-plane SourceCrs outside China
    elements: Elements = field(default_factory=Elements)
    buildings: list[ifcopenshell.entity_instance] = field(default_factory=list)
    psets: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    storeys_below_ground: set[int] = field(default_factory=set)
    failed_geometry: list[str] = field(default_factory=list)
    mesh_vertices: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    mesh_triangles: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    mesh_element: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def located(self) -> bool:
        """True when the model could be placed on the map (georeference found and geometry computed)."""
        return self.georef is not None and self.zone_epsg is not None

    @property
    def building_global_ids(self) -> tuple[str, ...]:
        """GlobalIds of the model's IfcBuilding (or IFC 4.3 facility) entities."""
        return tuple(str(b.GlobalId) for b in self.buildings)

    def base_height(self) -> float:
        """Normal height (m) of the building's ±0 ground: the lowest bottom of above-ground envelope elements."""
        e = self.elements
        above = e.envelope & ~self._below_ground_mask()
        chosen = e.zmin[above] if above.any() else e.zmin[e.envelope] if e.envelope.any() else e.zmin
        return float(chosen.min()) if len(chosen) else 0.0

    def top_height(self) -> float:
        """Normal height (m) of the highest point of the envelope."""
        e = self.elements
        chosen = e.zmax[e.envelope] if e.envelope.any() else e.zmax
        return float(chosen.max()) if len(chosen) else 0.0

    def _below_ground_mask(self) -> NDArray[np.bool_]:
        e = self.elements
        return (
            np.array(
                [
                    c in BELOW_GROUND_CLASSES or s in self.below_ground_steps
                    for c, s in zip(e.classes, e.step_ids, strict=True)
                ],
                dtype=bool,
            )
            if len(e)
            else np.zeros(0, dtype=bool)
        )

    @property
    def below_ground_steps(self) -> set[int]:
        """Step ids of elements contained in storeys whose elevation is below zero (basements)."""
        return self.storeys_below_ground

    def above_ground_envelope(self) -> NDArray[np.bool_]:
        """Mask of the envelope elements that stand above ground (what footprint and shadows are made of)."""
        return self.elements.envelope & ~self._below_ground_mask()

    def footprint(self) -> shapely.Geometry:
        """Plan outline (metric zone) of the above-ground envelope: union of the element hulls."""
        mask = self.above_ground_envelope()
        hulls = self.elements.hulls[mask]
        polygons = hulls[shapely.get_type_id(hulls) == 3] if len(hulls) else hulls
        return shapely.union_all(polygons) if len(polygons) else shapely.Polygon()

    def pset_value(self, entity: ifcopenshell.entity_instance, pset: str, name: str) -> Any:
        """A property (or quantity) value of an entity, ``None`` when absent."""
        return self.psets.get(entity.id(), {}).get(pset, {}).get(name)


def _elements_below_ground(model: ifcopenshell.file) -> set[int]:
    below: set[int] = set()
    for rel in model.by_type("IfcRelContainedInSpatialStructure"):
        storey = rel.RelatingStructure
        if storey.is_a("IfcBuildingStorey") and storey.Elevation is not None and float(storey.Elevation) < -0.01:
            below.update(e.id() for e in rel.RelatedElements or ())
    return below


def _is_green(product: ifcopenshell.entity_instance) -> bool:
    if not product.is_a("IfcGeographicElement") and not product.is_a("IfcSpace"):
        return False
    words = " ".join(
        str(v)
        for v in (
            getattr(product, "ObjectType", None),
            getattr(product, "PredefinedType", None),
            getattr(product, "LongName", None),
            product.Name,
        )
        if v
    ).upper()
    if product.is_a("IfcGeographicElement") and str(getattr(product, "PredefinedType", "")) == "TERRAIN":
        return any(w in words for w in GREEN_WORDS[2:])
    return any(w in words for w in GREEN_WORDS)


def plan_meshes(ifc: ifcopenshell.file, products: list[Any], *, threads: int | None = None) -> Any:
    """Meshes of ``products`` in world coordinates (metres) without opening subtractions.

    Openings do not change an element's plan hull or its heights, and subtracting them is most of the
    geometry time of a real model; ingest (approval) still computes them with :mod:`ingest.ifc_geometry`.
    """
    import ifcopenshell.geom

    from ingest.ifc_geometry import MeshBatch, default_threads

    batch = MeshBatch()
    if not products:
        return iter(())
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    settings.set("no-normals", True)
    settings.set("weld-vertices", True)
    settings.set("disable-opening-subtractions", True)
    iterator = ifcopenshell.geom.iterator(settings, ifc, threads or default_threads(), include=products)
    wanted = {p.id() for p in products}
    if iterator.initialize():
        while True:
            shape = iterator.get()
            if int(shape.id) in wanted:
                geometry = shape.geometry
                verts = np.frombuffer(geometry.verts_buffer, dtype=np.float64).reshape(-1, 3)
                faces = np.frombuffer(geometry.faces_buffer, dtype=np.int32).reshape(-1, 3)
                if len(faces):
                    wanted.discard(int(shape.id))
                    batch.step_ids.append(int(shape.id))
                    batch.vertex_chunks.append(verts.copy())
                    batch.triangle_chunks.append(faces.astype(np.int64))
                    batch.color_rows.append(None)
            if not iterator.next():
                break
    return iter([batch] if len(batch) else [])


def load_model(
    path: Path,
    *,
    file_name: str | None = None,
    sha256: str,
    size_bytes: int,
    threads: int | None = None,
    on_element: Callable[[int], None] | None = None,
) -> ReviewModel:
    """Open ``path`` (an IFC-SPF file), find its georeference and compute the plan geometry of its elements.

    Raises :class:`ReviewError` when the file cannot be opened at all; a missing georeference is recorded in
    ``georef_error`` (the georef check reports it) and leaves the geometry empty.
    """
    from ingest.ifc_geometry import body_products
    from ingest.ifc_georef import georeference_of
    from ingest.ifc_model import open_model
    from ingest.ifc_properties import facilities, property_sets

    try:
        ifc, schema = open_model(path)
    except CimError as exc:
        raise ReviewError(str(exc).replace("ingest", "review")) from exc
    review = ReviewModel(
        path=path, file_name=file_name or path.name, sha256=sha256, size_bytes=size_bytes, ifc=ifc, schema=schema
    )
    review.psets = property_sets(ifc)
    review.buildings = facilities(ifc)
    review.storeys_below_ground = _elements_below_ground(ifc)
    try:
        review.georef = georeference_of(ifc)
    except CimError as exc:
        review.georef_error = str(exc).replace("; nothing was stored", "")
        return review

    products = body_products(ifc)
    by_id = {p.id(): p for p in products}
    chunks: list[tuple[list[int], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]] = []
    try:
        for batch in plan_meshes(ifc, products, threads=threads):
            vertices, triangles, voff, toff = batch.arrays()
            chunks.append((list(batch.step_ids), vertices, triangles, voff, toff))
    except Exception as exc:  # the iterator raises plain RuntimeErrors on broken geometry
        raise ReviewError(f"{review.file_name}: the model's geometry could not be computed ({exc})") from exc
    _plan_geometry(review, chunks, by_id)
    return review


def _plan_geometry(
    review: ReviewModel,
    chunks: list[tuple[list[int], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]],
    by_id: dict[int, ifcopenshell.entity_instance],
) -> None:
    """Transform every batch to lon/lat and the metric zone; per element: hull, heights, plan area, centre."""
    if not chunks:
        review.zone_epsg = None
        review.georef_error = review.georef_error or "the model has no element with a body geometry to place"
        return
    step_ids = [s for c in chunks for s in c[0]]
    counts = np.concatenate([np.diff(c[3]) for c in chunks])
    tri_counts = np.concatenate([np.diff(c[4]) for c in chunks])
    offsets = np.cumsum([0] + [len(c[1]) for c in chunks[:-1]])
    vertices = np.concatenate([c[1] for c in chunks])
    triangles = np.concatenate([c[2] + off for c, off in zip(chunks, offsets, strict=True)])
    lon, lat, h = review.georef.to_geodetic(vertices)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()) or np.abs(lat).max() > 90 or np.abs(lon).max() > 180:
        review.georef_error = (
            f"the model's coordinates fall off the globe with its georeference ({review.georef.crs_in})"
        )
        review.georef = None
        return
    try:
        zone: Any = crs.gk_zone_epsg(float(np.median(lon)))
    except CimError:  # outside China's zones (the georef check says so): a plane tangent at the model
        zone = crs.parse_crs(
            f"+proj=tmerc +lat_0={float(np.median(lat))!r} +lon_0={float(np.median(lon))!r} +k=1 +x_0=0 +y_0=0 "
            f"{crs.CGCS2000_ELLIPSOID} +units=m +no_defs"
        )
    x, y = crs.transform_xy(lon, lat, crs.CGCS2000, zone)
    review.zone_epsg = zone
    element_of_vertex = np.repeat(np.arange(len(step_ids)), counts)
    element_of_triangle = np.repeat(np.arange(len(step_ids)), tri_counts)
    n = len(step_ids)
    zmin = np.full(n, np.inf)
    zmax = np.full(n, -np.inf)
    np.minimum.at(zmin, element_of_vertex, h)
    np.maximum.at(zmax, element_of_vertex, h)
    points = shapely.points(np.column_stack([x, y]))
    hulls = shapely.convex_hull(shapely.multipoints(points, indices=element_of_vertex))
    # Plan area of each element: its upward-facing triangles projected (exact for closed solids).
    xy = np.column_stack([x, y])
    a, b, c = xy[triangles[:, 0]], xy[triangles[:, 1]], xy[triangles[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    up = np.where(cross > 0, cross / 2.0, 0.0)
    plan_area = np.bincount(element_of_triangle, weights=up, minlength=n).astype(np.float64)
    sums = np.zeros((n, 3))
    np.add.at(sums, element_of_vertex, vertices)
    centre_model = sums / np.maximum(counts, 1)[:, None]
    ll = np.zeros((n, 3))
    np.add.at(ll, element_of_vertex, np.column_stack([lon, lat, h]))
    products = [by_id[s] for s in step_ids]
    classes = [p.is_a() for p in products]
    e = review.elements
    e.global_ids = [str(p.GlobalId) for p in products]
    e.classes = classes
    e.names = [p.Name for p in products]
    e.step_ids = step_ids
    e.hulls = np.asarray(hulls, dtype=object)
    e.zmin, e.zmax, e.plan_area = zmin, zmax, plan_area
    e.centre_model = centre_model
    e.centre_lonlat = ll / np.maximum(counts, 1)[:, None]
    e.envelope = np.array([not any(p.is_a(c) for c in NOT_ENVELOPE) for p in products], dtype=bool)
    e.green = np.array([_is_green(p) for p in products], dtype=bool)
    review.mesh_vertices = np.column_stack([lon, lat, h])
    review.mesh_triangles = triangles
    review.mesh_element = element_of_triangle
    review.failed_geometry = sorted(str(by_id[i].GlobalId) for i in by_id.keys() - set(step_ids))
