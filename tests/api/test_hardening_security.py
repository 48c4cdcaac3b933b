"""Issue 13, security: what a hostile or unlucky caller found, each checked the way they would see it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.db.api_keys import revoke_api_key
from cim.db.models import AuditLog
from cim.settings import Settings


@pytest.fixture
def closed(settings: Settings, tiles_dir: Path) -> Iterator[TestClient]:
    """A deployment where reads need a key too, with a low failed-verification limit."""
    app = create_app(
        settings,
        api_settings=ApiSettings(reads_require_key=True, access_log=False, auth_failure_limit=3, cors_origins=[]),
        viewer_settings=ViewerSettings(),
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()


def _audit(engine: Engine) -> list[Any]:
    """Every audit row (action, outcome, api_key_id, detail…), oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(select(*AuditLog.__table__.c).order_by(AuditLog.id)).all())


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


# -------------------------------------------------------------------------------------------- 1. revocation
def test_revoked_key_is_refused_on_the_next_request_in_every_worker(settings: Settings, client: TestClient) -> None:
    """Two apps stand for two worker processes; both have just verified (and cached) the key."""
    engine = _engine(client)
    key_id, key = new_api_key(engine, name="leaked", role="planner")
    other = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    headers = {"X-API-Key": key}
    body = {"name": "rev", "layers": ["buildings"]}
    with TestClient(other, raise_server_exceptions=False) as worker2:
        for worker in (client, worker2):
            assert worker.post("/jobs/tiles", json=body, headers=headers).status_code == 202
        with engine.begin() as conn:  # `cim keys revoke` does this
            revoke_api_key(conn, key_id)
        for worker in (client, worker2):
            write = worker.post("/jobs/tiles", json=body, headers=headers)
            assert write.status_code == 401 and "revoked" in write.json()["detail"]
            assert worker.get("/jobs/00000000-0000-0000-0000-000000000000", headers=headers).status_code == 401
    other.state.engine.dispose()


def test_revoked_key_no_longer_reads_key_protected_tiles(closed: TestClient) -> None:
    engine = _engine(closed)
    key_id, key = new_api_key(engine, name="viewer", role="viewer")
    assert closed.get("/tiles/city/0.glb", headers={"X-API-Key": key}).status_code == 200
    with engine.begin() as conn:
        revoke_api_key(conn, key_id)
    assert closed.get("/tiles/city/0.glb", headers={"X-API-Key": key}).status_code == 401


# ------------------------------------------------------------------------------------------ 2. caching
def test_key_protected_tiles_and_reads_are_never_public_in_shared_caches(closed: TestClient) -> None:
    key = new_api_key(_engine(closed), name="v", role="viewer")[1]
    for url in ("/tiles/city/0.glb", "/tiles/city/tileset.json", "/collections", "/collections/buildings/items"):
        r = closed.get(url, headers={"X-API-Key": key, "Accept-Encoding": "gzip"})
        assert r.status_code == 200, url
        cache = r.headers["cache-control"]
        assert cache.startswith("private") and "public" not in cache, (url, cache)
        vary = {v.strip().lower() for v in r.headers["vary"].split(",")}
        assert {"x-api-key", "authorization"} <= vary, (url, vary)
    revalidated = closed.get(
        "/tiles/city/0.glb", headers={"X-API-Key": key, "If-None-Match": r.headers.get("etag", "")}
    )
    assert "public" not in revalidated.headers.get("cache-control", "")


def test_open_deployment_keeps_tiles_public_cacheable(client: TestClient, tiles_dir: Path) -> None:
    r = client.get("/tiles/city/0.glb")
    assert r.headers["cache-control"].startswith("public")


