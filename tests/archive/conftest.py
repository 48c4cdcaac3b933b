"""Fixtures of the archive tests: the archive on local disk and on a real S3 HTTP server (moto, loopback)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from cim.archive.service import Archive
from cim.localservice import free_port
from cim.settings import Settings
from cim.storage import StorageSettings
from tests.conftest import IFC_DIR

SMALL_IFC = IFC_DIR / "IfcOpenHouse_IFC4.ifc"
S3_KEY_ID = "AKIACIMTESTKEY00001"
S3_SECRET = "cim-test-secret-do-not-print-0123456789"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server in this process's threads, on a free loopback port (a real HTTP server)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_settings(s3_endpoint: str) -> StorageSettings:
    """Storage settings of a fresh bucket on the moto server."""
    import boto3

    bucket = f"cim-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    return StorageSettings(
        backend="s3",
        endpoint=s3_endpoint,
        bucket=bucket,
        prefix="city/",
        access_key_id=SecretStr(S3_KEY_ID),
        secret_access_key=SecretStr(S3_SECRET),
        part_size_mib=5,
    )


@pytest.fixture
def local_archive(engine: Engine, settings: Settings) -> Archive:
    """The archive on the local-disk backend under this test's data directory."""
    return Archive.open(engine, settings, storage_settings=StorageSettings())


@pytest.fixture
def s3_archive(engine: Engine, settings: Settings, s3_settings: StorageSettings) -> Archive:
    """The archive on the S3 backend (moto on loopback)."""
    return Archive.open(engine, settings, storage_settings=s3_settings)


@pytest.fixture(params=["local", "s3"])
def archive(request: pytest.FixtureRequest) -> Archive:
    """The archive on each backend in turn."""
    return request.getfixturevalue(f"{request.param}_archive")  # type: ignore[no-any-return]


def storage_root(settings: Settings) -> Path:
    """The local OCFL storage root of the test's data directory."""
    return settings.data_path / "storage" / "archive"
