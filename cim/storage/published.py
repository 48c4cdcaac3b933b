"""Where published tilesets live in a storage backend (written by ``tiles/publish.py``, served by
``cim/api/tiles.py``): one definition of the key layout, and the setting that names the backend.

Under ``tiles/<name>/``: ``.objects/<sha256>`` holds each distinct file content once, and
``.cim-index.json`` maps every file path of the tileset to ``{"sha256", "size", "modified"}``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cim.errors import TilesError
from cim.storage.base import MissingObjectError, Storage
from cim.storage.settings import StorageSettings

PREFIX = "tiles/"
INDEX = ".cim-index.json"
OBJECTS = ".objects/"


class PublishedTilesSettings(BaseSettings):
    """Published tilesets (environment prefix ``CIM_TILES_``)."""

    model_config = SettingsConfigDict(env_prefix="CIM_TILES_", extra="ignore")

    storage: str | None = Field(
        default=None,
        description="Storage backend of published tilesets (s3 or local, configured by CIM_STORAGE_*): "
        "`cim tiles publish` writes there and `cim serve` serves from there the tilesets not on local disk. "
        "Unset: tiles are served from the data directory only.",
    )
    index_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a worker reuses a published tileset's index before reading it again, seconds "
        "(a new publish is served within this time).",
    )

    def storage_settings(self, backend: str | None = None) -> StorageSettings:
        """The ``CIM_STORAGE_*`` settings with the backend of published tilesets (or ``backend``)."""
        chosen = backend or self.storage
        return StorageSettings(backend=chosen) if chosen else StorageSettings()


def index_key(name: str) -> str:
    """The key of the published index of tileset ``name``."""
    return f"{PREFIX}{name}/{INDEX}"


def object_key(name: str, sha256: str) -> str:
    """The key of the content with SHA-256 ``sha256`` (hex) of tileset ``name``."""
    return f"{PREFIX}{name}/{OBJECTS}{sha256}"


def objects_prefix(name: str) -> str:
    """The key prefix of the contents of tileset ``name``."""
    return f"{PREFIX}{name}/{OBJECTS}"


def read_index(storage: Storage, name: str) -> dict[str, dict[str, Any]]:
    """The published files of ``name`` (path → ``{"sha256", "size", "modified"}``); empty when unpublished."""
    try:
        data = json.loads(storage.get(index_key(name)))
    except MissingObjectError:
        return {}
    except ValueError as exc:
        raise TilesError(f"the published index of {name!r} in {storage.describe()} is not JSON; publish again") from exc
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise TilesError(f"the published index of {name!r} in {storage.describe()} is unreadable; publish again")
    return files