# ------------------------------------------------------------------------------- 3. reads never write
def test_anonymous_get_of_the_health_check_stores_no_run(client: TestClient) -> None:
    engine = _engine(client)
    from tests import factories

    with engine.begin() as conn:
        factories.district(conn, "A", factories.square(114.3, 30.58, 0.01), 10_000)
    for url in ("/analysis/health-check?district=A", "/analysis/health-check", "/analysis/health-check/choropleth"):
        r = client.get(url, params={"indicator": "population_density"} if "choropleth" in url else None)
        assert r.status_code == 404 and "POST /analysis/health-check/runs" in r.json()["detail"], url
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM analysis_run")).scalar_one() == 0
    planner = new_api_key(engine, name="p", role="planner")[1]
    made = client.post("/analysis/health-check/runs", json={"district": "A"}, headers={"X-API-Key": planner})
    assert made.status_code == 201, made.text
    assert client.get("/analysis/health-check?district=A").json()["run"]["id"] == made.json()["run"]["id"]
    stored = [a for a in _audit(engine) if a.action == "analysis.health-check"]
    assert [(a.outcome, a.target) for a in stored] == [("ok", f"run:{made.json()['run']['id']}")]


# ------------------------------------------------------------------------------------ 4. job details
def _wait(client: TestClient, url: str, headers: dict[str, str]) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(url, headers=headers).json()
        if job.get("status") in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {url} did not finish")


def test_job_details_need_the_submitting_key_and_never_show_server_paths(
    client: TestClient, keys: dict[str, str], settings: Settings
) -> None:
    mine = {"X-API-Key": keys["designer"]}
    r = client.post(
        "/jobs/ingest",
        headers=mine,
        data={"layer": "buildings", "crs": "EPSG:4490"},
        files={"file": ("Stadtteil Nord.geojson", b'{"type": "FeatureCollection", "features": [{"bro', "text/plain")},
    )
    assert r.status_code == 202, r.text
    url = r.json()["url"]
    job = _wait(client, url, mine)
    assert job["status"] == "failed"
    assert client.get(url).status_code == 401  # anonymous
    assert client.get(url, headers={"X-API-Key": keys["planner"]}).status_code == 404  # someone else's job
    assert client.get(url, headers={"X-API-Key": keys["admin"]}).json()["id"] == job["id"]
    shown = client.get(url, headers=mine).text
    data_dir = str(settings.data_path)
    for leak in (data_dir, "/uploads/", '"pid"', '"host"', '"runner"', '"path"', "/tmp/", "/work/"):
        assert leak not in shown, (leak, shown)
    assert "Stadtteil" in job["error"], job["error"]  # the file is named as the user uploaded it
    assert job["params"]["file_name"] == "Stadtteil Nord.geojson"


# ---------------------------------------------------------------------------------------- 5. audit gaps
def test_refused_tile_job_requests_are_audited(client: TestClient, keys: dict[str, str]) -> None:
    engine = _engine(client)
    planner = {"X-API-Key": keys["planner"]}
    bad_name = client.post("/jobs/tiles", json={"name": "../x"}, headers=planner)
    bad_bbox = client.post("/jobs/tiles", json={"name": "a", "bbox": [5, 5, 1, 1]}, headers=planner)
    not_json = client.post("/jobs/tiles", content=b"{", headers={**planner, "Content-Type": "application/json"})
    assert [bad_name.status_code, bad_bbox.status_code, not_json.status_code] == [400, 400, 400]
    rows = [a for a in _audit(engine) if a.action == "POST /jobs/tiles"]
    assert len(rows) == 3 and {a.outcome for a in rows} == {"failed"}
    assert all(a.api_key_id is not None and a.detail["status"] == 400 for a in rows), [a.detail for a in rows]
    assert "bbox" in rows[1].detail["error"]


def test_uploads_over_the_limit_are_audited_as_413_however_they_are_sent(
    client: TestClient, keys: dict[str, str]
) -> None:
    engine = _engine(client)
    admin = {"X-API-Key": keys["admin"]}
    big = b"ISO-10303-21;\n" + b"x" * (2 * 1024 * 1024)
    declared = client.post("/jobs/ingest", headers=admin, files={"file": ("big.ifc", big)})
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.ifc"\r\n\r\n'
        for _ in range(40):
            yield b"y" * 65536
        yield b"\r\n--b--\r\n"

    chunked = client.post(
        "/jobs/ingest", headers={**admin, "Content-Type": "multipart/form-data; boundary=b"}, content=chunks()
    )
    assert chunked.status_code == 413 and chunked.json()["code"] == "request-entity-too-large"
    rows = [a for a in _audit(engine) if a.action == "POST /jobs/ingest"]
    assert len(rows) == 2, [(a.outcome, a.detail) for a in rows]
    assert {a.outcome for a in rows} == {"denied"}
    for row in rows:
        assert row.detail["status"] == 413 and "upload limit" in row.detail["reason"], row.detail
        assert "malformed" not in str(row.detail)
    assert rows[0].detail["claimed_key_prefix"] == keys["admin"].split("_")[1]  # refused before verification


