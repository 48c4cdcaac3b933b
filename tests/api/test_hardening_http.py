"""Issue 13, robustness and HTTP details: filters, ids, tile paths, logs and the small print of HTTP."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cim.api.middleware import JsonLogFormatter
from cim.db.cql import MAX_FILTER_DEPTH, MAX_FILTER_PREDICATES
from cim.db.engine import make_engine
from tests import factories

ITEMS = "/collections/buildings/items"


@pytest.fixture
def blocks(client: TestClient) -> list[int]:
    """Five buildings of heights 1…5 m."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        ds = factories.dataset(conn, "blocks")
        return [
            factories.building(conn, ds, factories.square(114.30 + i * 0.001, 30.58), height=float(i), use="office")
            for i in range(1, 6)
        ]


def _items(client: TestClient, **params: str) -> tuple[int, dict]:
    r = client.get(ITEMS, params=params)
    return r.status_code, r.json()


# ---------------------------------------------------------------------------------- 10. tracebacks in logs
def test_server_log_keeps_the_traceback_of_an_unexpected_error(caplog: pytest.LogCaptureFixture) -> None:
    def broken_step() -> None:
        raise KeyError("Field 'id' exists 2 times in schema")

    try:
        broken_step()
    except KeyError:
        record = logging.getLogger("cim.api.jobs").makeRecord(
            "cim.api.jobs", logging.ERROR, __file__, 1, "job %s failed", ("42",), exc_info=True
        )
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "job 42 failed" and line["level"] == "error"
    assert "Traceback (most recent call last)" in line["traceback"]
    assert "broken_step" in line["traceback"] and "exists 2 times" in line["traceback"]


# ---------------------------------------------------------------------------------------- 11. CQL2 limits
def test_filter_of_a_thousand_or_terms_works_and_one_more_is_a_400_naming_the_limit(
    client: TestClient, blocks: list[int]
) -> None:
    assert MAX_FILTER_PREDICATES == 1000
    many = " OR ".join(f"height={i}" for i in range(MAX_FILTER_PREDICATES))
    status, body = _items(client, filter=many)
    assert status == 200 and body["numberMatched"] == 5, body
    status, body = _items(client, filter=many + " OR height=99999")
    assert status == 400 and f"more than {MAX_FILTER_PREDICATES} predicates" in body["detail"]


@pytest.mark.parametrize(
    "deep",
    [
        "(" * 3000 + "height = 1" + ")" * 3000,
        "NOT " * 2000 + "height = 1",
        "height = " + "-" * 3000 + "1",
        "height = " + "+".join(["1"] * 3000),
        "height = " + "(" * 2000 + "1" + ")" * 2000,
    ],
    ids=["parentheses", "not-chain", "unary-minus", "long-sum", "nested-expression"],
)
def test_deeply_nested_filter_never_causes_a_server_error(client: TestClient, blocks: list[int], deep: str) -> None:
    """Nesting that adds no level (parentheses around one term) is fine; anything deeper is a clear 400."""
    status, body = _items(client, filter=deep)
    assert status in (200, 400), body
    if status == 400:
        assert set(body) == {"code", "title", "detail"} and "levels deep" in body["detail"], body


def test_deeply_nested_cql2_json_filter_is_a_400(client: TestClient, blocks: list[int]) -> None:
    deep = '{"op":"not","args":[' * 500 + '{"op":"=","args":[{"property":"height"},1]}' + "]}" * 500
    status, body = _items(client, filter=deep, **{"filter-lang": "cql2-json"})
    assert status == 400, body
    nested = {"op": "=", "args": [{"property": "height"}, 1]}
    for _ in range(MAX_FILTER_DEPTH + 1):
        nested = {"op": "not", "args": [nested]}
    status, body = _items(client, filter=json.dumps(nested), **{"filter-lang": "cql2-json"})
    assert status == 400 and f"more than {MAX_FILTER_DEPTH} levels" in body["detail"]


@pytest.mark.parametrize("digits", ["²", "٣", "１２", "𝟗", "1²", "⁵"])
def test_feature_id_of_non_ascii_digits_is_a_404(client: TestClient, blocks: list[int], digits: str) -> None:
    r = client.get(f"{ITEMS}/{digits}")
    assert r.status_code == 404 and set(r.json()) == {"code", "title", "detail"}
    assert client.get("/search", params={"q": digits}).status_code < 500


# ---------------------------------------------------------------------------------- 13. tile path aliases
def test_tile_path_aliases_are_refused_and_never_cached(client: TestClient, tiles_dir: Path) -> None:
    tiles = client.app.state.tiles  # type: ignore[attr-defined]
    assert client.get("/tiles/city/subtrees/0.0.0.subtree").status_code == 200
    cached = len(tiles._files)
    for alias in (
        "/tiles/city/subtrees//0.0.0.subtree",
        "/tiles/city/subtrees/0.0.0.subtree/",
        "/tiles/city//subtrees/0.0.0.subtree",
        "/tiles//city/subtrees/0.0.0.subtree",
    ):
        r = client.get(alias)
        assert r.status_code == 404 and r.json()["code"] == "not-found", alias
    for i in range(200):
        client.get("/tiles/city/" + "/" * (i + 1) + "0.glb")
    assert len(tiles._files) == cached


