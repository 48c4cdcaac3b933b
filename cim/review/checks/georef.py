"""``georef``: the model is georeferenced (LoGeoRef 20–50), its CRS transforms to CGCS2000 through
:mod:`cim.crs`, and its footprint lies inside the province and inside the parcel under review.

A model without any georeference is a failing finding that says how to add one, not an error of the run.
"""

from __future__ import annotations

import numpy as np
import shapely

from cim import crs
from cim.db.review_queries import province_boundary
from cim.errors import CrsError
from cim.review import geometry
from cim.review.findings import Finding
from cim.review.registry import ReviewContext, register

HOW_TO_FIX_ZH = (
    "请在模型中添加地理参照：IFC4 及以上使用 IfcMapConversion + IfcProjectedCRS（如 EPSG:4547 "
    "CGCS2000 3度带 114°E），IFC2X3 使用 ePSet_MapConversion/ePSet_ProjectedCRS，或至少填写 IfcSite 的 "
    "RefLatitude/RefLongitude/RefElevation（LoGeoRef 20）。"
)
HOW_TO_FIX_EN = (
    "Add a georeference to the model: IfcMapConversion + IfcProjectedCRS (e.g. EPSG:4547, CGCS2000 3-degree "
    "Gauss-Kruger CM 114E) in IFC4 and later, ePSet_MapConversion/ePSet_ProjectedCRS in IFC2X3, or at least "
    "IfcSite RefLatitude/RefLongitude/RefElevation (LoGeoRef 20)."
)
LEVEL_ZH = {
    50: "地图转换（LoGeoRef 50）",
    40: "场地参照点与正北（LoGeoRef 40）",
    30: "场地参照点（LoGeoRef 30）",
    20: "场地经纬度（LoGeoRef 20）",
}


@register("georef", title_zh="地理参照", title_en="Georeference", needs=("model",))
def check_georef(context: ReviewContext) -> list[Finding]:
    """Georeference present and usable, inside the province and the parcel."""
    model = context.model
    if not model.located:
        return [
            Finding(
                rule="georef.missing",
                severity="error",
                message_zh=f"模型无法定位到地图上（{model.georef_error}）。{HOW_TO_FIX_ZH}",
                message_en=f"The model cannot be placed on the map ({model.georef_error}). {HOW_TO_FIX_EN}",
                global_ids=tuple(str(p.GlobalId) for p in model.ifc.by_type("IfcProject")),
            )
        ]
    georef = model.georef
    findings = [
        Finding(
            rule="georef.level",
            severity="info" if georef.level >= 40 else "warning",
            message_zh=f"地理参照方式：{LEVEL_ZH.get(georef.level, georef.level)}，坐标系 {georef.crs_in[:80]}。"
            + ("" if georef.level >= 40 else "精度有限，建议添加 IfcMapConversion。"),
            message_en=f"Georeference: LoGeoRef {georef.level} ({georef.method}), CRS {georef.crs_in[:80]}."
            + ("" if georef.level >= 40 else " Limited accuracy; an IfcMapConversion is recommended."),
            value=float(georef.level),
            unit="LoGeoRef",
            detail={"method": georef.method, "crs": georef.crs_in, "notes": list(georef.notes)},
        )
    ]
    try:
        crs.transformer(georef.crs)
    except CrsError as exc:
        zh, en = f"坐标系无法转换到 CGCS2000：{exc}", f"The CRS cannot be transformed to CGCS2000: {exc}"
        findings.append(Finding("georef.crs", "error", zh, en))
    findings.extend(_province(context))
    if context.parcel is not None:
        findings.extend(_parcel(context))
    return findings


def _province(context: ReviewContext) -> list[Finding]:
    model = context.model
    wkb = None
    if context.engine is not None:
        with context.engine.connect() as conn:
            wkb = province_boundary(conn, context.review_settings.province_code)
    boundary = shapely.from_wkb(wkb) if wkb is not None else shapely.box(*context.review_settings.province_bounds)
    lonlat = model.elements.centre_lonlat
    inside = shapely.contains_xy(boundary, lonlat[:, 0], lonlat[:, 1]) if len(lonlat) else np.zeros(0, dtype=bool)
    outside = [g for g, ok in zip(model.elements.global_ids, inside, strict=True) if not ok]
    if not outside:
        return []
    lon, lat = float(np.median(lonlat[:, 0])), float(np.median(lonlat[:, 1]))
    zh = f"模型位于省域范围之外（中心约 {lon:.5f}°E, {lat:.5f}°N），请检查地理参照。"
    en = f"The model lies outside the province (centre about {lon:.5f}E, {lat:.5f}N); check its georeference."
    return [Finding("georef.province", "error", zh, en, tuple(outside[:500]))]


def _parcel(context: ReviewContext) -> list[Finding]:
    model = context.model
    assert context.parcel is not None
    parcel = geometry.parcel_in_zone(context)
    hulls = model.elements.hulls
    mask = model.above_ground_envelope()
    inside = shapely.covers(shapely.buffer(parcel, geometry.TOLERANCE_M), hulls)
    outside = [g for g, m, ok in zip(model.elements.global_ids, mask, inside, strict=True) if m and not ok]
    if not outside:
        return []
    footprint = model.footprint()
    out_area = float(shapely.area(shapely.difference(footprint, parcel)))
    code = context.parcel.get("code") or context.parcel["id"]
    zh = f"模型有 {len(outside)} 个构件超出地块 {code} 的用地红线（越界面积 {out_area:.1f} m²）。"
    en = f"{len(outside)} elements lie outside the red line of parcel {code} ({out_area:.1f} m² outside)."
    return [Finding("georef.parcel", "error", zh, en, tuple(outside), value=out_area, limit=0.0, unit="m²")]
