"""The OpenAPI document as OpenAPI 3.0 (what OGC API – Features' ``oas30`` class names).

FastAPI writes 3.1 (JSON Schema 2020-12: ``{"type": "null"}`` members, ``examples`` lists); this converts
those few constructs to their 3.0 forms (``nullable``, single ``example``).
"""

from __future__ import annotations

from typing import Any


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        members = out.get(key)
        if isinstance(members, list) and any(m == {"type": "null"} for m in members):
            rest = [m for m in members if m != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                only = rest[0]
                if "$ref" in only:
                    out["allOf"] = [only]
                else:
                    out.update(only)
            elif rest:
                out[key] = rest
            out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else out["type"]
    if "examples" in out and isinstance(out["examples"], list) and "schema" not in out and "in" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(out.get(key), int | float) and not isinstance(out.get(key), bool):
            bound = out.pop(key)
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = bound
            out[key] = True
    return out


def to_openapi30(schema: dict[str, Any]) -> dict[str, Any]:
    """A FastAPI (3.1) OpenAPI document rewritten as OpenAPI 3.0.3."""
    out: dict[str, Any] = _convert(schema)
    out["openapi"] = "3.0.3"
    return out
