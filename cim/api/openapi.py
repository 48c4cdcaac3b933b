"""The OpenAPI document as OpenAPI 3.0 (what OGC API – Features' ``oas30`` class names), and its
Swagger UI page served from local assets.

FastAPI writes 3.1 (JSON Schema 2020-12: ``{"type": "null"}`` members, ``examples`` lists); this converts
those few constructs to their 3.0 forms (``nullable``, single ``example``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from cim.errors import ConfigError


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


def swagger_ui_dir() -> Path:
    """The folder of the Swagger UI build shipped by the ``swagger-ui-bundle`` package (no CDN needed)."""
    import swagger_ui_bundle

    folder = Path(swagger_ui_bundle.swagger_ui_path)
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise ConfigError(f"Swagger UI assets are missing in {folder}: run scripts/setup.sh")
    return folder


def mount_docs(app: FastAPI, path: str = "/docs") -> None:
    """``/docs``: Swagger UI on the app's OpenAPI document, every asset served by the app itself.

    The platform runs on intranets without internet access, so the page references nothing outside
    the service (FastAPI's default page loads its scripts from a public CDN).
    """
    assets = f"{path}/assets"
    app.mount(assets, StaticFiles(directory=swagger_ui_dir()), name="docs-assets")

    @app.get(path, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} – API",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon-32x32.png",
        )
