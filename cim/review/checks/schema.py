"""``schema``: the file opens, its schema is supported, and ``ifcopenshell.validate`` finds no error —
attribute types, cardinalities and inverses, plus the schema's EXPRESS rules (WHERE rules, global rules)
that the installed ifcopenshell ships for the model's schema."""

from __future__ import annotations

from typing import Any

import ifcopenshell
import ifcopenshell.validate

from cim.review.findings import Finding
from cim.review.registry import ReviewContext, register

MAX_FINDINGS = 200
"""Errors listed one by one; the rest are counted in one summary finding."""

KIND_ZH = {
    "schema": "模式约束",
    "simpletype_rule": "简单类型规则",
    "entity_rule": "实体规则",
    "global_rule": "全局规则",
    "header": "文件头",
}


def _express_rules_available(schema: str) -> bool:
    try:
        import importlib

        importlib.import_module(f"ifcopenshell.express.rules.{schema}")
    except Exception:
        return False
    return True


def _plain(statement: Any) -> dict[str, Any]:
    """A validation statement with its instance reduced to entity, step id and GlobalId (picklable)."""
    instance = statement.get("instance")
    out = {k: v for k, v in statement.items() if k != "instance"}
    if isinstance(instance, ifcopenshell.entity_instance):
        out["entity"] = instance.is_a()
        out["step_id"] = instance.id()
        out["global_id"] = str(instance.GlobalId) if instance.is_a("IfcRoot") else None
    return out


def validation_errors(path: str) -> tuple[list[dict[str, Any]], bool]:
    """Errors of ``ifcopenshell.validate`` on the file at ``path`` (plain dicts) and whether EXPRESS rules ran.

    Runs in a worker process during a review (see :func:`cim.review.run.review_file`), alongside the geometry.
    """
    from pathlib import Path

    from ingest.ifc_model import open_model  # the same reader (and schema mapping) as the review's model

    model, _ = open_model(Path(path))
    rules = _express_rules_available(str(model.schema_identifier))
    logger = ifcopenshell.validate.json_logger()
    ifcopenshell.validate.validate(model, logger, express_rules=rules)
    return [_plain(s) for s in logger.statements if s.get("level") == "error"], rules


def _finding(statement: dict[str, Any], schema: str) -> Finding:
    entity = statement.get("entity")
    step = statement.get("step_id")
    global_id = statement.get("global_id")
    kind = str(statement.get("type") or "schema")
    attribute = statement.get("attribute")
    first = str(statement.get("message", "")).strip().splitlines()[0] if statement.get("message") else ""
    where = f"{entity} #{step}" if entity else "the model"
    where_zh = f"{entity} #{step}" if entity else "模型"
    what = f" {attribute}" if attribute else ""
    return Finding(
        rule=f"schema.{kind}",
        severity="error",
        message_zh=f"{where_zh}{what} 不符合 {schema} {KIND_ZH.get(kind, kind)}：{first}",
        message_en=f"{where}{what} violates the {schema} {kind.replace('_', ' ')}: {first}",
        global_ids=(global_id,) if global_id else (),
        detail={"entity": entity, "step_id": step, "attribute": attribute, "kind": kind},
    )


@register("schema", title_zh="IFC 模式校验", title_en="IFC schema validation", needs=("model",))
def check_schema(context: ReviewContext) -> list[Finding]:
    """Run ``ifcopenshell.validate`` with EXPRESS rules when available; one finding per error."""
    model = context.model
    schema = str(model.ifc.schema_identifier)
    pending = context.cache.pop("schema_errors", None)
    try:
        errors, rules = pending.result() if pending is not None else (None, False)
    except Exception:  # the worker process failed (killed, out of memory): validate here instead
        errors = None
    if errors is None:
        rules = _express_rules_available(schema)
        logger = ifcopenshell.validate.json_logger()
        ifcopenshell.validate.validate(model.ifc, logger, express_rules=rules)
        errors = [_plain(s) for s in logger.statements if s.get("level") == "error"]
    findings = [
        Finding(
            rule="schema.summary",
            severity="info",
            message_zh=f"文件模式 {model.schema}；{'含' if rules else '不含'} EXPRESS 规则校验；发现 {len(errors)} 处错误。",  # noqa: E501
            message_en=f"Schema {model.schema}; EXPRESS rules {'checked' if rules else 'not available'}; "
            f"{len(errors)} errors.",
            value=float(len(errors)),
            limit=0.0,
            unit="errors",
            detail={"schema": model.schema, "express_rules": rules},
        )
    ]
    findings.extend(_finding(s, schema) for s in errors[:MAX_FINDINGS])
    if len(errors) > MAX_FINDINGS:
        more = len(errors) - MAX_FINDINGS
        zh, en = f"另有 {more} 处模式错误未逐条列出。", f"{more} more schema errors are not listed one by one."
        findings.append(Finding("schema.more", "error", zh, en))
    return findings
