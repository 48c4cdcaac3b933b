"""Vectorised sunlight geometry: sun directions over a standard day (pvlib), obstacles as vertical prisms,
and a ray test of many window points against many prism walls at once.

A ray from a window towards the sun rises, so it can enter a prism only through a wall: it is blocked
exactly when it crosses a wall segment at a height between the prism's base and top. Frames: x east,
y north (metres of the site's Gauss–Krüger zone), heights in metres (normal heights).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib
import shapely
from numpy.typing import NDArray

from cim.review.settings import SunlightStandard

RAYS_X_EDGES_PER_CHUNK = 4_000_000


@dataclass(frozen=True)
class SunPath:
    """Sun positions at the mid-points of equal time steps of the standard day's band (true solar time)."""

    solar_hours: NDArray[np.float64]
    altitude_deg: NDArray[np.float64]
    azimuth_deg: NDArray[np.float64]
    step_hours: float
    date: dt.date

    @property
    def directions(self) -> NDArray[np.float64]:
        """Unit horizontal directions towards the sun, (n, 2) x east, y north."""
        az = np.radians(self.azimuth_deg)
        return np.column_stack([np.sin(az), np.cos(az)])

    @property
    def slopes(self) -> NDArray[np.float64]:
        """Rise of a sun ray per horizontal metre (tan of the altitude; negative below the horizon)."""
        return np.tan(np.radians(self.altitude_deg))


def sun_path(standard: SunlightStandard, year: int, lon: float, lat: float, step_minutes: float) -> SunPath:
    """Sun positions (pvlib SPA, apparent altitude) for the standard's day and band at ``lon``, ``lat`` degrees.

    True solar time = UTC + longitude/15 h + equation of time (Spencer 1971), so the band 08:00–16:00 is
    centred on the local solar noon.
    """
    month, day = (int(p) for p in standard.day.split("-"))
    date = dt.date(year, month, day)
    step = step_minutes / 60.0
    count = max(1, round((standard.end - standard.start) / step))
    solar = standard.start + (np.arange(count) + 0.5) * (standard.end - standard.start) / count
    eot_minutes = float(pvlib.solarposition.equation_of_time_spencer71(date.timetuple().tm_yday))
    utc_hours = solar - lon / 15.0 - eot_minutes / 60.0
    midnight = pd.Timestamp(date, tz="UTC")
    times = pd.DatetimeIndex(midnight + pd.to_timedelta(utc_hours, unit="h"))
    position = pvlib.solarposition.get_solarposition(times, lat, lon)
    return SunPath(
        solar_hours=solar,
        altitude_deg=position["apparent_elevation"].to_numpy(dtype=np.float64),
        azimuth_deg=position["azimuth"].to_numpy(dtype=np.float64),
        step_hours=(standard.end - standard.start) / count,
        date=date,
    )


@dataclass
class Walls:
    """Wall segments of vertical prisms: ends ``a``/``b`` (n, 2), base and top heights (n,)."""

    a: NDArray[np.float64]
    b: NDArray[np.float64]
    base: NDArray[np.float64]
    top: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, mask: NDArray[np.bool_]) -> Walls:
        """The walls where ``mask`` is true."""
        return Walls(self.a[mask], self.b[mask], self.base[mask], self.top[mask])