# ------------------------------------------------------------------------------------------ 6. rate limit
def test_wrong_secrets_for_a_known_key_prefix_get_429_with_retry_after(closed: TestClient) -> None:
    key = new_api_key(_engine(closed), name="target", role="viewer")[1]
    prefix = key.rsplit("_", 1)[0] if key.count("_") == 2 else "_".join(key.split("_")[:2])
    forged = {"X-API-Key": f"{prefix}_wrong-secret"}
    statuses = [closed.get("/collections", headers=forged).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    limited = closed.get("/collections", headers=forged)
    assert limited.status_code == 429 and set(limited.json()) == {"code", "title", "detail"}
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    tile = closed.get("/tiles/city/0.glb", headers=forged)
    assert tile.status_code == 429 and int(tile.headers["retry-after"]) >= 1


def test_one_client_trying_many_unknown_keys_gets_429(closed: TestClient) -> None:
    statuses = [closed.get("/collections", headers={"X-API-Key": f"cim_{i:012x}_guess"}).status_code for i in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]


def test_a_key_verified_before_the_attack_keeps_working(closed: TestClient) -> None:
    key = new_api_key(_engine(closed), name="owner", role="viewer")[1]
    assert closed.get("/collections", headers={"X-API-Key": key}).status_code == 200
    prefix = "_".join(key.split("_")[:2])
    for _ in range(5):
        closed.get("/collections", headers={"X-API-Key": f"{prefix}_attacker"})
    assert closed.get("/collections", headers={"X-API-Key": key}).status_code == 200


# ------------------------------------------------------------------------------------- 7. offline docs
def test_api_docs_page_loads_only_assets_the_service_serves(client: TestClient) -> None:
    import re

    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    assert urls, page.text
    assert "cdn" not in page.text.lower() and "unpkg" not in page.text.lower()
    for url in urls:
        assert url.startswith("/"), url  # same origin, nothing from the internet
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert "/openapi.json" in page.text


# ------------------------------------------------------------------------------------ 8. public base URL
def test_links_follow_the_configured_public_base_url_not_the_host_header(settings: Settings) -> None:
    app = create_app(
        settings,
        api_settings=ApiSettings(access_log=False, public_base_url="https://cim.example.gov/city/"),
        viewer_settings=ViewerSettings(),
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        for path in ("/collections", "/city/collections"):  # the proxy may strip the prefix or not
            r = c.get(path, headers={"Host": "evil.example", "X-Forwarded-Host": "evil2.example"})
            assert r.status_code == 200, path
            hrefs = [link["href"] for link in r.json()["links"]]
            assert hrefs and all(h.startswith("https://cim.example.gov/city/") for h in hrefs), hrefs
        key = new_api_key(app.state.engine, name="p", role="planner")[1]
        job = c.post("/jobs/tiles", json={"name": "x"}, headers={"X-API-Key": key, "Host": "evil.example"})
        assert job.headers["location"].startswith("https://cim.example.gov/city/jobs/")
    app.state.engine.dispose()


def test_forwarded_headers_count_only_from_a_configured_proxy(settings: Settings) -> None:
    app = create_app(
        settings,
        api_settings=ApiSettings(access_log=False, trusted_proxies=["10.0.0.0/8"]),
        viewer_settings=ViewerSettings(),
    )
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cim.example.gov", "X-Forwarded-Prefix": "/city"}
    with TestClient(app, client=("10.1.2.3", 4000)) as proxy:
        hrefs = [link["href"] for link in proxy.get("/collections", headers=forwarded).json()["links"]]
        assert all(h.startswith("https://cim.example.gov/city/") for h in hrefs), hrefs
    with TestClient(app, client=("192.0.2.7", 4000)) as stranger:
        hrefs = [link["href"] for link in stranger.get("/collections", headers=forwarded).json()["links"]]
        assert all(h.startswith("http://testserver/") for h in hrefs), hrefs
    app.state.engine.dispose()
