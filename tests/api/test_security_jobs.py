"""API keys and roles on every write, the audit trail, uploads (limits, types) and job polling."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from cim.api.security import KeyVerifier, new_api_key
from cim.db.api_keys import revoke_api_key
from cim.db.models import ROLES, AuditLog
from cim.errors import AuthError

GEOJSON = json.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": f"Block {i}", "height": 20.0 + i, "storeys": 6, "use": "residential"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [114.30 + i * 0.001, 30.58],
                            [114.3005 + i * 0.001, 30.58],
                            [114.3005 + i * 0.001, 30.5805],
                            [114.30 + i * 0.001, 30.5805],
                            [114.30 + i * 0.001, 30.58],
                        ]
                    ],
                },
            }
            for i in range(3)
        ],
    }
).encode()


def _ingest(client: TestClient, headers: dict[str, str]):
    return client.post(
        "/jobs/ingest",
        headers=headers,
        data={"layer": "buildings", "crs": "EPSG:4490"},
        files={"file": ("blocks.geojson", GEOJSON, "application/geo+json")},
    )


def _tiles(client: TestClient, headers: dict[str, str]):
    return client.post("/jobs/tiles", headers=headers, json={"name": "matrix", "layers": ["buildings"]})


WRITES: dict[str, tuple[Callable, frozenset[str]]] = {
    "POST /jobs/ingest": (_ingest, frozenset({"planner", "designer", "admin"})),
    "POST /jobs/tiles": (_tiles, frozenset({"planner", "designer", "admin"})),
}


def _wait(client: TestClient, url: str, headers: dict[str, str], timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(url, headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {url} did not finish in {timeout} s")


def test_auth_matrix_every_role_on_every_write(client: TestClient, keys: dict[str, str]) -> None:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    jobs = []
    for action, (call, allowed) in WRITES.items():
        anonymous = call(client, {})
        assert anonymous.status_code == 401, action
        assert anonymous.json()["code"] == "auth"
        assert call(client, {"X-API-Key": "cim_000000000000_forged"}).status_code == 401
        for role in ROLES:
            header = {"X-API-Key": keys[role]} if role != "planner" else {"Authorization": f"Bearer {keys[role]}"}
            r = call(client, header)
            if role in allowed:
                assert r.status_code == 202, (action, role, r.text)
                assert r.headers["location"] == r.json()["url"]
                jobs.append((r.json()["url"], header))
            else:
                assert r.status_code == 403, (action, role, r.text)
                assert r.json()["code"] == "permission-denied"
    for url, header in jobs:
        _wait(client, url, header)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditLog.action, AuditLog.outcome, AuditLog.actor)).all()
    denied = [r for r in rows if r.outcome == "denied"]
    assert len(denied) == 2 * (2 + 4)  # per write: anonymous, forged key, viewer, reviewer, archivist, sensor
    assert {r.action for r in denied} == set(WRITES)
    assert sum(1 for r in rows if r.outcome == "ok" and r.action.startswith("POST /jobs/")) == 6
    assert sum(1 for r in rows if r.action.startswith("job.")) == 6  # each finished job is recorded too


def test_ingest_job_loads_the_upload_and_reports(client: TestClient, keys: dict[str, str]) -> None:
    r = _ingest(client, {"X-API-Key": keys["designer"]})
    assert r.status_code == 202
    job = _wait(client, r.json()["url"], {"X-API-Key": keys["designer"]})
    assert job["kind"] == "ingest" and job["params"]["layer"] == "buildings"
    assert job["status"] == "succeeded", job["error"]
    assert job["started_at"] and job["finished_at"]
    items = client.get("/collections/buildings/items").json()
    assert items["numberMatched"] == 3


def test_unknown_job_is_404(client: TestClient, keys: dict[str, str]) -> None:
    admin = {"X-API-Key": keys["admin"]}
    assert client.get("/jobs/00000000-0000-0000-0000-000000000000", headers=admin).status_code == 404
    assert client.get("/jobs/not-a-uuid", headers=admin).status_code == 400


def test_oversize_upload_is_refused_before_parsing(client: TestClient, keys: dict[str, str]) -> None:
    big = b"ISO-10303-21;\n" + b"x" * (2 * 1024 * 1024)
    r = client.post("/jobs/ingest", headers={"X-API-Key": keys["admin"]}, files={"file": ("big.ifc", big)})
    assert r.status_code == 413
    assert r.json()["code"] == "content-too-large" or r.json()["title"].lower().startswith(("content", "request"))

    def chunks():  # no Content-Length: the streamed bytes are counted
        boundary = b"--b0undary\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.ifc"\r\n\r\n'
        for _ in range(40):
            yield b"y" * 65536
        yield b"\r\n--b0undary--\r\n"

    r = client.post(
        "/jobs/ingest",
        content=chunks(),
        headers={"X-API-Key": keys["admin"], "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert r.status_code == 413
    uploads = client.app.state.settings.data_path / "uploads"  # type: ignore[attr-defined]
    assert not uploads.exists() or not any(uploads.rglob("*.ifc"))


def test_upload_of_unknown_type_or_wrong_kind_is_refused(client: TestClient, keys: dict[str, str]) -> None:
    h = {"X-API-Key": keys["admin"]}
    r = client.post("/jobs/ingest", headers=h, files={"file": ("notes.txt", b"just some text")})
    assert r.status_code == 415
    r = client.post("/jobs/ingest", headers=h, data={"kind": "ifc"}, files={"file": ("x.geojson", GEOJSON)})
    assert r.status_code == 415
    r = client.post("/jobs/ingest", headers=h, files={"file": ("x.geojson", GEOJSON)})
    assert r.status_code == 400 and "layer" in r.json()["detail"]
    assert client.post("/jobs/ingest", headers=h, json={"file": "x"}).status_code == 400
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        failed = conn.execute(select(AuditLog).where(AuditLog.outcome == "failed")).all()
    assert len(failed) == 4


def test_keys_are_hashed_and_revocation_takes_effect(client: TestClient) -> None:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    key_id, key = new_api_key(engine, name="ops", role="admin")
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT prefix, key_hash FROM api_key WHERE id = %s", (key_id,)).one()
    assert key not in stored.key_hash and stored.key_hash.startswith("$argon2")
    assert key.split("_")[1] == stored.prefix
    assert KeyVerifier(engine).verify(key).role == "admin"
    with engine.begin() as conn:
        revoke_api_key(conn, key_id)
    with pytest.raises(AuthError):
        KeyVerifier(engine).verify(key)
    with pytest.raises(AuthError):
        new_api_key(engine, name="x", role="superuser")


def test_reads_can_require_a_key(settings, keys: dict[str, str], client: TestClient, tiles_dir) -> None:
    from cim.api.app import create_app
    from cim.api.settings import ApiSettings

    app = create_app(settings, api_settings=ApiSettings(reads_require_key=True, access_log=False))
    with TestClient(app) as closed:
        assert closed.get("/collections").status_code == 401
        assert closed.get("/collections", headers={"X-API-Key": keys["viewer"]}).status_code == 200
        tile = closed.get("/tiles/city/0.glb")
        assert tile.status_code == 401 and tile.json()["code"] == "unauthorized"
        assert closed.get("/tiles/city/0.glb", headers={"X-API-Key": "cim_x_y"}).status_code == 401
        assert closed.get("/tiles/city/0.glb", headers={"X-API-Key": keys["viewer"]}).status_code == 200
        assert (
            closed.get("/tiles/city/0.glb", headers={"Authorization": f"Bearer {keys['reviewer']}"}).status_code == 200
        )
    app.state.engine.dispose()


def test_every_write_operation_of_the_app_refuses_anonymous_and_viewer_callers(
    client: TestClient, keys: dict[str, str]
) -> None:
    """Whatever router adds a write (jobs, analyses…), it is guarded: no key → 401, viewer key → 403."""
    writes = [
        (method.upper(), path)
        for path, item in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in item
        if method in ("post", "put", "patch", "delete")
    ]
    assert ("POST", "/jobs/ingest") in writes and ("POST", "/jobs/tiles") in writes
    for method, path in writes:
        url = path.replace("{", "").replace("}", "")  # any concrete value: the key is checked first
        assert client.request(method, url, json={}).status_code == 401, (method, path)
        denied = client.request(method, url, json={}, headers={"X-API-Key": keys["viewer"]})
        assert denied.status_code == 403, (method, path, denied.text)


def test_job_of_a_stopped_process_is_reported_failed(client: TestClient, keys: dict[str, str]) -> None:
    import socket
    import subprocess

    from cim.db.jobs import insert_job, mark_running

    gone = subprocess.Popen(["true"])
    gone.wait()
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        job_id = insert_job(
            conn, "tiles", {"name": "x", "runner": {"host": socket.gethostname(), "pid": gone.pid}}, None
        )
        mark_running(conn, job_id)
    job = client.get(f"/jobs/{job_id}", headers={"X-API-Key": keys["admin"]}).json()
    assert job["status"] == "failed" and "stopped" in job["error"]
