"""``sunlight`` (日照): no neighbouring residential building may be pushed below the sunlight standard of
GB 50180-2018 (table 4.0.9; by default 大寒日 ≥ 2 h within 08:00–16:00 true solar time) by the new building.

Windows are sampled on the ground-floor sill (``sill_height_m`` above the building base) of every sun-facing
façade of each residential neighbour within reach of the new building's shadow. Sunlight hours are counted
on the stored city (without the buildings the model replaces) with and without the new building; obstacles
are vertical prisms: stored buildings from footprint and heights, the model as the stepped envelope of its
above-ground elements. A window already below the standard must not lose more.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from cim.review.findings import Finding
from cim.review.neighbours import Neighbour, neighbour_buildings
from cim.review.registry import ReviewContext, register
from cim.review.sunshade import SunPath, Walls, blocked, facade_points, facing, sun_path, walls_of

BAND_ROUND_M = 0.1
MIN_BAND_GAIN_M2 = 1.0


def model_prisms(context: ReviewContext) -> list[tuple[shapely.Geometry, float, float]]:
    """The model's above-ground envelope as stacked prisms (plan polygon, base, top), highest first."""
    model = context.model
    e = model.elements
    mask = model.above_ground_envelope()
    if not mask.any():
        return []
    base = model.base_height()
    hulls = e.hulls[mask]
    tops = np.round(e.zmax[mask] / BAND_ROUND_M) * BAND_ROUND_M
    keep = shapely.get_type_id(hulls) == 3
    hulls, tops = hulls[keep], tops[keep]
    prisms: list[tuple[shapely.Geometry, float, float]] = []
    kept_area = 0.0
    for level in np.unique(tops)[::-1]:
        polygon = shapely.union_all(hulls[tops >= level - 1e-9])
        if polygon.area - kept_area > MIN_BAND_GAIN_M2:
            prisms.append((shapely.simplify(polygon, 0.05), base, float(level)))
            kept_area = polygon.area
    return prisms


def _hours(points: NDArray[np.float64], normals: NDArray[np.float64], path: SunPath, walls: Walls) -> NDArray[np.bool_]:
    """(points, times) sunlit mask against ``walls``."""
    return facing(normals, path) & ~blocked(points, path, walls)


def _neighbour_walls(neighbours: list[Neighbour]) -> Walls:
    return walls_of([(n.footprint, n.base, n.top) for n in neighbours])


def _near(walls: Walls, box: tuple[float, float, float, float], min_slope: float, z: float, north: bool) -> Walls:
    """Walls that could shade a window of height ``z`` inside ``box``: taller than ``z`` and within the
    horizontal reach of their own top over the lowest sun ((top − z) / tan altitude); with ``north`` false
    (the sun stays in the southern half of the sky) walls wholly north of the box are left out too."""
    if not len(walls):
        return walls
    x0, y0, x1, y1 = box
    reach = np.maximum(walls.top - z, 0.0) / min_slope
    lo_x = np.minimum(walls.a[:, 0], walls.b[:, 0])
    hi_x = np.maximum(walls.a[:, 0], walls.b[:, 0])
    lo_y = np.minimum(walls.a[:, 1], walls.b[:, 1])
    hi_y = np.maximum(walls.a[:, 1], walls.b[:, 1])
    mask = (hi_x >= x0 - reach) & (lo_x <= x1 + reach) & (hi_y >= y0 - reach) & (walls.top > z)
    mask &= (lo_y <= y1 + reach) if north else (lo_y <= y1)
    return walls.subset(mask)


