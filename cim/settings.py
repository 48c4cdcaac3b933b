"""Deployment settings, read from the environment (prefix ``CIM_``) and, for the database, ``DATABASE_URL``.

Settings objects are created in the entry points (command line, app factory), never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where data lives, which database to use and the deployment's height reference."""

    model_config = SettingsConfigDict(env_prefix="CIM_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".cim"),
        description="Data directory: private PostGIS cluster, tiles, archived files, uploads.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CIM_DATABASE_URL"),
        description="postgresql://… of an existing PostGIS ≥ 3.3; when unset the private cluster is used.",
    )
    height_anomaly: float = Field(
        default=0.0,
        description=(
            "Height anomaly ζ in metres (ellipsoidal height minus normal height of the 1985 National Height "
            "Datum) for this deployment's area; h = H + ζ."
        ),
    )
    read_replica_url: str | None = Field(
        default=None,
        description="postgresql://… of a streaming-replication standby of the database (`cim db replica url`); "
        "`cim serve` then reads there and writes to the primary (`cim serve --read-replica URL`).",
    )
    read_replica_max_lag_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Reads leave the standby while it replays more than this many seconds behind the primary.",
    )

    @property
    def data_path(self) -> Path:
        """The data directory as an absolute path (not created)."""
        return self.data_dir.expanduser().resolve()


def load_settings() -> Settings:
    """Settings from the environment; call from entry points only."""
    return Settings()
