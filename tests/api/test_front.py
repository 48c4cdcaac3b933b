"""``cim serve --front nginx``: nginx serves the tile files with the app's headers and proxies the API.

Each test starts the real command (granian + a private nginx) and compares, header by header, what nginx
answers for a file with what the app behind it answers for the same file (its loopback port is in the
front's state file), then stops it and checks that nginx is gone and its runtime files removed.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from cim.api.security import new_api_key
from cim.db.api_keys import revoke_api_key
from cim.front import NginxFront
from cim.localservice import free_port
from cim.settings import Settings
from tests.live import cim_serve, stop_process, wait_ready

pytestmark = pytest.mark.xdist_group("live-server")

ORIGIN = "https://viewer.example"
COMPARED = (
    "etag",
    "last-modified",
    "cache-control",
    "content-type",
    "accept-ranges",
    "content-range",
    "access-control-allow-origin",
    "access-control-expose-headers",
    "www-authenticate",
    "retry-after",
)


@dataclass
class Front:
    """A running ``cim serve --front nginx``: the front's URL, the app's own URL, the process."""

    url: str
    app_url: str
    proc: subprocess.Popen[bytes]
    nginx: NginxFront
    log: Path
    data: Path


def _start(settings: Settings, tmp_path: Path, extra_env: dict[str, str]) -> Front:
    env = {"CIM_SENSING_MQTT": "false", "CIM_API_CORS_ORIGINS": json.dumps([ORIGIN]), **extra_env}
    log = tmp_path / "serve.log"
    proc, url = cim_serve(settings, log, "--front", "nginx", "--workers", "1", extra_env=env)
    nginx = NginxFront(settings.data_path)

    def ready() -> bool:
        state = nginx.status()
        return state is not None and httpx.get(f"{url}/conformance", timeout=5).status_code in (200, 401)

    wait_ready(proc, ready, log, what="cim serve --front nginx", not_yet=(httpx.HTTPError,))
    state = nginx.status()
    assert state is not None
    return Front(url, f"http://127.0.0.1:{state.app_port}", proc, nginx, log, settings.data_path)


def _write_tiles(data: Path) -> Path:
    """``data/tiles/city``: the same files as the ``tiles_dir`` fixture of ``tests/api/conftest.py``."""
    root = data / "tiles" / "city"
    (root / "terrain" / "0" / "0").mkdir(parents=True)
    (root / "subtrees").mkdir()
    tileset = {
        "asset": {"version": "1.1"},
        "geometricError": 500,
        "root": {"boundingVolume": {"region": [0.1] * 6}, "geometricError": 100, "refine": "ADD"},
        "padding": "x" * 2000,
    }
    (root / "tileset.json").write_text(json.dumps(tileset))
    (root / "0.glb").write_bytes(b"glTF" + bytes(range(256)) * 8)
    (root / "subtrees" / "0.0.0.subtree").write_bytes(b"subt" + b"\0" * 60)
    (root / "terrain" / "0" / "0" / "0.terrain").write_bytes(b"\1" * 3000)
    (root / "terrain" / "layer.json").write_text('{"tilejson": "2.1.0", "format": "quantized-mesh-1.0"}')
    return data / "tiles"


def _module_front(module_db_url: str, folder: Path, extra_env: dict[str, str]) -> Iterator[Front]:
    settings = Settings(data_dir=folder / "data", database_url=module_db_url)
    _write_tiles(settings.data_path)
    front = _start(settings, folder, extra_env)
    yield front
    stop_process(front.proc, timeout=30)


@pytest.fixture(scope="module")
def public_front(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """The front of an open deployment (reads need no key)."""
    yield from _module_front(module_db_url, tmp_path_factory.mktemp("public"), {"CIM_API_ACCESS_LOG": "true"})


@pytest.fixture(scope="module")
def protected_front(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """The front of a deployment whose reads need a key (private caching, key checks per request)."""
    extra = {"CIM_API_READS_REQUIRE_KEY": "true", "CIM_API_AUTH_FAILURE_LIMIT": "6"}
    yield from _module_front(module_db_url, tmp_path_factory.mktemp("protected"), extra)


def _vary(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for value in response.headers.get_list("vary") for v in value.split(",") if v.strip()}


def _same_answer(front: Front, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET ``path`` from nginx and from the app; assert the same status, body and headers; nginx's answer."""
    sent = {"Accept-Encoding": "identity", **(headers or {})}
    by_nginx = httpx.get(front.url + path, headers=sent)
    by_app = httpx.get(front.app_url + path, headers=sent)
    assert by_nginx.status_code == by_app.status_code, (path, sent)
    assert by_nginx.content == by_app.content, (path, sent)
    for name in COMPARED:
        assert by_nginx.headers.get(name) == by_app.headers.get(name), (path, name, sent)
    if by_nginx.status_code == 304:  # nginx's gzip filter adds its Vary to 200s only
        assert _vary(by_nginx) == _vary(by_app) - {"accept-encoding"}, (path, sent)
    else:
        assert _vary(by_nginx) == _vary(by_app), (path, sent)
    if by_nginx.status_code != 304:
        assert by_nginx.headers.get("content-length") == by_app.headers.get("content-length"), (path, sent)
    assert by_nginx.headers.get("server") is None or "nginx" in by_nginx.headers["server"]
    return by_nginx


