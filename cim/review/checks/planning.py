"""``planning``: the model against the parcel and the planning zones stored in the database — height
(and the model's own ``Pset_SiteCommon.BuildingHeightLimit``), setbacks from the red line, floor-area ratio,
building density, green ratio and the fire-separation spacing of GB 50016 table 5.2.2 to the neighbours.

Measures: heights from the building's ±0 ground (lowest bottom of above-ground envelope elements) to its
highest point; areas in m² in the site's Gauss–Krüger zone, parcel area geodesic; GFA from quantity sets
(``Qto_BuildingBaseQuantities``, else the storeys' ``Qto_BuildingStoreyBaseQuantities``), else the plan area
of the above-ground floor slabs.
"""

from __future__ import annotations

from typing import Any

import ifcopenshell
import ifcopenshell.util.unit
import numpy as np
import shapely

from cim.db.review_queries import planning_zones_over
from cim.review import geometry
from cim.review.findings import Finding, Severity
from cim.review.neighbours import neighbour_buildings
from cim.review.registry import ReviewContext, register
from cim.review.settings import ReviewSettings

TOL = 1e-6
FIRE_GRADE_NAMES = ("FireResistanceGrade", "耐火等级", "fire_grade")
GRADE_ALIASES = {
    "一级": "1-2",
    "二级": "1-2",
    "一二级": "1-2",
    "1": "1-2",
    "2": "1-2",
    "I": "1-2",
    "II": "1-2",
    "三级": "3",
    "III": "3",
    "四级": "4",
    "IV": "4",
}
RESIDENTIAL_PREFIXES = ("R",)


def _limits(context: ReviewContext) -> dict[str, Any]:
    """Effective limits: the strictest of the parcel's and the overlapping planning zones' values."""
    cached = context.cache.get("limits")
    if cached is not None:
        return dict(cached)
    assert context.parcel is not None and context.engine is not None
    with context.engine.connect() as conn:
        zones = planning_zones_over(conn, bytes(context.parcel["geom"]))
    sources = [("parcel", context.parcel.get("code") or context.parcel["id"], context.parcel)]
    sources += [("zone", z.get("code") or z["id"], z) for z in zones]
    limits: dict[str, Any] = {}
    for key, pick in (("max_height", min), ("max_far", min), ("max_density", min), ("min_green_ratio", max)):
        values = [(float(s[key]), f"{kind} {code}") for kind, code, s in sources if s.get(key) is not None]
        if values:
            chosen = pick(values, key=lambda v: v[0])
            limits[key], limits[key + "_source"] = chosen
    setback = context.parcel.get("setback_m")
    if setback is None:
        setbacks = [float(z["setback_m"]) for z in zones if z.get("setback_m") is not None]
        setback = max(setbacks) if setbacks else None
    if setback is not None:
        limits["setback_m"] = float(setback)
    context.cache["limits"] = limits
    return dict(limits)


def _length_scale(ifc: ifcopenshell.file) -> float:
    return float(ifcopenshell.util.unit.calculate_unit_scale(ifc))


def _area_scale(ifc: ifcopenshell.file) -> float:
    return float(ifcopenshell.util.unit.calculate_unit_scale(ifc, "AREAUNIT"))


def site_height_limit(context: ReviewContext) -> tuple[float, str] | None:
    """``Pset_SiteCommon.BuildingHeightLimit`` of the model's site in metres, with the site's GlobalId."""
    model = context.model
    for site in model.ifc.by_type("IfcSite"):
        value = model.pset_value(site, "Pset_SiteCommon", "BuildingHeightLimit")
        if isinstance(value, int | float) and value > 0:
            return float(value) * _length_scale(model.ifc), str(site.GlobalId)
    return None


