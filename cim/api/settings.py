"""Settings of the HTTP service, one class per concern (pydantic-settings, read from the environment).

Created by the app factory (:func:`cim.api.app.create_app`), never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[2]


class ApiSettings(BaseSettings):
    """The HTTP service: limits, access control, CORS, logging (environment prefix ``CIM_API_``)."""

    model_config = SettingsConfigDict(env_prefix="CIM_API_", extra="ignore")

    upload_limit_bytes: int = Field(
        default=512 * MIB, gt=0, description="Largest accepted request body (uploads), bytes; larger → 413."
    )
    reads_require_key: bool = Field(
        default=False, description="When true every read needs an API key too (any role); writes always do."
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"], description="Origins allowed by CORS (JSON list); empty disables CORS."
    )
    tile_cache_seconds: int = Field(default=3600, ge=0, description="Cache-Control max-age of tile files, seconds.")
    tile_memory_cache_bytes: int = Field(
        default=64 * MIB, ge=0, description="Bytes of small tile files kept in memory by each worker."
    )
    access_log: bool = Field(default=True, description="Write one JSON access-log line per request to stderr.")
    warm_caches: bool = Field(
        default=True,
        description="At start-up, compute the default /overview answer and the base map's low-zoom tiles over "
        "the stored data in a background thread, so the first viewer finds them cached.",
    )
    job_workers: int = Field(default=1, ge=1, description="Background threads that run ingest and tile jobs.")
    auth_failure_limit: int = Field(
        default=10,
        ge=1,
        description="Failed API key verifications allowed per key prefix and per client address within the "
        "window (per worker process); more → 429 with Retry-After.",
    )
    auth_failure_window_seconds: float = Field(default=60.0, gt=0, description="Window of auth_failure_limit, seconds.")
    public_base_url: str | None = Field(
        default=None,
        description="The service's public URL (e.g. https://cim.example.gov/city): every link is built on it, "
        "whatever Host header a request carries.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR blocks of reverse proxies (JSON list) whose X-Forwarded-Proto/Host/Prefix/"
        "For headers are honoured; from anyone else those headers are ignored.",
    )
    url_limit_bytes: int = Field(
        default=60 * 1024,
        ge=1024,
        description="Longest accepted request target (path + query), bytes; longer → 414 (JSON). Kept below "
        "granian's own 64 KiB URI limit, whose 414 has no body.",
    )


class ViewerSettings(BaseSettings):
    """The CesiumJS viewer served at ``/viewer/`` (environment prefix ``CIM_VIEWER_``)."""

    model_config = SettingsConfigDict(env_prefix="CIM_VIEWER_", extra="ignore")

    dir: Path | None = Field(
        default=None,
        description="Folder of the viewer (index.html + ES modules); default: web_viewer/ of the repository. "
        "An explicitly configured folder that does not exist stops the service at start-up.",
    )
    imagery_type: str = Field(
        default="natural-earth", description="Base imagery: natural-earth (offline, bundled with Cesium), xyz or wmts."
    )
    imagery_url: str | None = Field(default=None, description="URL template of xyz/wmts imagery.")
    imagery_layer: str | None = Field(default=None, description="WMTS layer name.")
    imagery_credit: str | None = Field(default=None, description="Attribution shown by the viewer.")