# ---------------------------------------------------------------------------------------- 17. HTTP details
def test_gzip_with_q_zero_is_not_used(client: TestClient, tiles_dir: Path) -> None:
    for refusal in ("gzip;q=0", "gzip; q=0, identity", "*;q=0, identity;q=1", "identity", "br"):
        r = client.get("/tiles/city/tileset.json", headers={"Accept-Encoding": refusal})
        assert "content-encoding" not in r.headers, refusal
        assert r.content.startswith(b"{"), refusal
    for accepted in ("gzip", "gzip;q=0.5", "br, gzip;q=1.0", "*"):
        r = client.get("/tiles/city/tileset.json", headers={"Accept-Encoding": accepted})
        assert r.headers.get("content-encoding") == "gzip", accepted


def test_head_works_wherever_get_does(client: TestClient, blocks: list[int]) -> None:
    for url in ("/collections", "/", "/conformance", ITEMS, f"{ITEMS}/{blocks[0]}", "/openapi.json", "/docs"):
        get = client.get(url)
        head = client.head(url)
        assert head.status_code == get.status_code == 200, url
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"], url
    assert client.head(f"{ITEMS}/999999").status_code == 404


def test_refused_cors_preflight_is_a_json_error(client: TestClient) -> None:
    r = client.options(
        "/collections", headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"}
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"code", "title", "detail"} and "origin" in r.json()["detail"]
    ok = client.options(
        "/collections", headers={"Origin": "https://viewer.example", "Access-Control-Request-Method": "GET"}
    )
    assert ok.status_code == 200


def test_too_long_url_gets_a_json_414(client: TestClient, tiles_dir: Path) -> None:
    for url in (f"/collections?x={'a' * 62_000}", f"/tiles/city/{'a' * 62_000}.glb"):
        r = client.get(url)
        assert r.status_code == 414, url[:40]
        assert set(r.json()) == {"code", "title", "detail"} and "URL" in r.json()["detail"]


def test_unreachable_database_is_a_503_with_retry_after(client: TestClient) -> None:
    app = client.app
    working = app.state.engine  # type: ignore[attr-defined]
    app.state.engine = make_engine("postgresql://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})  # type: ignore[attr-defined]
    try:
        r = client.get(ITEMS)
    finally:
        app.state.engine.dispose()  # type: ignore[attr-defined]
        app.state.engine = working  # type: ignore[attr-defined]
    assert r.status_code == 503 and r.json()["code"] == "database-unavailable"
    assert int(r.headers["retry-after"]) > 0


def test_double_negation_filter_is_valid_cql2(client: TestClient, blocks: list[int]) -> None:
    assert _items(client, filter="NOT (NOT (height = 1))")[1]["numberMatched"] == 1
    assert _items(client, filter="NOT (height = 1 OR height = 2)")[1]["numberMatched"] == 3
    assert _items(client, filter="NOT NOT height = 1")[1]["numberMatched"] == 1


def test_one_point_polygon_in_a_cql2_json_filter_is_refused(client: TestClient, blocks: list[int]) -> None:
    for literal in (
        {"type": "Polygon", "coordinates": [[[114.3, 30.58]]]},
        {"type": "LineString", "coordinates": [[114.3, 30.58]]},
        {"type": "Point", "coordinates": [1000.0, 30.58]},
    ):
        cql = {"op": "s_intersects", "args": [{"property": "geometry"}, literal]}
        status, body = _items(client, filter=json.dumps(cql), **{"filter-lang": "cql2-json"})
        assert status == 400, (literal, body)
    box = shapely.box(114.2995, 30.5795, 114.3025, 30.5805).__geo_interface__
    cql = {
        "op": "s_intersects",
        "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": box["coordinates"]}],
    }
    status, body = _items(client, filter=json.dumps(cql), **{"filter-lang": "cql2-json"})
    assert status == 200 and body["numberMatched"] == 2, body


def test_unknown_key_in_distances_m_is_refused_not_ignored(client: TestClient, keys: dict[str, str]) -> None:
    planner = {"X-API-Key": keys["planner"]}
    r = client.post("/analysis/safety/gas-proximity/runs", json={"distances_m": {"lowpressure": 2}}, headers=planner)
    assert r.status_code == 422 and "lowpressure" in r.json()["detail"], r.text
    typo = client.post("/analysis/safety/gas-proximity/runs", json={"distance_m": {"low": 2}}, headers=planner)
    assert typo.status_code == 400 and "distance_m" in typo.json()["detail"], typo.text
    ok = client.post("/analysis/safety/gas-proximity/runs", json={"distances_m": {"低压": 2}}, headers=planner)
    assert ok.status_code == 201, ok.text


def test_byte_range_with_non_ascii_digits_is_ignored_not_misread(client: TestClient, tiles_dir: Path) -> None:
    size = len(client.get("/tiles/city/0.glb").content)
    for spec in ("bytes=٣-", "bytes=1_0-20", "bytes=-²", "bytes=１-２"):
        r = client.get("/tiles/city/0.glb", headers={"Range": spec.encode()})  # type: ignore[dict-item]
        assert r.status_code == 200 and len(r.content) == size, spec
    assert client.get("/tiles/city/0.glb", headers={"Range": "bytes=0-9"}).status_code == 206