def gross_floor_area(context: ReviewContext) -> tuple[float, str]:
    """GFA in m² and how it was found: ``building`` / ``storeys`` quantity sets, else ``slabs``."""
    model = context.model
    scale = _area_scale(model.ifc)
    total = 0.0
    for building in model.buildings:
        value = model.pset_value(building, "Qto_BuildingBaseQuantities", "GrossFloorArea")
        if isinstance(value, int | float) and value > 0:
            total += float(value) * scale
    if total > 0:
        return total, "building"
    below = {s.id() for s in model.ifc.by_type("IfcBuildingStorey") if s.Elevation is not None and s.Elevation < -0.01}
    for storey in model.ifc.by_type("IfcBuildingStorey"):
        value = model.pset_value(storey, "Qto_BuildingStoreyBaseQuantities", "GrossFloorArea")
        if storey.id() not in below and isinstance(value, int | float) and value > 0:
            total += float(value) * scale
    if total > 0:
        return total, "storeys"
    e = model.elements
    above = model.above_ground_envelope()
    by_step = {p.id(): p for p in model.ifc.by_type("IfcSlab")}
    for i, step in enumerate(e.step_ids):
        slab = by_step.get(step)
        if slab is None or not above[i]:
            continue
        kind = str(getattr(slab, "PredefinedType", None) or "NOTDEFINED")
        if kind in ("ROOF", "LANDING"):
            continue
        total += float(e.plan_area[i])
    return total, "slabs"


def fire_category(height_m: float, residential: bool, grade: str | None, settings: ReviewSettings) -> str:
    """Row/column of GB 50016 table 5.2.2: ``high`` for high-rise buildings, else the fire-resistance grade."""
    threshold = settings.high_rise_residential_m if residential else settings.high_rise_m
    if height_m > threshold + TOL:
        return "high"
    grade = GRADE_ALIASES.get(str(grade).strip(), str(grade).strip()) if grade else settings.default_fire_grade
    return grade if grade in ("1-2", "3", "4") else settings.default_fire_grade


def _model_grade(context: ReviewContext) -> str | None:
    for building in context.model.buildings:
        for values in context.model.psets.get(building.id(), {}).values():
            for name in FIRE_GRADE_NAMES:
                if values.get(name):
                    return str(values[name])
    return None


def _row_grade(row: dict[str, Any]) -> str | None:
    attributes = row.get("attributes") or {}
    for name in FIRE_GRADE_NAMES:
        if attributes.get(name):
            return str(attributes[name])
    return None


def _model_is_residential(context: ReviewContext) -> bool:
    land_use = str((context.parcel or {}).get("land_use") or "")
    if land_use.startswith(RESIDENTIAL_PREFIXES) or land_use == "residential":
        return True
    for building in context.model.buildings:
        occupancy = context.model.pset_value(building, "Pset_BuildingCommon", "OccupancyType")
        if occupancy and str(occupancy).lower() in ("residential", "住宅"):
            return True
    return False


@register("planning", title_zh="规划指标", title_en="Planning limits", needs=("model", "georef"))
def check_planning(context: ReviewContext) -> list[Finding]:
    """Height, setbacks, FAR, density, green ratio and fire spacing."""
    findings = _height(context)
    if context.parcel is None or context.engine is None:
        zh = "未指定地块，仅检查模型自身的限高（Pset_SiteCommon.BuildingHeightLimit）。"
        en = "No parcel given: only the model's own height limit (Pset_SiteCommon.BuildingHeightLimit) is checked."
        findings.append(Finding("planning.needs_parcel", "info", zh, en))
        return findings
    findings += _setback(context)
    findings += _ratios(context)
    findings += _fire_spacing(context)
    return findings


