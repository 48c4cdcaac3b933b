"""``ids``: buildingSMART IDS 1.0 (Information Delivery Specification) through ifctester, for the user's IDS
files and for the platform's default CIM delivery IDS (``cim/review/data/cim-delivery.ids``), with the
standard's semantics where ifctester 0.9.0 departs from them (:mod:`cim.review.ids_standard`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ifcopenshell

from cim.review import ids_standard
from cim.review.findings import Finding
from cim.review.registry import ReviewContext, register

MAX_PER_SPEC = 100


def _global_id(entity: ifcopenshell.entity_instance) -> str | None:
    return str(entity.GlobalId) if entity.is_a("IfcRoot") else None


def findings_of(ids: Any, source: str) -> list[Finding]:
    """One error per failing specification (its failing entities as GlobalIds), one info per passing one."""
    found: list[Finding] = []
    for spec in ids.specifications:
        name = str(spec.name)
        required = spec.minOccurs != 0
        prohibited = spec.maxOccurs == 0
        applicable = len(spec.applicable_entities)
        if spec.status:
            zh = f"IDS “{name}”（{source}）：通过，适用对象 {applicable} 个。"
            en = f"IDS '{name}' ({source}): passed, {applicable} applicable entities."
            detail = {"ids": source, "specification": name, "applicable": applicable}
            found.append(Finding("ids.specification", "info", zh, en, detail=detail))
            continue
        reasons: list[dict[str, Any]] = []
        for requirement in spec.requirements:
            for failure in requirement.failures[:MAX_PER_SPEC]:
                element = failure["element"]
                reasons.append(
                    {
                        "global_id": _global_id(element),
                        "entity": element.is_a(),
                        "step_id": element.id(),
                        "reason": str(failure["reason"]),
                    }
                )
        failed = sorted({g for e in spec.failed_entities if (g := _global_id(e))})
        if prohibited:
            failed = sorted({g for e in spec.applicable_entities if (g := _global_id(e))})
            why_zh, why_en = "模型中不应出现的对象出现了", "entities the specification prohibits are present"
        elif required and applicable == 0:
            why_zh, why_en = (
                "模型中没有适用对象（该规范为必需）",
                "no applicable entity although the specification is required",
            )
        else:
            why_zh, why_en = f"{len(failed)} 个对象不满足要求", f"{len(failed)} entities do not meet its requirements"
        first = f"：{reasons[0]['reason']}" if reasons else ""
        found.append(
            Finding(
                rule="ids.specification",
                severity="error",
                message_zh=f"IDS “{name}”（{source}）未通过：{why_zh}{first}",
                message_en=f"IDS '{name}' ({source}) failed: {why_en}{first.replace('：', ': ')}",
                global_ids=tuple(failed[:500]),
                value=float(len(failed)),
                limit=0.0,
                unit="entities",
                detail={"ids": source, "specification": name, "applicable": applicable, "failures": reasons[:20]},
            )
        )
    return found


@register("ids", title_zh="信息交付（IDS）", title_en="Information delivery (IDS)", needs=("model",))
def check_ids(context: ReviewContext) -> list[Finding]:
    """The default CIM delivery IDS, then every user IDS file."""
    files: list[tuple[Path, str]] = [(ids_standard.DEFAULT_IDS, "CIM default")]
    files += [(p, p.name) for p in context.ids_files]
    findings: list[Finding] = []
    for path, source in files:
        parsed = context.cache.get(f"ids:{path}") or ids_standard.open_ids(path)
        ids_standard.validate(parsed, context.model.ifc)
        findings.extend(findings_of(parsed, source))
    return findings
