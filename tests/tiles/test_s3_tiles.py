"""Tiles published to S3-compatible object storage (moto's real HTTP server on loopback) and served from it.

The tileset is built from the test city, published with ``cim tiles publish --to s3``, removed from local
disk, served by the app from the bucket, downloaded over HTTP and checked with the official validator.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.settings import Settings
from cim.storage import StorageSettings, open_storage
from cim.storage.published import index_key, objects_prefix, read_index
from tests.archive.conftest import S3_KEY_ID, S3_SECRET, s3_endpoint, s3_settings  # noqa: F401 (fixtures)
from tests.tiles import official
from tests.tiles.city import make_city
from tiles.build import build_tileset
from tiles.output import IncrementalWriter
from tiles.publish import publish_tileset

ORIGIN = "https://viewer.example"


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_settings: StorageSettings) -> StorageSettings:  # noqa: F811
    """``CIM_STORAGE_*`` of the test bucket in the environment, ``CIM_TILES_STORAGE=s3``."""
    assert s3_settings.endpoint and s3_settings.bucket
    monkeypatch.setenv("CIM_STORAGE_ENDPOINT", s3_settings.endpoint)
    monkeypatch.setenv("CIM_STORAGE_BUCKET", s3_settings.bucket)
    monkeypatch.setenv("CIM_STORAGE_PREFIX", s3_settings.prefix)
    monkeypatch.setenv("CIM_STORAGE_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("CIM_STORAGE_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("CIM_TILES_STORAGE", "s3")
    monkeypatch.setenv("CIM_TILES_INDEX_SECONDS", "0")
    return s3_settings


def _bucket_keys(settings: StorageSettings) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=settings.endpoint,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def _client(settings: Settings, **api: Any) -> TestClient:
    api_settings = ApiSettings(access_log=False, cors_origins=[ORIGIN], **api)
    return TestClient(create_app(settings, api_settings=api_settings, viewer_settings=ViewerSettings()))


def test_built_tileset_is_published_incrementally_and_served_from_s3(
    engine: Engine, settings: Settings, tmp_path: Path, s3_env: StorageSettings, run_cim: Any
) -> None:
    make_city(engine, tmp_path, n_buildings=40, dem=False)
    build_tileset(engine, settings, "city", layers=["buildings", "facilities"])
    local = settings.data_path / "tiles" / "city"
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())

    first = run_cim("tiles", "publish", "city", "--to", "s3", "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["files"] == len(files)
    assert report["uploaded"] == len({p.read_bytes() for p in local.rglob("*") if p.is_file()})
    assert report["destination"].startswith(f"s3://{s3_env.bucket}/city/")
    for output in (first.stdout, first.stderr):
        assert S3_SECRET not in output and S3_KEY_ID not in output
    keys = _bucket_keys(s3_env)
    assert f"city/{index_key('city')}" in keys

    again = json.loads(run_cim("tiles", "publish", "city", "--to", "s3", "--json").stdout)
    assert (again["uploaded"], again["kept"], again["deleted_objects"]) == (0, len(files), 0)
    assert _bucket_keys(s3_env) == keys

    # one file changes (same tileset, other bytes): only that content goes up, the old one is removed
    tileset_json = json.loads((local / "tileset.json").read_text())
    (local / "tileset.json").write_text(json.dumps(tileset_json, indent=1))
    changed = json.loads(run_cim("tiles", "publish", "city", "--to", "s3", "--json").stdout)
    assert (changed["uploaded"], changed["deleted_objects"]) == (1, 1)

    # served from the bucket once the local folder is gone; downloaded over HTTP, it validates
    reference = tmp_path / "reference"
    shutil.copytree(local, reference)
    shutil.rmtree(local)
    download = tmp_path / "download" / "city"
    with _client(settings) as client:
        for rel in files:
            r = client.get(f"/tiles/city/{rel}", headers={"Accept-Encoding": "identity", "Origin": ORIGIN})
            assert r.status_code == 200, rel
            assert r.content == (reference / rel).read_bytes(), rel
            assert r.headers["access-control-allow-origin"] == ORIGIN
            assert r.headers["cache-control"] == "public, max-age=3600"
            (download / rel).parent.mkdir(parents=True, exist_ok=True)
            (download / rel).write_bytes(r.content)
        glb = next(rel for rel in files if rel.endswith(".glb"))
        r = client.get(f"/tiles/city/{glb}")
        etag = r.headers["etag"]
        assert client.get(f"/tiles/city/{glb}", headers={"If-None-Match": etag}).status_code == 304
        since = client.get(f"/tiles/city/{glb}", headers={"If-Modified-Since": r.headers["last-modified"]})
        assert since.status_code == 304
        ranged = client.get(f"/tiles/city/{glb}", headers={"Range": "bytes=0-11"})
        assert ranged.status_code == 206
        assert ranged.content == (reference / glb).read_bytes()[:12]
        assert ranged.headers["content-range"] == f"bytes 0-11/{(reference / glb).stat().st_size}"
        gz = client.get("/tiles/city/tileset.json", headers={"Accept-Encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip"
        assert gz.json() == tileset_json
        assert client.get("/tiles/city/missing.glb").status_code == 404
        assert client.get("/tiles/nothere/tileset.json").status_code == 404
        assert client.get("/tiles/city/.objects/" + "0" * 64).status_code == 404
    result = official.run_validator(download / "tileset.json", tmp_path / "report.json")
    found = official.findings(result, download / "tileset.json")
    assert found.errors == [], found.errors


def test_large_published_files_stream_in_ranges_and_protected_reads_need_a_key(
    engine: Engine, settings: Settings, tmp_path: Path, s3_env: StorageSettings
) -> None:
    folder = tmp_path / "big"
    writer = IncrementalWriter(folder)
    big = os.urandom(3 * 1024 * 1024 + 17)  # above the in-memory limit: streamed from the bucket
    writer.put("tileset.json", b'{"asset": {"version": "1.1"}, "geometricError": 0, "root": {}}')
    writer.put("content/big.glb", big)
    writer.finish()
    storage = open_storage(settings, StorageSettings(**{**s3_env.model_dump(), "backend": "s3"}))
    publish_tileset(folder, storage, "big")
    assert set(read_index(storage, "big")) == {"tileset.json", "content/big.glb", "manifest.json"}
    assert len(list(storage.list(objects_prefix("big")))) == 3
    key = new_api_key(engine, name="viewer", role="planner")[1]
    with _client(settings, reads_require_key=True) as client:
        refused = client.get("/tiles/big/content/big.glb")
        assert refused.status_code == 401
        whole = client.get("/tiles/big/content/big.glb", headers={"X-API-Key": key})
        assert whole.status_code == 200
        assert whole.content == big
        assert whole.headers["cache-control"].startswith("private")
        assert "X-API-Key" in whole.headers["vary"]
        part = client.get("/tiles/big/content/big.glb", headers={"X-API-Key": key, "Range": "bytes=2000000-"})
        assert part.status_code == 206
        assert part.content == big[2_000_000:]


def test_publish_of_a_missing_tileset_uploads_nothing(
    settings: Settings, s3_env: StorageSettings, run_cim: Any
) -> None:
    result = run_cim("tiles", "publish", "nothing", "--to", "s3")
    assert result.exit_code != 0
    assert "build the tileset first" in result.stderr
    assert _bucket_keys(s3_env) == []
    assert S3_SECRET not in result.stderr


def test_rewritten_file_of_the_same_size_gets_a_new_etag(tmp_path: Path) -> None:
    from cim.api.tiles import file_etag

    writer = IncrementalWriter(tmp_path)
    writer.put("0.glb", b"glTF1234")
    writer.finish()
    before = (tmp_path / "0.glb").stat()
    writer = IncrementalWriter(tmp_path)
    writer.put("0.glb", b"glTF5678")
    writer.finish()
    after = (tmp_path / "0.glb").stat()
    assert file_etag(after.st_mtime, after.st_size) != file_etag(before.st_mtime, before.st_size)


def test_unreachable_bucket_is_a_503_without_credentials(
    settings: Settings, s3_env: StorageSettings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CIM_STORAGE_BUCKET", "no-such-bucket-cim")
    with _client(settings) as client:
        r = client.get("/tiles/city/tileset.json")
    assert r.status_code == 503
    assert r.json()["code"] == "service-unavailable"
    for text in (r.text, caplog.text):
        assert S3_SECRET not in text and S3_KEY_ID not in text