@register("sunlight", title_zh="日照分析", title_en="Sunlight (GB 50180)", needs=("model", "georef", "database"))
def check_sunlight(context: ReviewContext) -> list[Finding]:
    """Hours of sunlight of neighbouring residential windows with and without the model."""
    settings = context.review_settings
    standard = settings.sunlight()
    model = context.model
    lon, lat = (float(v) for v in np.median(model.elements.centre_lonlat[:, :2], axis=0))
    path = sun_path(standard, settings.sunlight_year, lon, lat, settings.sunlight_step_minutes)
    up = path.altitude_deg > 0
    min_slope = float(np.tan(np.radians(max(path.altitude_deg[up].min(), 1.0)))) if up.any() else 1.0
    prisms = model_prisms(context)
    top = max((p[2] for p in prisms), default=model.top_height())
    footprint = model.footprint()
    shadow_reach = min(settings.sunlight_radius_m, max(0.0, top - model.base_height()) / min_slope)
    # Buildings beyond the shadow's reach still shade the receptors (before and after alike).
    neighbours = neighbour_buildings(context, 2.0 * shadow_reach)
    kept = [n for n in neighbours if not n.replaced]
    replaced = [n for n in neighbours if n.replaced]
    walls_kept, walls_replaced, walls_new = _neighbour_walls(kept), _neighbour_walls(replaced), walls_of(prisms)
    receptors = [
        n
        for n in kept
        if str(n.row.get("use") or "") in settings.residential_uses
        and shapely.distance(footprint, n.footprint) <= max(0.0, top - n.base) / min_slope
    ]
    findings: list[Finding] = [
        Finding(
            rule="sunlight.standard",
            severity="info",
            message_zh=f"日照标准：{standard.label_zh}；标准日 {path.date.isoformat()}，时间步长 "
            f"{settings.sunlight_step_minutes:g} 分钟；检查 {len(receptors)} 栋住宅。",
            message_en=f"Standard: {standard.label_en}; day {path.date.isoformat()}, step "
            f"{settings.sunlight_step_minutes:g} min; {len(receptors)} residential buildings examined.",
            limit=standard.min_hours,
            value=float(len(receptors)),
            unit="buildings",
        )
    ]
    required = standard.min_hours
    eps = path.step_hours / 2.0
    for receptor in receptors:
        z = receptor.base + settings.sill_height_m
        points, normals = facade_points(receptor.footprint, z, settings.sunlight_sample_spacing_m)
        if not len(points):
            continue
        box = (*receptor.footprint.bounds,)
        north = bool((path.directions[path.altitude_deg > 0, 1] > 0).any())
        lit = facing(normals, path) & (path.altitude_deg > 0)[None, :]
        kept_block = blocked(points, path, _near(walls_kept, box, min_slope, z, north), lit)
        open_sky = lit & ~kept_block
        before = open_sky & ~blocked(points, path, _near(walls_replaced, box, min_slope, z, north), open_sky)
        after = open_sky & ~blocked(points, path, _near(walls_new, box, min_slope, z, north), open_sky)
        hours_before = before.sum(axis=1) * path.step_hours
        hours_after = after.sum(axis=1) * path.step_hours
        lost = hours_after < hours_before - eps
        if not lost.any():
            continue
        pushed = lost & (hours_before >= required - eps) & (hours_after < required - eps)
        worsened = lost & (hours_before < required - eps)
        worst = int(np.argmin(np.where(lost, hours_after, np.inf)))
        detail: dict[str, Any] = {
            "building_id": receptor.id,
            "building_name": receptor.row.get("name"),
            "hours_before": round(float(hours_before.min()), 3),
            "hours_after": round(float(hours_after.min()), 3),
            "windows": len(points),
            "windows_losing_sun": int(lost.sum()),
            "windows_pushed_below": int(pushed.sum()),
            "worst_window": {
                "x": round(float(points[worst, 0]), 2),
                "y": round(float(points[worst, 1]), 2),
                "z": round(float(points[worst, 2]), 2),
                "hours_before": round(float(hours_before[worst]), 3),
                "hours_after": round(float(hours_after[worst]), 3),
            },
        }
        failing = bool(pushed.any() or worsened.any())
        hb, ha = float(hours_before[worst]), float(hours_after[worst])
        findings.append(
            Finding(
                rule="sunlight.pushed_below" if failing else "sunlight.reduced",
                severity="error" if failing else "info",
                message_zh=f"住宅“{receptor.label}”底层窗台日照由 {hb:.2f} h 降至 {ha:.2f} h"
                + (
                    f"，低于标准 {required:g} h（{int(pushed.sum() + worsened.sum())} 个窗位）。"
                    if failing
                    else "，仍满足标准。"
                ),
                message_en=f"Residential building '{receptor.label}': ground-floor sill sunlight drops from {hb:.2f} h "
                f"to {ha:.2f} h"
                + (
                    f", below the {required:g} h standard ({int(pushed.sum() + worsened.sum())} windows)."
                    if failing
                    else ", still meeting the standard."
                ),
                global_ids=model.building_global_ids,
                value=ha,
                limit=required,
                unit="h",
                detail=detail,
            )
        )
    return findings