def test_nginx_serves_public_tiles_with_the_apps_headers(public_front: Front) -> None:
    tiles_dir = public_front.data / "tiles"
    files = ["tileset.json", "0.glb", "subtrees/0.0.0.subtree", "terrain/0/0/0.terrain", "terrain/layer.json"]
    for rel in files:
        path = f"/tiles/city/{rel}"
        first = _same_answer(public_front, path)
        assert first.status_code == 200
        assert first.content == (tiles_dir / "city" / rel).read_bytes()
        assert first.headers["cache-control"] == "public, max-age=3600"
        etag = first.headers["etag"]
        stat = (tiles_dir / "city" / rel).stat()
        assert etag == f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'
        again = _same_answer(public_front, path, {"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        since = _same_answer(public_front, path, {"If-Modified-Since": first.headers["last-modified"]})
        assert since.status_code == 304
        ranged = _same_answer(public_front, path, {"Range": "bytes=4-19"})
        assert ranged.status_code == 206
        assert ranged.headers["content-range"] == f"bytes 4-19/{stat.st_size}"
        assert ranged.content == (tiles_dir / "city" / rel).read_bytes()[4:20]
        suffix = _same_answer(public_front, path, {"Range": "bytes=-10"})
        assert suffix.status_code == 206
        cors = _same_answer(public_front, path, {"Origin": ORIGIN})
        assert cors.headers["access-control-allow-origin"] == ORIGIN
        assert "origin" in _vary(cors)
        stranger = _same_answer(public_front, path, {"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in stranger.headers


def test_nginx_itself_serves_the_files_and_the_app_the_api(public_front: Front) -> None:
    marker = f"/tiles/city/0.glb?probe={secrets.token_hex(4)}"
    assert httpx.get(public_front.url + marker).status_code == 200
    assert httpx.get(public_front.url + "/conformance").status_code == 200
    log = public_front.nginx.dir / "access.log"
    deadline = time.monotonic() + 10
    while True:  # nginx flushes its buffered access log every second
        lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        tile = [e for e in lines if e["path"] == "/tiles/city/0.glb"]
        api = [e for e in lines if e["path"] == "/conformance"]
        if (tile and api) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert tile and all(e["upstream"] == "" for e in tile)  # every GET of the file came from disk, not the app
    assert api and api[-1]["upstream"] == public_front.app_url.removeprefix("http://")


def test_nginx_gzips_json_like_the_app(public_front: Front) -> None:
    sent = {"Accept-Encoding": "gzip"}
    by_nginx = httpx.get(public_front.url + "/tiles/city/tileset.json", headers=sent)
    by_app = httpx.get(public_front.app_url + "/tiles/city/tileset.json", headers=sent)
    assert by_nginx.headers["content-encoding"] == by_app.headers["content-encoding"] == "gzip"
    assert by_nginx.headers["etag"] == by_app.headers["etag"]
    assert by_nginx.headers["etag"].startswith('W/"')
    assert _vary(by_nginx) == _vary(by_app) == {"accept-encoding"}
    assert by_nginx.json() == by_app.json()
    revalidated = httpx.get(
        public_front.url + "/tiles/city/tileset.json", headers={**sent, "If-None-Match": by_nginx.headers["etag"]}
    )
    assert revalidated.status_code == 304


def test_what_nginx_does_not_serve_gets_the_apps_answer(public_front: Front) -> None:
    for path, status in (
        ("/tiles/city/missing.glb", 404),
        ("/tiles/.hidden/x.glb", 404),
        ("/tiles/city/", 404),
    ):
        by_nginx = httpx.get(public_front.url + path)
        by_app = httpx.get(public_front.app_url + path)
        assert by_nginx.status_code == by_app.status_code == status, path
        assert by_nginx.json() == by_app.json(), path
    posted = httpx.post(public_front.url + "/tiles/city/0.glb", content=b"x")
    assert posted.status_code == 405
    assert posted.json()["code"] == "method-not-allowed"
    traversal = httpx.get(public_front.url + "/tiles/city/../../front/front.json")
    assert traversal.status_code in (400, 404)
    assert b"app_port" not in traversal.content


def test_the_api_is_proxied_with_links_to_the_front(public_front: Front) -> None:
    landing = httpx.get(public_front.url + "/collections", headers={"Accept": "application/json"})
    assert landing.status_code == 200
    ids = {c["id"] for c in landing.json()["collections"]}
    assert "buildings" in ids
    items = httpx.get(public_front.url + "/collections/buildings/items", params={"limit": 2})
    assert items.status_code == 200
    assert items.headers["content-type"].startswith("application/geo+json")
    assert items.json()["type"] == "FeatureCollection"
    assert all(link["href"].startswith(public_front.url) for link in items.json()["links"])
    preflight = httpx.options(
        public_front.url + "/tiles/city/0.glb",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN


def test_protected_tiles_need_a_good_key_and_are_private(protected_front: Front, module_engine: Engine) -> None:
    engine = module_engine
    key_id, key = new_api_key(engine, name="viewer", role="planner")
    _, other = new_api_key(engine, name="other", role="planner")
    path = "/tiles/city/0.glb"
    refused = _same_answer(protected_front, path)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"
    assert refused.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    bad = _same_answer(protected_front, path, {"X-API-Key": "cim_0000_notakey"})
    assert bad.status_code == 401
    served = _same_answer(protected_front, path, {"X-API-Key": key})
    assert served.status_code == 200
    assert served.headers["cache-control"] == "private, max-age=3600"
    assert {"x-api-key", "authorization"} <= _vary(served)
    bearer = _same_answer(protected_front, path, {"Authorization": f"Bearer {key}", "Range": "bytes=0-3"})
    assert bearer.status_code == 206
    assert bearer.content == b"glTF"
    not_modified = _same_answer(protected_front, path, {"X-API-Key": key, "If-None-Match": served.headers["etag"]})
    assert not_modified.status_code == 304
    with engine.begin() as conn:
        revoke_api_key(conn, key_id)
    revoked = httpx.get(protected_front.url + path, headers={"X-API-Key": key})
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "unknown or revoked API key"
    assert httpx.get(protected_front.url + path, headers={"X-API-Key": other}).status_code == 200
    # repeated failures are limited (CIM_API_AUTH_FAILURE_LIMIT=6 per client and key prefix): 429 with Retry-After
    statuses = [httpx.get(protected_front.url + path, headers={"X-API-Key": key}).status_code for _ in range(4)]
    assert statuses[-1] == 429
    limited = httpx.get(protected_front.url + path, headers={"X-API-Key": key})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["code"] == "too-many-requests"
    assert "www-authenticate" not in limited.headers


def test_stop_leaves_no_nginx_and_no_runtime_files(public_front: Front) -> None:
    state = public_front.nginx.status()
    assert state is not None
    config = Path(state.config).read_text()
    assert f"listen 127.0.0.1:{public_front.url.rsplit(':', 1)[1]};" in config
    stop_process(public_front.proc, timeout=30)
    assert public_front.proc.returncode == 0, public_front.log.read_text()[-2000:]
    assert not Path(f"/proc/{state.pid}").exists()
    assert public_front.nginx.status() is None
    left = {p.name for p in public_front.nginx.dir.iterdir()}
    assert left <= {"error.log", "access.log"}
    assert (public_front.nginx.dir / "access.log").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(public_front.url + "/tiles/city/0.glb")


def test_a_front_that_cannot_start_leaves_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        nginx = NginxFront(settings.data_path)
        from cim.front.nginx import FrontError

        with pytest.raises(FrontError, match=r"Address already in use|bind"):
            nginx.up(nginx.config(host="127.0.0.1", port=port, app_port=free_port()))
    assert not (settings.data_path / "front").exists()
    assert nginx.status() is None
