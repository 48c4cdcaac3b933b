"""A reviewed model's own temporary 3D Tiles tileset (one tile), so the viewer can place it in the city
before it is approved: ``<data_dir>/tiles/review-<id>/`` with ``tileset.json`` and ``model.glb``.

The glb carries the ``element`` metadata class of the city tileset (``global_id``, ``ifc_class``, ``name``…)
so the viewer picks and highlights elements by GlobalId; positions are in an east-north-up frame at the
model's centre (the root transform), heights ellipsoidal = normal + the deployment's height anomaly.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from cim import crs
from cim.review.model import ReviewModel
from cim.settings import Settings


def review_tileset_dir(settings: Settings, review_id: int) -> Path:
    """Folder of a review's tileset (served under ``/tiles/review-<id>/``)."""
    return settings.data_path / "tiles" / f"review-{review_id}"


def write_review_tileset(model: ReviewModel, settings: Settings, review_id: int) -> Path | None:
    """Write the model's meshes as a one-tile 3D Tiles 1.1 tileset; ``None`` when it has no placed geometry."""
    from tiles.geometry import triangle_soup
    from tiles.glb import PropertyTable, write_glb
    from tiles.render import local_primitive
    from tiles.schema import ELEMENT_COLORS, SCHEMA, rgba_table

    if not model.located or not len(model.mesh_triangles):
        return None
    zeta = settings.height_anomaly
    lon, lat, h = model.mesh_vertices[:, 0], model.mesh_vertices[:, 1], model.mesh_vertices[:, 2]
    ecef = crs.geodetic_to_geocentric(lon, lat, h, height_anomaly=zeta)
    mesh = triangle_soup(ecef[model.mesh_triangles], model.mesh_element)
    matrix = crs.enu_to_ecef_matrix(
        float((lon.min() + lon.max()) / 2), float((lat.min() + lat.max()) / 2), float(h.min()), height_anomaly=zeta
    )
    centre, rot = matrix[:3, 3], matrix[:3, :3]
    e = model.elements
    colors = rgba_table(list(e.classes), ELEMENT_COLORS, (200, 200, 200))
    table = PropertyTable(
        "element",
        len(e),
        {
            "global_id": list(e.global_ids),
            "ifc_class": list(e.classes),
            "name": [n or "" for n in e.names],
            "storey": [""] * len(e),
            "building_id": np.full(len(e), -1, dtype=np.int64),
        },
    )
    primitive = local_primitive(mesh, colors, centre, rot, len(e))
    glb = write_glb([primitive], [table])
    region = [
        math.radians(float(lon.min())),
        math.radians(float(lat.min())),
        math.radians(float(lon.max())),
        math.radians(float(lat.max())),
        float(h.min()) + zeta,
        float(h.max()) + zeta,
    ]
    tileset = {
        "asset": {"version": "1.1", "generator": "cim review"},
        "schema": SCHEMA,
        "geometricError": 100.0,
        "root": {
            "boundingVolume": {"region": region},
            "geometricError": 0.0,
            "refine": "ADD",
            "transform": matrix.T.ravel().tolist(),
            "content": {"uri": "model.glb"},
        },
    }
    out = review_tileset_dir(settings, review_id)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "model.glb").write_bytes(glb)
    (out / "tileset.json").write_text(json.dumps(tileset, separators=(",", ":")), encoding="utf-8")
    return out