def _height(context: ReviewContext) -> list[Finding]:
    model = context.model
    base, top = model.base_height(), model.top_height()
    height = top - base
    e = model.elements
    limits: list[tuple[float, str, str, tuple[str, ...]]] = []
    own = site_height_limit(context)
    if own is not None:
        limits.append((own[0], "planning.height_pset", "模型场地属性 Pset_SiteCommon.BuildingHeightLimit", (own[1],)))
    if context.parcel is not None and context.engine is not None:
        stored = _limits(context)
        if "max_height" in stored:
            limits.append((stored["max_height"], "planning.height", f"规划限高（{stored['max_height_source']}）", ()))
    findings = [
        Finding(
            rule="planning.height_measured",
            severity="info",
            message_zh=f"建筑高度 {height:.2f} m（室外地坪 {base:.2f} m 至最高点 {top:.2f} m）。",
            message_en=f"Building height {height:.2f} m (from ground at {base:.2f} m to the top at {top:.2f} m).",
            global_ids=model.building_global_ids,
            value=height,
            unit="m",
        )
    ]
    above = model.above_ground_envelope()
    for limit, rule, source_zh, extra in limits:
        if height <= limit + TOL:
            findings.append(
                Finding(
                    rule=rule,
                    severity="info",
                    message_zh=f"建筑高度 {height:.2f} m，不超过{source_zh} {limit:.2f} m。",
                    message_en=f"Building height {height:.2f} m is within the limit of {limit:.2f} m.",
                    global_ids=model.building_global_ids + extra,
                    value=height,
                    limit=limit,
                    unit="m",
                )
            )
            continue
        over = [g for g, z, m in zip(e.global_ids, e.zmax, above, strict=True) if m and z - base > limit + TOL]
        findings.append(
            Finding(
                rule=rule,
                severity="error",
                message_zh=f"建筑高度 {height:.2f} m 超过{source_zh} {limit:.2f} m，{len(over)} 个构件高于限高。",
                message_en=f"Building height {height:.2f} m exceeds the limit of {limit:.2f} m "
                f"({'the site property Pset_SiteCommon.BuildingHeightLimit' if rule.endswith('pset') else 'planning'}); "  # noqa: E501
                f"{len(over)} elements rise above it.",
                global_ids=tuple(over) + extra,
                value=height,
                limit=limit,
                unit="m",
            )
        )
    return findings


def _setback(context: ReviewContext) -> list[Finding]:
    limit = _limits(context).get("setback_m")
    if limit is None:
        return []
    model = context.model
    parcel = geometry.parcel_in_zone(context)
    red_line = parcel.boundary
    e = model.elements
    mask = model.above_ground_envelope()
    distance = shapely.distance(red_line, e.hulls)
    inside = shapely.covers(shapely.buffer(parcel, geometry.TOLERANCE_M), e.hulls)
    signed = np.where(inside, distance, -distance)
    bad = mask & (signed < limit - geometry.TOLERANCE_M)
    if not bad.any():
        return []
    order = np.argsort(signed[bad])
    ids = [e.global_ids[i] for i in np.flatnonzero(bad)[order]]
    least = float(signed[mask].min())
    zh = f"{len(ids)} 个构件距用地红线不足 {limit:.1f} m（最近 {least:.2f} m）。"
    en = f"{len(ids)} elements are closer than {limit:.1f} m to the parcel's red line (nearest {least:.2f} m)."
    return [Finding("planning.setback", "error", zh, en, tuple(ids), value=least, limit=limit, unit="m")]


