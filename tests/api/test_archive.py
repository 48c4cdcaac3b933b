"""``/archive`` over HTTP: archivists upload, key holders read metadata, allowed roles download (audited)."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cim.archive import verify
from cim.archive.service import Archive
from tests import factories
from tests.conftest import IFC_DIR
from tests.sql import scalar

A = IFC_DIR / "IfcOpenHouse_IFC4.ifc"
B = IFC_DIR / "slab-openings.ifc"


def _put(client: TestClient, key: str, path=A, **fields: str):
    with path.open("rb") as fh:
        return client.post(
            f"/archive/models/{key}/versions",
            headers={"X-API-Key": key_of(client, "archivist")},
            files={"file": (path.name, fh, "application/octet-stream")},
            data=fields,
        )


def key_of(client: TestClient, role: str) -> str:
    return client.app.state.test_keys[role]  # type: ignore[attr-defined,no-any-return]


def _setup(client: TestClient, keys: dict[str, str]) -> None:
    client.app.state.test_keys = keys  # type: ignore[attr-defined]


def test_an_archivist_uploads_and_a_planner_downloads_the_identical_file_with_ranges(
    client: TestClient, keys: dict[str, str], engine: Engine
):
    _setup(client, keys)
    created = _put(client, "house", note="as built")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 1 and body["author"] == "test-archivist" and body["note"] == "as built"
    assert "storage_key" not in body and created.headers["location"].endswith("/archive/models/house/versions/1")

    url = body["download"]
    full = client.get(url, headers={"X-API-Key": keys["planner"]})
    assert full.status_code == 200 and full.content == A.read_bytes()
    assert full.headers["etag"] == f'"{hashlib.sha256(A.read_bytes()).hexdigest()}"'
    assert full.headers["x-content-sm3"] == hashlib.new("sm3", A.read_bytes()).hexdigest()
    part = client.get(url, headers={"X-API-Key": keys["planner"], "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == A.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{A.stat().st_size}"
    tail = client.get(url, headers={"X-API-Key": keys["planner"], "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == A.read_bytes()[-10:]
    bad = client.get(url, headers={"X-API-Key": keys["planner"], "Range": f"bytes={10**9}-"})
    assert bad.status_code == 416

    downloads = scalar(engine, "SELECT count(*) FROM audit_log WHERE action = 'archive.download' AND outcome = 'ok'")
    gets = scalar(engine, "SELECT count(*) FROM archive_ledger WHERE kind = 'get'")
    assert downloads == 3 and gets == 3


def test_writes_need_the_archivist_role_and_reads_need_a_key(client: TestClient, keys: dict[str, str]):
    _setup(client, keys)
    with A.open("rb") as fh:
        anonymous = client.post("/archive/models/house/versions", files={"file": (A.name, fh)})
    assert anonymous.status_code == 401
    with A.open("rb") as fh:
        planner = client.post(
            "/archive/models/house/versions", headers={"X-API-Key": keys["planner"]}, files={"file": (A.name, fh)}
        )
    assert planner.status_code == 403
    assert _put(client, "house").status_code == 201
    assert client.get("/archive/models/house/versions").status_code == 401
    log = client.get("/archive/models/house/versions", headers={"X-API-Key": keys["viewer"]})
    assert log.status_code == 200 and log.json()[0]["download"] is None  # viewers see metadata only
    viewer_get = client.get("/archive/models/house/versions/1/file", headers={"X-API-Key": keys["viewer"]})
    assert viewer_get.status_code == 403
    assert client.get("/archive/models", headers={"X-API-Key": keys["viewer"]}).json()[0]["model_key"] == "house"


def test_bad_uploads_get_their_http_status_and_store_nothing(client: TestClient, keys: dict[str, str], tmp_path):
    _setup(client, keys)
    fake = tmp_path / "fake.ifc"
    fake.write_text("not a model")
    assert _put(client, "house", fake).status_code == 415
    dwg = tmp_path / "plan.dwg"
    dwg.write_text("AC1032")
    assert _put(client, "house", dwg).status_code == 415
    evil = tmp_path / "evil.ifc"
    evil.write_bytes(A.read_bytes())
    with evil.open("rb") as fh:
        dotted = client.post(
            "/archive/models/house/versions",
            headers={"X-API-Key": keys["archivist"]},
            files={"file": ("../../evil.ifc", fh)},
        )
    assert dotted.status_code == 400 and "invalid file name" in dotted.json()["detail"]
    assert _put(client, "a..b").status_code == 400
    assert _put(client, "house", review="42").status_code == 404
    assert client.get("/archive/models/house/versions", headers={"X-API-Key": keys["viewer"]}).status_code == 404
    assert client.get("/archive/models/x/versions/1/file", headers={"X-API-Key": keys["admin"]}).status_code == 404


def test_delete_needs_admin_and_a_reason_and_leaves_a_tombstone(client: TestClient, keys: dict[str, str]):
    _setup(client, keys)
    _put(client, "house")
    assert (
        client.delete("/archive/models/house?reason=wrong", headers={"X-API-Key": keys["archivist"]}).status_code == 403
    )
    assert client.delete("/archive/models/house", headers={"X-API-Key": keys["admin"]}).status_code == 400
    gone = client.delete("/archive/models/house?reason=duplicate upload", headers={"X-API-Key": keys["admin"]})
    assert gone.status_code == 200 and gone.json()["kind"] == "tombstone"
    history = client.get("/archive/models/house/versions", headers={"X-API-Key": keys["viewer"]}).json()
    assert [(v["version"], v["kind"]) for v in history] == [(1, "version"), (2, "tombstone")]
    assert client.get("/archive/models/house/versions/1/file", headers={"X-API-Key": keys["admin"]}).status_code == 200


def test_by_building_lists_versions_for_the_panel_and_verify_stays_clean(
    client: TestClient, keys: dict[str, str], engine: Engine
):
    _setup(client, keys)
    with engine.begin() as conn:
        dataset = factories.dataset(conn, "d", kind="ifc")
        building = factories.building(conn, dataset, factories.square(114, 30, 0.001), height=10.0)
    assert _put(client, "office", building=str(building), note="first").status_code == 201
    assert _put(client, "office", B, note="second").status_code == 201
    viewer = client.get(f"/archive/by-building/{building}", headers={"X-API-Key": keys["viewer"]}).json()
    assert viewer["can_download"] is False
    (model,) = viewer["models"]
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["versions"][0]["note"] == "second" and model["versions"][0]["author"] == "test-archivist"
    planner = client.get(f"/archive/by-building/{building}", headers={"X-API-Key": keys["planner"]}).json()
    assert planner["can_download"] and planner["models"][0]["versions"][0]["download"].endswith("/versions/2/file")
    assert client.get("/archive/by-building/999999", headers={"X-API-Key": keys["viewer"]}).json()["models"] == []
    report = client.get("/archive/verify", headers={"X-API-Key": keys["archivist"]}).json()
    assert report["ok"], report["problems"]
    assert report["audit_chained"] >= 0
    # every audit-log row written by these requests is in the ledger
    assert verify(client.app.state.archive).problems == []  # type: ignore[attr-defined]
    unchained = scalar(
        engine,
        "SELECT count(*) FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM archive_ledger l WHERE l.audit_id = a.id)",
    )
    assert unchained == 0
    assert isinstance(client.app.state.archive, Archive)  # type: ignore[attr-defined]


def test_diff_and_ledger_root_over_http(client: TestClient, keys: dict[str, str]):
    import datetime as dt

    _setup(client, keys)
    _put(client, "house")
    _put(client, "house", B)
    diff = client.get("/archive/models/house/diff?from=1&to=2", headers={"X-API-Key": keys["viewer"]})
    assert diff.status_code == 200 and diff.json()["counts"]["added"] > 0
    day = dt.datetime.now(dt.UTC).date().isoformat()
    root = client.get(f"/archive/ledger/roots/{day}", headers={"X-API-Key": keys["viewer"]}).json()
    assert len(root["root"]) == 64 and root["entries"] >= 2


def test_head_of_a_download_gives_its_size_and_digest_without_a_ledger_event(
    client: TestClient, keys: dict[str, str], engine: Engine
):
    _setup(client, keys)
    url = _put(client, "house").json()["download"]
    head = client.head(url, headers={"X-API-Key": keys["reviewer"]})
    assert head.status_code == 200 and int(head.headers["content-length"]) == A.stat().st_size
    assert scalar(engine, "SELECT count(*) FROM archive_ledger WHERE kind = 'get'") == 0
