"""``/viewer/``: the CesiumJS app (plain ES modules), its Cesium build, and ``/viewer/config.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from cim.api.errors import error_body
from cim.api.overview import OVERVIEW_ABOVE_M
from cim.api.settings import REPO_ROOT, ViewerSettings
from cim.errors import ConfigError


def viewer_config(settings: ViewerSettings) -> dict[str, Any]:
    """What the viewer reads at start-up: base imagery, the API's base URL (same origin) and the camera height
    above which the province overview replaces the 3D content (known before ``/overview`` has answered)."""
    if settings.imagery_type == "natural-earth" or not settings.imagery_url:
        imagery: dict[str, Any] = {"type": "natural-earth"}
    else:
        imagery = {"type": settings.imagery_type, "url": settings.imagery_url}
        if settings.imagery_layer:
            imagery["layer"] = settings.imagery_layer
        if settings.imagery_credit:
            imagery["credit"] = settings.imagery_credit
    return {"imagery": imagery, "api": "", "overview_above_m": OVERVIEW_ABOVE_M}


class _NotInstalled:
    """Answers every request with a 503 JSON error naming what is missing."""

    def __init__(self, what: str) -> None:
        self.body = JSONResponse(error_body(503, what, "viewer-not-installed"), status_code=503)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.body(scope, receive, send)


def check_viewer_settings(settings: ViewerSettings) -> Path:
    """The viewer folder; :class:`ConfigError` for bad imagery settings or a configured folder that is missing."""
    if settings.imagery_type not in ("natural-earth", "xyz", "wmts"):
        raise ConfigError(f"CIM_VIEWER_IMAGERY_TYPE must be natural-earth, xyz or wmts, not {settings.imagery_type!r}")
    if settings.imagery_type != "natural-earth" and not settings.imagery_url:
        raise ConfigError(f"CIM_VIEWER_IMAGERY_TYPE={settings.imagery_type} needs CIM_VIEWER_IMAGERY_URL")
    folder = settings.dir
    if folder is not None and not Path(folder).is_dir():
        raise ConfigError(f"viewer directory {folder} (CIM_VIEWER_DIR) does not exist")
    return Path(folder) if folder is not None else REPO_ROOT / "web_viewer"


def mount_viewer(app: FastAPI, settings: ViewerSettings) -> None:
    """Mount the viewer folder and Cesium's build; an explicitly configured missing folder is a start-up error."""
    folder = check_viewer_settings(settings)

    router = APIRouter(tags=["viewer"])
    config = viewer_config(settings)

    @router.get("/viewer/config.json", summary="Viewer configuration (imagery, API base)")
    def get_viewer_config() -> dict[str, Any]:
        return config

    app.include_router(router)
    cesium = folder / "node_modules" / "cesium" / "Build" / "Cesium"
    if cesium.is_dir():
        app.mount("/viewer/cesium", StaticFiles(directory=cesium), name="cesium")
    else:
        app.mount("/viewer/cesium", _NotInstalled(f"Cesium is not installed in {cesium}: run scripts/setup.sh"))
    if (folder / "index.html").is_file():
        app.mount("/viewer", StaticFiles(directory=folder, html=True), name="viewer")
    else:
        app.mount("/viewer", _NotInstalled(f"the viewer is not installed ({folder / 'index.html'} is missing)"))
