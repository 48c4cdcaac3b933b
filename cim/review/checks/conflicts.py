"""``conflicts``: the model's footprint over a stored building it does not replace, or closer to a stored
pipe than the horizontal clearance of GB 50289-2016 table 4.1.9 for the pipe's kind (measured from the
pipe's outer wall: axis distance minus half the diameter)."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from cim.review import geometry
from cim.review.findings import Finding
from cim.review.neighbours import nearby_pipes, neighbour_buildings
from cim.review.registry import ReviewContext, register
from cim.review.settings import ReviewSettings

GAS_PRESSURES = {
    "低压": "low",
    "low": "low",
    "中压b": "medium_b",
    "中压": "medium_b",
    "medium": "medium_b",
    "medium_b": "medium_b",
    "中压a": "medium_a",
    "medium_a": "medium_a",
    "次高压b": "sub_high_b",
    "sub_high_b": "sub_high_b",
    "次高压a": "sub_high_a",
    "次高压": "sub_high_a",
    "sub_high_a": "sub_high_a",
}


def clearance_key(row: dict[str, Any]) -> str:
    """The key of :attr:`ReviewSettings.pipe_clearance_m` for a facility row (kind, diameter, pressure)."""
    kind = str(row.get("kind") or "")
    if kind == "pipe_water" and row.get("diameter_mm") is not None and float(row["diameter_mm"]) > 200.0:
        return "pipe_water_large"
    if kind == "pipe_gas":
        pressure = str(row.get("pressure_class") or "").strip().lower().replace(" ", "")
        return f"pipe_gas_{GAS_PRESSURES.get(pressure, 'medium_b')}"
    return kind


def clearance_of(row: dict[str, Any], settings: ReviewSettings) -> float | None:
    """Required horizontal clearance (m) of a pipe to a building; ``None`` for kinds without a rule."""
    table = settings.pipe_clearance_m
    key = clearance_key(row)
    return table.get(key, table.get(str(row.get("kind") or "")))


@register("conflicts", title_zh="空间冲突", title_en="Conflicts with the city", needs=("model", "georef", "database"))
def check_conflicts(context: ReviewContext) -> list[Finding]:
    """Overlaps with existing buildings and pipe clearances."""
    model = context.model
    e = model.elements
    mask = model.above_ground_envelope()
    settings = context.review_settings
    findings: list[Finding] = []
    for other in neighbour_buildings(context, 1.0):
        if other.replaced:
            continue
        overlap = shapely.area(shapely.intersection(e.hulls, other.footprint))
        hit = mask & (overlap > settings.footprint_overlap_m2)
        if not hit.any():
            continue
        total = float(shapely.intersection(model.footprint(), other.footprint).area)
        findings.append(
            Finding(
                rule="conflicts.building_overlap",
                severity="error",
                message_zh=f"模型基底与既有建筑“{other.label}”重叠 {total:.1f} m²，且未申报拆除/替换该建筑。",
                message_en=f"The footprint overlaps the existing building '{other.label}' by {total:.1f} m², "
                "which the model does not replace.",
                global_ids=tuple(g for g, m in zip(e.global_ids, hit, strict=True) if m),
                value=total,
                limit=0.0,
                unit="m²",
                detail={"building_id": other.id, "building_name": other.row.get("name")},
            )
        )
    reach = max(settings.pipe_clearance_m.values(), default=0.0) + 2.0
    all_elements = model.elements.hulls
    for row, line in nearby_pipes(context, reach):
        required = clearance_of(row, settings)
        if required is None:
            continue
        radius = float(row.get("diameter_mm") or 0.0) / 2000.0
        gaps = shapely.distance(all_elements, line) - radius
        near = (gaps < required - geometry.TOLERANCE_M) & (model.elements.envelope)
        if not near.any():
            continue
        least = float(np.min(gaps[near]))
        kind = clearance_key(row)
        findings.append(
            Finding(
                rule="conflicts.pipe_clearance",
                severity="error",
                message_zh=f"距既有管线 {row.get('name') or row['id']}（{kind}）净距 {max(least, 0.0):.2f} m，"
                f"小于 GB 50289 要求的 {required:.1f} m。",
                message_en=f"Clear distance to the stored pipe {row.get('name') or row['id']} ({kind}) is "
                f"{max(least, 0.0):.2f} m, less than the {required:.1f} m of GB 50289.",
                global_ids=tuple(g for g, m in zip(e.global_ids, near, strict=True) if m),
                value=max(least, 0.0),
                limit=required,
                unit="m",
                detail={"facility_id": int(row["id"]), "kind": row.get("kind"), "clearance_key": kind},
            )
        )
    return findings