def _ratios(context: ReviewContext) -> list[Finding]:
    limits = _limits(context)
    model = context.model
    assert context.parcel is not None
    parcel_area = float(context.parcel["area_m2"])
    findings: list[Finding] = []
    gfa, method = gross_floor_area(context)
    far = gfa / parcel_area
    method_zh = {"building": "建筑工程量集", "storeys": "楼层工程量集", "slabs": "楼板面积"}[method]
    if "max_far" in limits:
        ok = far <= limits["max_far"] + TOL
        zh = (
            f"容积率 {far:.3f}（总建筑面积 {gfa:.1f} m²，来自{method_zh}；地块面积 {parcel_area:.1f} m²），"
            f"上限 {limits['max_far']:.2f}。"
        )
        en = (
            f"Floor-area ratio {far:.3f} (GFA {gfa:.1f} m² from {method}; parcel {parcel_area:.1f} m²), "
            f"limit {limits['max_far']:.2f}."
        )
        detail = {"gfa_m2": round(gfa, 3), "gfa_from": method, "parcel_area_m2": round(parcel_area, 3)}
        findings.append(_ratio("planning.far", ok, zh, en, model.building_global_ids, far, limits["max_far"], detail))
    footprint = model.footprint()
    density = float(footprint.area) / parcel_area
    if "max_density" in limits:
        ok = density <= limits["max_density"] + TOL
        zh = f"建筑密度 {density:.1%}（基底面积 {footprint.area:.1f} m²），上限 {limits['max_density']:.0%}。"
        en = f"Building density {density:.1%} (footprint {footprint.area:.1f} m²), limit {limits['max_density']:.0%}."
        ids = model.building_global_ids
        findings.append(_ratio("planning.density", ok, zh, en, ids, density, limits["max_density"]))
    if "min_green_ratio" in limits:
        e = model.elements
        if not e.green.any():
            zh = "场地模型未包含绿地（IfcGeographicElement / 绿地空间），绿地率未检查。"
            en = "The site model carries no green areas (IfcGeographicElement / green spaces); green ratio not checked."
            findings.append(Finding("planning.green_ratio_not_modelled", "info", zh, en))
        else:
            green_area = float(e.plan_area[e.green].sum())
            ratio = green_area / parcel_area
            ok = ratio >= limits["min_green_ratio"] - TOL
            zh = f"绿地率 {ratio:.1%}（绿地 {green_area:.1f} m²），下限 {limits['min_green_ratio']:.0%}。"
            en = f"Green ratio {ratio:.1%} (green {green_area:.1f} m²), minimum {limits['min_green_ratio']:.0%}."
            ids = tuple(g for g, m in zip(e.global_ids, e.green, strict=True) if m)
            findings.append(_ratio("planning.green_ratio", ok, zh, en, ids, ratio, limits["min_green_ratio"]))
    return findings


def _ratio(
    rule: str,
    ok: bool,
    zh: str,
    en: str,
    ids: tuple[str, ...],
    value: float,
    limit: float,
    detail: dict[str, Any] | None = None,
) -> Finding:
    """A measured ratio against its limit: ``info`` when ``ok``, else an ``error``."""
    severity: Severity = "info" if ok else "error"
    return Finding(rule, severity, zh, en, ids, value=value, limit=limit, unit="ratio", detail=detail or {})


def _fire_spacing(context: ReviewContext) -> list[Finding]:
    settings = context.review_settings
    model = context.model
    height = model.top_height() - model.base_height()
    mine = fire_category(height, _model_is_residential(context), _model_grade(context), settings)
    table = settings.fire_spacing_m
    reach = max(max(row.values()) for row in table.values())
    footprint = model.footprint()
    e = model.elements
    mask = model.above_ground_envelope()
    findings: list[Finding] = []
    for other in neighbour_buildings(context, reach):
        if other.replaced:
            continue
        gap = float(shapely.distance(footprint, other.footprint))
        if gap <= geometry.TOLERANCE_M:
            continue  # overlapping footprints are a conflict, reported by the conflicts check
        residential = str(other.row.get("use") or "") in settings.residential_uses
        theirs = fire_category(float(other.row.get("height") or 0.0), residential, _row_grade(other.row), settings)
        required = float(table[mine][theirs])
        if gap >= required - geometry.TOLERANCE_M:
            continue
        near = mask & (shapely.distance(e.hulls, other.footprint) < required - geometry.TOLERANCE_M)
        zh = (
            f"与既有建筑“{other.label}”的防火间距 {gap:.2f} m，小于 GB 50016 表 5.2.2 要求的 "
            f"{required:.0f} m（本建筑 {mine}，对方 {theirs}）。"
        )
        en = (
            f"Fire separation to the existing building '{other.label}' is {gap:.2f} m, less than the "
            f"{required:.0f} m of GB 50016 table 5.2.2 (this building {mine}, the other {theirs})."
        )
        ids = tuple(g for g, m in zip(e.global_ids, near, strict=True) if m)
        detail = {"building_id": other.id, "building_name": other.row.get("name"), "categories": [mine, theirs]}
        findings.append(
            Finding("planning.fire_spacing", "error", zh, en, ids, value=gap, limit=required, unit="m", detail=detail)
        )
    return findings
