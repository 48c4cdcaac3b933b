"""Toy plug-ins registered from the test folder appear in the command line, the API and the catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cim.api.app import create_app
from cim.api.settings import ApiSettings, ViewerSettings
from cim.settings import Settings
from ingest import formats
from tests.api.test_uploads import finished_job
from tests.conftest import CliResult
from tests.plugins.toy_format import ToyPointsFormat

POINTS = b"TOYPOINTS\n114.30 30.58 BM1\n114.31 30.59 BM2\n114.32 30.60 BM3\n"


@pytest.fixture
def toy_format() -> Iterator[ToyPointsFormat]:
    """The toy source format, registered for one test."""
    fmt = formats.register(ToyPointsFormat())
    yield fmt
    formats.unregister(fmt.name)


@pytest.fixture
def toy_client(toy_format: ToyPointsFormat, settings: Settings, api_settings: ApiSettings) -> Iterator[TestClient]:
    """The app created after the toy format was registered."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=api_settings, viewer_settings=ViewerSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()


def test_a_registered_source_format_gets_a_command_line_command(toy_format, run_cim, tmp_path: Path) -> None:
    listed: CliResult = run_cim("ingest", "--help")
    assert "toypoints" in listed.stdout and "Load a toy point list" in listed.stdout
    source = tmp_path / "survey.txt"
    source.write_bytes(POINTS)
    result = run_cim("ingest", "toypoints", str(source), "--survey", "levelling 2026", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["points"] == 3


def test_a_registered_source_format_is_uploaded_ingested_and_listed(toy_client: TestClient, keys) -> None:
    client, headers = toy_client, {"X-API-Key": keys["planner"]}
    listed = {f["name"]: f for f in client.get("/formats").json()}
    assert set(listed) >= {"ifc", "vector", "raster", "toypoints"}
    assert listed["toypoints"]["form_fields"]["survey"]["description"] == "Name of the survey."
    form = client.get("/openapi.json").json()["paths"]["/jobs/ingest"]["post"]["requestBody"]
    schema = form["content"]["multipart/form-data"]["schema"]["properties"]
    assert "toypoints" in schema["kind"]["enum"] and "survey" in schema

    refused = client.post("/jobs/ingest", headers=headers, files={"file": ("s.txt", POINTS)})
    assert refused.status_code == 400 and "survey" in refused.json()["detail"]
    uploads = client.app.state.settings.data_path / "uploads"  # type: ignore[attr-defined]
    assert not uploads.exists() or not any(uploads.iterdir()), "a refused form stores nothing"

    r = client.post("/jobs/ingest", headers=headers, data={"survey": "BM"}, files={"file": ("s.txt", POINTS)})
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["url"], headers)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["points"] == 3

    datasets = client.get("/datasets", params={"kind": "toypoints"}).json()
    assert datasets["numberMatched"] == 1 and datasets["datasets"][0]["counts"] == {"points": 3}
    assert client.get("/datasets", params={"kind": "cityjson"}).status_code == 400