def walls_of(prisms: list[tuple[shapely.Geometry, float, float]]) -> Walls:
    """Wall segments of prisms given as (plan polygon, base height, top height)."""
    a: list[NDArray[np.float64]] = []
    b: list[NDArray[np.float64]] = []
    base: list[NDArray[np.float64]] = []
    top: list[NDArray[np.float64]] = []
    for polygon, low, high in prisms:
        if polygon.is_empty or high <= low:
            continue
        rings = shapely.get_rings(shapely.get_parts(polygon))
        for ring in rings:
            xy = shapely.get_coordinates(ring)
            if len(xy) < 2:
                continue
            a.append(xy[:-1])
            b.append(xy[1:])
            base.append(np.full(len(xy) - 1, low))
            top.append(np.full(len(xy) - 1, high))
    if not a:
        return Walls(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    return Walls(np.concatenate(a), np.concatenate(b), np.concatenate(base), np.concatenate(top))


def blocked(
    points: NDArray[np.float64], path: SunPath, walls: Walls, only: NDArray[np.bool_] | None = None
) -> NDArray[np.bool_]:
    """(points, times) mask: the ray from each point (x, y, z) towards the sun at each time crosses a wall.

    Below-horizon times count as blocked; rays outside ``only`` (a (points, times) mask) are not tested and
    come back unblocked. Vectorised over rays × walls in chunks.
    """
    m, n = len(points), len(path.solar_hours)
    out = np.zeros((m, n), dtype=bool)
    out[:, path.altitude_deg <= 0] = True
    if only is not None:
        out |= ~only
    if not len(walls) or not m:
        if only is not None:
            out &= only | (path.altitude_deg <= 0)[None, :]
        return out
    d = path.directions
    s = path.slopes
    ox = np.repeat(points[:, 0], n)
    oy = np.repeat(points[:, 1], n)
    oz = np.repeat(points[:, 2], n)
    dx = np.tile(d[:, 0], m)
    dy = np.tile(d[:, 1], m)
    sl = np.tile(s, m)
    flat = out.reshape(-1)
    live = np.flatnonzero(~flat)
    ex = walls.b[:, 0] - walls.a[:, 0]
    ey = walls.b[:, 1] - walls.a[:, 1]
    chunk = max(1, RAYS_X_EDGES_PER_CHUNK // max(len(walls), 1))
    for start in range(0, len(live), chunk):
        idx = live[start : start + chunk]
        wx = walls.a[None, :, 0] - ox[idx, None]
        wy = walls.a[None, :, 1] - oy[idx, None]
        rdx, rdy = dx[idx, None], dy[idx, None]
        denom = rdx * ey[None, :] - rdy * ex[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (wx * ey[None, :] - wy * ex[None, :]) / denom
            u = (wx * rdy - wy * rdx) / denom
        z = oz[idx, None] + t * sl[idx, None]
        hit = (
            (np.abs(denom) > 1e-12)
            & (t > 1e-6)
            & (u >= 0.0)
            & (u <= 1.0)
            & (z >= walls.base[None, :])
            & (z <= walls.top[None, :])
        )
        flat[idx] = hit.any(axis=1)
    if only is not None:
        out &= only | (path.altitude_deg <= 0)[None, :]
    return out


def facade_points(
    footprint: shapely.Geometry, z: float, spacing: float, offset: float = 0.1
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Window points on a footprint's sun-facing façades: (k, 3) x, y, z and their outward normals (k, 2).

    A façade faces the sun when its outward normal points south of the east–west line (the sun's side at
    these latitudes in winter); points every ``spacing`` metres, ``offset`` metres in front of the wall.
    """
    points: list[NDArray[np.float64]] = []
    normals: list[NDArray[np.float64]] = []
    for part in shapely.get_parts(footprint):
        ring = shapely.get_coordinates(shapely.orient_polygons(part, exterior_cw=False).exterior)
        for (x0, y0), (x1, y1) in itertools.pairwise(ring):
            ex, ey = x1 - x0, y1 - y0
            length = float(np.hypot(ex, ey))
            if length < 1e-6:
                continue
            nx, ny = ey / length, -ex / length  # outward for a counter-clockwise exterior
            if ny >= -1e-9:
                continue
            count = max(1, int(length // spacing))
            f = (np.arange(count) + 0.5) / count
            px = x0 + f * ex + offset * nx
            py = y0 + f * ey + offset * ny
            points.append(np.column_stack([px, py, np.full(count, z)]))
            normals.append(np.tile([nx, ny], (count, 1)))
    if not points:
        return np.zeros((0, 3)), np.zeros((0, 2))
    return np.concatenate(points), np.concatenate(normals)


def facing(normals: NDArray[np.float64], path: SunPath) -> NDArray[np.bool_]:
    """(points, times) mask: the sun is in front of the façade (positive horizontal incidence)."""
    result: NDArray[np.bool_] = (normals @ path.directions.T) > 1e-9
    return result
