"""Triangle meshes of a whole IFC model in one pass of ``ifcopenshell.geom.iterator``.

Meshes come out in the model's world (engineering) coordinates, in metres whatever the file's length
unit, grouped in batches so the georeferencing and the WKB encoding run vectorised over many elements.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import ifcopenshell
import ifcopenshell.geom
import numpy as np
from numpy.typing import NDArray

DEFAULT_THREADS = 1
"""Geometry threads by default: measured on the 2-core reference machine (see README), one thread is as
fast as two once the ingest's own NumPy/database work runs alongside; ``CIM_IFC_THREADS`` overrides."""

BODY_IDENTIFIERS = frozenset({"Body", "Facetation"})
NOT_ELEMENTS = ("IfcOpeningElement", "IfcVirtualElement", "IfcAnnotation", "IfcGrid")
"""Products whose shape is not a physical body of their own (openings are subtracted from their hosts)."""

log = logging.getLogger(__name__)


def has_body(product: ifcopenshell.entity_instance) -> bool:
    """True when a product has a 3D body representation (``Body`` or ``Facetation`` identifier)."""
    shape = getattr(product, "Representation", None)
    if shape is None:
        return False
    return any(rep.RepresentationIdentifier in BODY_IDENTIFIERS for rep in shape.Representations or ())


def body_products(model: ifcopenshell.file) -> list[ifcopenshell.entity_instance]:
    """Every product of the model with a body representation, except openings and other non-physical ones."""
    excluded: set[int] = set()
    for cls in NOT_ELEMENTS:
        try:
            excluded.update(item.id() for item in model.by_type(cls))
        except RuntimeError:  # the class does not exist in this schema
            continue
    return [p for p in model.by_type("IfcProduct") if p.id() not in excluded and has_body(p)]


def geometry_settings() -> ifcopenshell.geom.settings:
    """Iterator settings: world coordinates in metres, triangulated, no normals (not stored)."""
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    settings.set("no-normals", True)
    settings.set("weld-vertices", True)
    return settings


def default_threads() -> int:
    """Geometry threads: ``CIM_IFC_THREADS`` when set, else :data:`DEFAULT_THREADS`."""
    value = os.environ.get("CIM_IFC_THREADS")
    return max(1, int(value)) if value else DEFAULT_THREADS


@dataclass
class MeshBatch:
    """Meshes of several elements in concatenated arrays (world coordinates, metres).

    ``vertices`` (V, 3) float64; ``triangles`` (T, 3) int64 indices into ``vertices``;
    ``vertex_offsets`` / ``triangle_offsets`` (n + 1) delimit element i's rows; ``colors`` (n, 4) RGBA 0..1.
    """

    step_ids: list[int] = field(default_factory=list)
    vertex_chunks: list[NDArray[np.float64]] = field(default_factory=list)
    triangle_chunks: list[NDArray[np.int64]] = field(default_factory=list)
    color_rows: list[tuple[float, float, float, float] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.step_ids)

    def arrays(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """(vertices, triangles with global indices, vertex_offsets, triangle_offsets)."""
        vcounts = np.array([len(v) for v in self.vertex_chunks], dtype=np.int64)
        tcounts = np.array([len(t) for t in self.triangle_chunks], dtype=np.int64)
        voff = np.concatenate([[0], np.cumsum(vcounts)])
        toff = np.concatenate([[0], np.cumsum(tcounts)])
        vertices = np.concatenate(self.vertex_chunks) if self.vertex_chunks else np.zeros((0, 3))
        triangles = np.concatenate(self.triangle_chunks) if self.triangle_chunks else np.zeros((0, 3), dtype=np.int64)
        triangles = triangles + np.repeat(voff[:-1], tcounts)[:, None]
        return vertices, triangles, voff, toff


def _color_of(geometry: object) -> tuple[float, float, float, float] | None:
    materials = getattr(geometry, "materials", None)
    if not materials:
        return None
    material = materials[0]
    try:
        r, g, b = (float(c) for c in material.diffuse.components)
        transparency = float(material.transparency)
        alpha = 1.0 - transparency if 0.0 <= transparency <= 1.0 else 1.0
    except (AttributeError, TypeError, ValueError):
        return None
    if not all(0.0 <= c <= 1.0 for c in (r, g, b)):
        return None
    return (r, g, b, alpha)


def iterate_meshes(
    model: ifcopenshell.file,
    products: list[ifcopenshell.entity_instance],
    *,
    threads: int | None = None,
    batch_triangles: int = 400_000,
    on_element: Callable[[int], None] | None = None,
) -> Iterator[MeshBatch]:
    """Run the geometry iterator once over ``products`` and yield their meshes in batches.

    Elements whose geometry fails are simply absent from the batches (the caller lists them); elements
    with an empty mesh likewise. ``on_element`` is called with the number of elements done so far.
    """
    if not products:
        return
    wanted = {p.id() for p in products}
    iterator = ifcopenshell.geom.iterator(geometry_settings(), model, threads or default_threads(), include=products)
    if not iterator.initialize():
        return
    batch = MeshBatch()
    triangles_in_batch = 0
    done = 0
    while True:
        shape = iterator.get()
        step_id = int(shape.id)
        if step_id in wanted:
            geometry = shape.geometry
            verts = np.frombuffer(geometry.verts_buffer, dtype=np.float64).reshape(-1, 3)
            faces = np.frombuffer(geometry.faces_buffer, dtype=np.int32).reshape(-1, 3)
            if len(faces):
                wanted.discard(step_id)
                batch.step_ids.append(step_id)
                batch.vertex_chunks.append(verts)
                batch.triangle_chunks.append(faces.astype(np.int64))
                batch.color_rows.append(_color_of(geometry))
                triangles_in_batch += len(faces)
            done += 1
            if on_element is not None:
                on_element(done)
            if triangles_in_batch >= batch_triangles:
                yield batch
                batch = MeshBatch()
                triangles_in_batch = 0
        if not iterator.next():
            break
    if len(batch):
        yield batch
