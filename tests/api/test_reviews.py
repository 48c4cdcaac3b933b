"""``/reviews``: a designer uploads a model, polls the report, downloads HTML/PDF/BCF; a reviewer decides.

Bad uploads get a clear error and leave nothing behind (no row, no file)."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cim.settings import Settings
from tests.review.city import city  # noqa: F401  (fixture)
from tests.review.models import Block, write_model

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "cim/review/report.schema.json").read_text())
FAILING = Block(3, 20, 63, 65, 10, name="违规楼")
COMPLIANT = Block(30, 28, 60, 52, 4, name="合规楼")
IDS_OK = Path(__file__).resolve().parents[1] / "review/ids/pass-walls_need_a_material.ids"


def _post(client: TestClient, key: str, path: Path, *, parcel: str | None = "P-1", ids: list[Path] = (), **form: str):
    files: list[tuple[str, Any]] = [("file", (path.name, path.read_bytes(), "application/octet-stream"))]
    files += [("ids", (p.name, p.read_bytes(), "application/xml")) for p in ids]
    data = {**({"parcel": parcel} if parcel else {}), **form}
    return client.post("/reviews", headers={"X-API-Key": key}, files=files, data=data)


def _wait(client: TestClient, review_id: int, until: tuple[str, ...], timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/reviews/{review_id}").json()
        if body["status"] in until:
            return body
        time.sleep(0.3)
    raise AssertionError(f"review {review_id} still {body['status']}")


def _nothing_stored(engine: Engine, settings: Settings) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM review")).scalar_one() == 0
    root = settings.data_path / "reviews"
    assert not root.exists() or list(root.iterdir()) == []


@pytest.mark.usefixtures("city")
def test_a_designer_gets_a_failing_report_in_every_format(
    client: TestClient, keys: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    model = write_model(tmp_path / "tower.ifc", FAILING, green=(70, 55, 90, 75))
    answer = _post(client, keys["designer"], model.path, ids=[IDS_OK])
    assert answer.status_code == 202, answer.text
    review_id = answer.json()["id"]
    assert (settings.data_path / "reviews" / str(review_id) / "tower.ifc").read_bytes() == model.path.read_bytes()
    body = _wait(client, review_id, ("reviewed", "error"))
    assert body["status"] == "reviewed", body.get("error")
    report = body["report"]
    jsonschema.validate(report, SCHEMA)
    assert body["verdict"] == report["verdict"] == "fail"
    assert report["checks"]["planning"]["verdict"] == "fail"
    assert set(report["checks"]) == {"schema", "georef", "ids", "planning", "sunlight", "conflicts"}

    html = client.get(f"/reviews/{review_id}/report.html")
    assert html.status_code == 200 and "不通过" in html.text and "FAIL" in html.text
    pdf = client.get(f"/reviews/{review_id}/report.pdf?lang=en")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    bcf = client.get(f"/reviews/{review_id}/report.bcf")
    assert bcf.status_code == 200
    path = tmp_path / "review.bcfzip"
    path.write_bytes(bcf.content)
    from bcf.bcfxml import load  # bcf-client: an independent BCF reader

    with load(str(path)) as reader:
        topics = reader.topics
        errors = [
            (c, f)
            for c, checks in report["checks"].items()
            for f in checks["findings"]
            if f["severity"] in ("error", "warning")
        ]
        assert len(topics) == len(errors)
        height = next(t for t in topics.values() if "planning.height" in (t.markup.topic.labels or []))
        viewpoint = next(iter(height.viewpoints.values())).visualization_info
        selected = {c.ifc_guid for c in viewpoint.components.selection.component}
        expected = next(f for _, f in errors if f["rule"] == "planning.height")["global_ids"]
        assert selected == set(expected)
        assert viewpoint.perspective_camera is not None

    # A failed review cannot be approved without saying why; a rejection needs a comment too.
    decide = f"/reviews/{review_id}/decision"
    reviewer = {"X-API-Key": keys["reviewer"]}
    assert client.post(decide, headers=reviewer, json={"decision": "approve"}).status_code == 400
    assert client.post(decide, headers=reviewer, json={"decision": "reject"}).status_code == 400
    rejected = client.post(decide, headers=reviewer, json={"decision": "reject", "comment": "超高、超容积率"})
    assert rejected.status_code == 202 and rejected.json()["status"] == "rejected"
    body = client.get(f"/reviews/{review_id}").json()
    assert body["decision"] == "reject" and body["decision_comment"] == "超高、超容积率" and body["dataset_id"] is None


@pytest.mark.usefixtures("city")
def test_a_reviewer_approves_a_compliant_model_into_the_city(
    client: TestClient, keys: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    from tiles.build import build_tileset

    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    build_tileset(engine, settings, "city", layers=("buildings", "elements"))
    model = write_model(tmp_path / "ok.ifc", COMPLIANT, green=(62, 5, 97, 75))
    review_id = _post(client, keys["designer"], model.path).json()["id"]
    body = _wait(client, review_id, ("reviewed", "error"))
    assert body["verdict"] == "pass", json.dumps(body.get("report", {}).get("checks"), ensure_ascii=False)[:2000]

    denied = client.post(
        f"/reviews/{review_id}/decision", headers={"X-API-Key": keys["designer"]}, json={"decision": "approve"}
    )
    assert denied.status_code == 403
    answer = client.post(
        f"/reviews/{review_id}/decision",
        headers={"X-API-Key": keys["reviewer"]},
        json={"decision": "approve", "comment": "符合规划条件"},
    )
    assert answer.status_code == 202
    body = _wait(client, review_id, ("approved", "approval_failed"))
    assert body["status"] == "approved", body["approval"]
    assert body["approval"]["tiles"][0]["name"] == "city" and body["approval"]["tiles"][0]["written"] > 0
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM building WHERE valid_to IS NULL"))}
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_log WHERE outcome = 'ok' ORDER BY id"))]
    assert "合规楼" in names
    for step in ("POST /reviews", "review.run", "review.decision", "review.ingest", "review.tiles", "review.approve"):
        assert step in actions
    # The approved model is archived as built, byte-identical, under the building the ingest created.
    assert body["approval"]["archive"] == {"model_key": f"review-{review_id}", "version": 1}
    archivist = {"X-API-Key": keys["admin"]}
    versions = client.get(f"/archive/by-building/{body['building_id']}", headers=archivist)
    assert versions.status_code == 200, versions.text
    assert f"review-{review_id}" in versions.text
    again = client.post(
        f"/reviews/{review_id}/decision",
        headers={"X-API-Key": keys["reviewer"]},
        json={"decision": "reject", "comment": "x"},
    )
    assert again.status_code == 409


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.ifc", b"ISO-10303-21;\n" + b"\0" * (50 * 1024 * 1024))
    return path


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("not_ifc", 422, "not an IFC model"),
        ("too_big", 413, ""),
        ("zip_bomb", 422, "unpacks to"),
        ("invalid_ids", 422, "not a valid IDS"),
        ("unknown_parcel", 422, "does not exist"),
    ],
)
@pytest.mark.usefixtures("city")
def test_a_bad_upload_is_refused_with_a_reason_and_leaves_nothing(
    client: TestClient, keys: dict[str, str], tmp_path: Path, settings: Settings, case: str, status: int, words: str
) -> None:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    model = write_model(tmp_path / "ok.ifc", COMPLIANT)
    parcel, ids = "P-1", []
    if case == "not_ifc":
        path = tmp_path / "x.ifc"
        path.write_text("this is a text file")
    elif case == "too_big":
        path = tmp_path / "big.ifc"
        path.write_bytes(b"ISO-10303-21;\n" + b" " * (2 * 1024 * 1024))
    elif case == "zip_bomb":
        path = _zip_bomb(tmp_path / "bomb.ifczip")
    elif case == "invalid_ids":
        path = model.path
        bad = tmp_path / "bad.ids"
        bad.write_text("<ids><nonsense/></ids>")
        ids = [bad]
    else:
        path, parcel = model.path, "NO-SUCH-PARCEL"
    answer = _post(client, keys["designer"], path, parcel=parcel, ids=ids)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    _nothing_stored(engine, settings)


def test_only_designers_may_upload(client: TestClient, keys: dict[str, str], tmp_path: Path) -> None:
    model = write_model(tmp_path / "ok.ifc", COMPLIANT)
    assert _post(client, keys["viewer"], model.path, parcel=None).status_code == 403
    assert client.get("/reviews/999").status_code == 404
