"""Fixtures of the HTTP tests: the app on this test's database, API keys per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.db.models import ROLES
from cim.settings import Settings


@pytest.fixture
def api_settings() -> ApiSettings:
    """Service settings with a small upload limit (so the oversize test stays small) and no access log."""
    return ApiSettings(upload_limit_bytes=1024 * 1024, access_log=False, cors_origins=["https://viewer.example"])


@pytest.fixture
def client(settings: Settings, api_settings: ApiSettings) -> Iterator[TestClient]:
    """A test client of the app on this test's own database and data directory."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=api_settings, viewer_settings=ViewerSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()


@pytest.fixture
def keys(client: TestClient) -> dict[str, str]:
    """One API key per role, created through the same function as ``cim keys create``."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return {role: new_api_key(engine, name=f"test-{role}", role=role)[1] for role in ROLES}


@pytest.fixture
def tiles_dir(settings: Settings) -> Path:
    """``data_path/tiles`` with one tileset ``city``: a tileset.json, a .glb, a subtree and a terrain tile."""
    root = settings.data_path / "tiles" / "city"
    (root / "terrain" / "0" / "0").mkdir(parents=True)
    (root / "subtrees").mkdir()
    (root / "tileset.json").write_text(
        '{"asset": {"version": "1.1"}, "geometricError": 500, "root": {"boundingVolume": {"region": '
        + "["
        + ", ".join(["0.1"] * 6)
        + "]}, "
        + '"geometricError": 100, "refine": "ADD"}, "padding": "'
        + "x" * 2000
        + '"}'
    )
    (root / "0.glb").write_bytes(b"glTF" + bytes(range(256)) * 8)
    (root / "subtrees" / "0.0.0.subtree").write_bytes(b"subt" + b"\0" * 60)
    (root / "terrain" / "0" / "0" / "0.terrain").write_bytes(b"\1" * 3000)
    (root / "terrain" / "layer.json").write_text('{"tilejson": "2.1.0", "format": "quantized-mesh-1.0"}')
    return settings.data_path / "tiles"
