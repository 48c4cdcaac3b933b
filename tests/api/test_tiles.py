"""Serving tile files: types, conditional GET, ranges, gzip, CORS and no way out of the tiles folder."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient


def test_tile_files_have_their_content_types(client: TestClient, tiles_dir: Path) -> None:
    expected = {
        "/tiles/city/tileset.json": "application/json",
        "/tiles/city/0.glb": "model/gltf-binary",
        "/tiles/city/subtrees/0.0.0.subtree": "application/octet-stream",
        "/tiles/city/terrain/0/0/0.terrain": "application/vnd.quantized-mesh",
    }
    for url, ctype in expected.items():
        r = client.get(url, headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200, url
        assert r.headers["content-type"].split(";")[0] == ctype
        assert r.headers["etag"].startswith('"')
        assert "max-age=" in r.headers["cache-control"]
        assert r.content == (tiles_dir / url.removeprefix("/tiles/")).read_bytes()


def test_second_get_with_etag_is_304_and_if_modified_since_too(client: TestClient, tiles_dir: Path) -> None:
    first = client.get("/tiles/city/0.glb")
    assert first.status_code == 200
    again = client.get("/tiles/city/0.glb", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    since = client.get("/tiles/city/0.glb", headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    other = client.get("/tiles/city/0.glb", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_rewritten_tile_gets_a_new_etag(client: TestClient, tiles_dir: Path) -> None:
    first = client.get("/tiles/city/0.glb").headers["etag"]
    path = tiles_dir / "city" / "0.glb"
    path.write_bytes(b"glTF-new-content")
    os.utime(path, (1_800_000_000, 1_800_000_000))
    client.app.state.tiles.invalidate()  # type: ignore[attr-defined]
    second = client.get("/tiles/city/0.glb")
    assert second.headers["etag"] != first
    assert second.content == b"glTF-new-content"


def test_json_is_gzipped_when_accepted(client: TestClient, tiles_dir: Path) -> None:
    r = client.get("/tiles/city/tileset.json", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in r.headers["vary"]
    assert int(r.headers["content-length"]) < (tiles_dir / "city" / "tileset.json").stat().st_size
    assert r.json()["asset"]["version"] == "1.1"  # httpx decodes the gzip body
    plain = client.get("/tiles/city/tileset.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["etag"] != r.headers["etag"]


def test_byte_range_gives_206_and_unsatisfiable_416(client: TestClient, tiles_dir: Path) -> None:
    body = (tiles_dir / "city" / "0.glb").read_bytes()
    r = client.get("/tiles/city/0.glb", headers={"Range": "bytes=4-19"})
    assert r.status_code == 206
    assert r.content == body[4:20]
    assert r.headers["content-range"] == f"bytes 4-19/{len(body)}"
    tail = client.get("/tiles/city/0.glb", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == body[-10:]
    bad = client.get("/tiles/city/0.glb", headers={"Range": f"bytes={len(body) + 5}-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(body)}"


def test_head_has_headers_and_no_body(client: TestClient, tiles_dir: Path) -> None:
    r = client.head("/tiles/city/0.glb")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == (tiles_dir / "city" / "0.glb").stat().st_size


def test_paths_leaving_the_tiles_folder_are_refused(client: TestClient, tiles_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "x"}')
    (tiles_dir / "city" / "escape.json").symlink_to(secret)
    (tiles_dir / "linked").symlink_to(tmp_path)
    attempts = [
        "/tiles/city/../../secret.json",
        "/tiles/city/%2e%2e/%2e%2e/secret.json",
        "/tiles/city/..%2f..%2fsecret.json",
        "/tiles/../secret.json",
        "/tiles/city/escape.json",
        "/tiles/linked/secret.json",
        "/tiles/city/%00.json",
        "/tiles/city//etc/passwd",
        "/tiles/city/terrain/..%5c..%5csecret.json",
    ]
    for url in attempts:
        r = client.get(url)
        assert r.status_code in (400, 404), url
        assert b"password" not in r.content, url
    assert client.get("/tiles/city/terrain/0").status_code == 404  # a folder is not a file


def test_cors_header_for_allowed_origin(client: TestClient, tiles_dir: Path) -> None:
    r = client.get("/tiles/city/0.glb", headers={"Origin": "https://viewer.example"})
    assert r.headers["access-control-allow-origin"] == "https://viewer.example"
    assert "etag" in r.headers["access-control-expose-headers"].lower()
    other = client.get("/tiles/city/0.glb", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_writes_to_tiles_are_refused(client: TestClient, tiles_dir: Path) -> None:
    r = client.post("/tiles/city/0.glb", content=b"x")
    assert r.status_code == 405
    assert r.json()["code"] == "method-not-allowed"


def test_unknown_tile_is_a_json_404(client: TestClient, tiles_dir: Path) -> None:
    r = client.get("/tiles/city/nope.glb")
    assert r.status_code == 404
    assert set(r.json()) == {"code", "title", "detail"}


def test_access_log_lines_are_json(settings, tiles_dir: Path) -> None:
    import json
    import logging

    from cim.api.app import create_app
    from cim.api.middleware import JsonLogFormatter
    from cim.api.settings import ApiSettings

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logging.getLogger("cim.access").addHandler(handler)
    try:
        app = create_app(settings, api_settings=ApiSettings(access_log=True))
        with TestClient(app) as c:
            c.get("/tiles/city/0.glb")
            c.get("/conformance")
        app.state.engine.dispose()
    finally:
        logging.getLogger("cim.access").removeHandler(handler)
    lines = [json.loads(JsonLogFormatter().format(r)) for r in records]
    assert [(line["path"], line["status"]) for line in lines] == [("/tiles/city/0.glb", 200), ("/conformance", 200)]
    assert all(line["type"] == "access" and line["ms"] >= 0 and line["method"] == "GET" for line in lines)
