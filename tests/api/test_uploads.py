"""Uploads leave no file behind when the request is refused or the ingest job fails."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.api.test_security_jobs import GEOJSON


def _files(client: TestClient) -> list:
    uploads = client.app.state.settings.data_path / "uploads"  # type: ignore[attr-defined]
    return sorted(p for p in uploads.rglob("*")) if uploads.exists() else []


def finished_job(client: TestClient, url: str, headers: dict[str, str]) -> dict:
    """The job at ``url`` once it has succeeded or failed (polled with ``headers``)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(url, headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError("the job did not finish")


def test_a_request_refused_for_a_missing_form_field_stores_nothing(client: TestClient, keys) -> None:
    h = {"X-API-Key": keys["planner"]}
    r = client.post("/jobs/ingest", headers=h, files={"file": ("blocks.geojson", GEOJSON)})
    assert r.status_code == 400 and "layer" in r.json()["detail"]
    r = client.post("/jobs/ingest", headers=h, data={"layer": "facilities"}, files={"file": ("p.geojson", GEOJSON)})
    assert r.status_code == 400 and "facility_kind" in r.json()["detail"]
    assert _files(client) == []


def test_the_upload_of_a_failed_ingest_job_is_removed(client: TestClient, keys) -> None:
    h = {"X-API-Key": keys["planner"]}
    r = client.post(
        "/jobs/ingest",
        headers=h,
        data={"layer": "buildings", "crs": "EPSG:999999"},
        files={"file": ("blocks.geojson", GEOJSON)},
    )
    assert r.status_code == 202
    job = finished_job(client, r.json()["url"], h)
    assert job["status"] == "failed" and job["error"]
    assert _files(client) == []


def test_the_upload_of_a_succeeded_ingest_job_is_kept_as_the_dataset_source(client: TestClient, keys) -> None:
    h = {"X-API-Key": keys["planner"]}
    r = client.post("/jobs/ingest", headers=h, data={"layer": "buildings"}, files={"file": ("b.geojson", GEOJSON)})
    job = finished_job(client, r.json()["url"], h)
    assert job["status"] == "succeeded", job["error"]
    stored = [p for p in _files(client) if p.is_file()]
    assert [p.name for p in stored] == ["b.geojson"]


def test_orphaned_uploads_are_removed_when_the_service_starts(client: TestClient, keys, settings, api_settings) -> None:
    import os

    from cim.api.app import create_app
    from cim.api.settings import ViewerSettings

    h = {"X-API-Key": keys["planner"]}
    r = client.post("/jobs/ingest", headers=h, data={"layer": "buildings"}, files={"file": ("b.geojson", GEOJSON)})
    assert finished_job(client, r.json()["url"], h)["status"] == "succeeded"
    uploads = settings.data_path / "uploads"
    orphan, fresh = uploads / ("0" * 32), uploads / ("f" * 32)
    orphan.mkdir()
    (orphan / "left.geojson").write_bytes(GEOJSON)  # a process stopped during its job an hour ago
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    fresh.mkdir()  # another worker is storing this one right now
    for folder in uploads.iterdir():
        if folder not in (orphan, fresh):  # the dataset's source: old too, but in use
            os.utime(folder, (time.time() - 7200, time.time() - 7200))

    app = create_app(settings, api_settings=api_settings, viewer_settings=ViewerSettings())
    app.state.engine.dispose()
    left = sorted(p.name for p in uploads.iterdir())
    assert orphan.name not in left and fresh.name in left and len(left) == 2


def test_a_tiles_job_the_builder_would_refuse_is_refused_at_submission(client: TestClient, keys) -> None:
    h = {"X-API-Key": keys["planner"]}
    for body in (
        {"name": "_hidden"},
        {"name": "city", "bbox": [115, 30, 114, 31]},
        {"name": "city", "bbox": [1, 2, 3]},
    ):
        r = client.post("/jobs/tiles", headers=h, json=body)
        assert r.status_code == 400, body
