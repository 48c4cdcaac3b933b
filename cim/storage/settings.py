"""Storage settings (pydantic-settings, environment prefix ``CIM_STORAGE_``).

Credentials are :class:`~pydantic.SecretStr`: they print as ``**********`` in reprs, logs and errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    """Which backend stores archived models and tiles, and how to reach it."""

    model_config = SettingsConfigDict(env_prefix="CIM_STORAGE_", extra="ignore")

    backend: str = Field(default="local", description="Backend name: local (default) or s3.")
    root: Path | None = Field(
        default=None, description="Folder of the local backend; default: <data directory>/storage."
    )
    endpoint: str | None = Field(
        default=None,
        description="S3 endpoint URL (MinIO, Ceph, Aliyun OSS…); unset: AWS S3 of the region.",
    )
    bucket: str | None = Field(default=None, description="S3 bucket (must exist).")
    prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. 'cim/'.")
    region: str = Field(default="us-east-1", description="S3 region name.")
    access_key_id: SecretStr | None = Field(default=None, description="S3 access key id.")
    secret_access_key: SecretStr | None = Field(default=None, description="S3 secret access key.")
    session_token: SecretStr | None = Field(default=None, description="S3 session token (temporary credentials).")
    addressing_style: Literal["path", "virtual", "auto"] = Field(
        default="path", description="S3 addressing: path (MinIO, Ceph), virtual (Aliyun OSS) or auto."
    )
    verify_tls: bool = Field(default=True, description="Verify the endpoint's TLS certificate.")
    part_size_mib: int = Field(default=8, ge=5, le=512, description="S3 multipart part size, MiB.")
    concurrency: int = Field(
        default=4,
        ge=1,
        le=32,
        description="S3 parts uploaded at once; memory ≈ (concurrency + 1) × part size.",
    )
    download_concurrency: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Ranged GETs in flight for bulk reads (get, verify); 1: one streamed GET. Object stores serve "
        "ranges in parallel; moto (the test server) reads the whole object for every range, so the default is 1.",
    )

    @field_validator("endpoint")
    @classmethod
    def _no_credentials_in_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("CIM_STORAGE_ENDPOINT must be an http(s) URL such as https://oss-cn-wuhan.example.com")
        if parts.username or parts.password:
            raise ValueError(
                "CIM_STORAGE_ENDPOINT must not carry credentials; use CIM_STORAGE_ACCESS_KEY_ID and "
                "CIM_STORAGE_SECRET_ACCESS_KEY"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str) -> str:
        value = value.strip("/")
        if ".." in value.split("/"):
            raise ValueError("CIM_STORAGE_PREFIX must not contain '..'")
        return value + "/" if value else ""
