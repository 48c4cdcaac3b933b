"""Archive settings (pydantic-settings, environment prefix ``CIM_ARCHIVE_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3


class ArchiveSettings(BaseSettings):
    """Limits of what the archive accepts."""

    model_config = SettingsConfigDict(env_prefix="CIM_ARCHIVE_", extra="ignore")

    max_bytes: int = Field(default=8 * GIB, gt=0, description="Largest archived file, bytes.")
    max_unzipped_bytes: int = Field(
        default=16 * GIB, gt=0, description="Largest total uncompressed size of an .ifczip, bytes (zip bombs)."
    )
    max_zip_ratio: float = Field(
        default=200.0, gt=1, description="Largest compression ratio of an .ifczip member (zip bombs)."
    )
    max_zip_members: int = Field(default=1000, gt=0, description="Most members of an .ifczip.")
