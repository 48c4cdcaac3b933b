"""Road and outline ribbons (tiles.geometry.ribbons): their width, their drape on the ground, mitred joins,
upward faces, one feature per line; and the widths by road class (tiles.classes.lines.road_widths)."""

from __future__ import annotations

import numpy as np
import shapely

from cim import crs
from tiles.classes.lines import road_widths
from tiles.geometry import ribbons

LON, LAT = 114.3, 30.6
M_PER_DEG = 111_320.0


def _heights(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return 20.0 + (lon - LON) * 1000.0  # a slope: 1 m per 0.001° eastwards


def test_a_ribbon_has_its_width_follows_the_ground_and_faces_up() -> None:
    line = shapely.LineString([(LON, LAT), (LON + 0.003, LAT)])
    mesh = ribbons(np.array([line], dtype=object), np.array([5.0]), _heights)
    left, right = mesh.positions[0::2], mesh.positions[1::2]
    assert np.allclose(np.linalg.norm(left - right, axis=1), 10.0, atol=1e-6)
    lon, lat, h = crs.geocentric_to_geodetic(mesh.positions)
    assert np.allclose(h, _heights(np.asarray(lon), np.asarray(lat)), atol=0.05)  # draped vertex by vertex
    assert len(mesh.positions) >= 2 * 10  # densified: 0.003° in ≤ 0.0003° steps
    tri = mesh.positions[mesh.indices.reshape(-1, 3)]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    up = crs.enu_to_ecef_matrix(LON, LAT, 0.0)[:3, 2]
    assert np.all(normal @ up > 0), "counter-clockwise seen from above"
    assert set(mesh.feature.tolist()) == {0}


def test_corners_are_mitred_and_parts_are_not_joined() -> None:
    corner = shapely.LineString([(LON, LAT), (LON + 0.0002, LAT), (LON + 0.0002, LAT + 0.0002)])
    apart = shapely.MultiLineString(
        [[(LON, LAT + 0.001), (LON + 0.0001, LAT + 0.001)], [(LON, LAT + 0.002), (LON, LAT + 0.0021)]]
    )
    mesh = ribbons(np.array([corner, apart], dtype=object), np.array([3.0, 1.0]), lambda lo, la: np.zeros(len(lo)))
    first = mesh.feature == 0
    pos = mesh.positions[first]
    coords = shapely.get_coordinates(shapely.segmentize(corner, 0.0003))
    k = int(np.argmin(np.abs(coords[:, 0] - (LON + 0.0002)) + np.abs(coords[:, 1] - LAT)))  # the corner vertex
    half = np.linalg.norm(pos[2 * k] - pos[2 * k + 1]) / 2
    assert np.isclose(half, np.sqrt(2) * 3.0, rtol=1e-3)  # the mitre of a right angle
    # Two parts of one multi-line: no triangle spans from one part to the other.
    tri = mesh.indices.reshape(-1, 3)
    second = tri[mesh.feature[tri[:, 0]] == 1]
    spans = np.ptp(mesh.positions[second].reshape(-1, 3, 3), axis=1).max(axis=1)
    assert spans.max() < 20.0 and mesh.feature[second].min() == 1


def test_road_widths_from_width_class_or_kind() -> None:
    widths = road_widths(
        ["road", "road", "road", "greenway", "ferry_line"],
        ["", "主干路", "Residential", "", ""],
        np.array([6.5, np.nan, np.nan, np.nan, np.nan]),
    )
    assert widths.tolist() == [6.5, 24.0, 8.0, 3.0, 2.0]
