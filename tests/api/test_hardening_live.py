"""Issue 13 against the real ``cim serve`` (granian, two worker processes): revocation and oversized URLs."""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cim.api.security import new_api_key
from cim.db.api_keys import revoke_api_key
from cim.settings import Settings
from tests.live import cim_serve, stop_process, wait_ready

pytestmark = pytest.mark.xdist_group("live-server")


@pytest.fixture
def live(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[str]:
    """``cim serve --workers 2`` on this test's database; its base URL."""
    log = tmp_path / "serve.log"
    # The 16 refused requests of the revocation test may all reach one worker: the failure limiter (tested in
    # test_hardening_security) must not turn its 401s into 429s here. No MQTT broker: these tests do not use
    # one, and a server killed after a slow shutdown would leave its broker running.
    env = {"CIM_API_AUTH_FAILURE_LIMIT": "100", "CIM_SENSING_MQTT": "false"}
    proc, base = cim_serve(settings, log, "--workers", "2", extra_env=env)

    def ready() -> bool:
        with urllib.request.urlopen(f"{base}/conformance", timeout=5) as r:
            return bool(r.status == 200)

    try:
        wait_ready(proc, ready, log, what="cim serve", every=0.5)
        yield base
    finally:
        stop_process(proc)


def _status(url: str, key: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"X-API-Key": key, "Content-Type": "application/json", "Connection": "close"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_revoked_key_is_refused_by_every_worker_process_on_the_next_request(live: str, engine: Engine) -> None:
    key_id, key = new_api_key(engine, name="leaked", role="planner")
    job = f"{live}/jobs/{uuid.uuid4()}"
    bad_write = {"name": "../not-a-name"}  # refused at validation, after the key and role are checked
    # new connection each time, so both workers verify (and cache) the key
    before = [_status(job, key) for _ in range(12)] + [_status(f"{live}/jobs/tiles", key, bad_write) for _ in range(4)]
    assert set(before[:12]) == {404} and set(before[12:]) == {400}, before
    with engine.begin() as conn:
        revoke_api_key(conn, key_id)
    after = [_status(job, key) for _ in range(12)] + [_status(f"{live}/jobs/tiles", key, bad_write) for _ in range(4)]
    assert set(after) == {401}, after


def _raw_get(base: str, target: str) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as s:
        # the server may answer and close before the whole request is sent: then read its answer
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def test_overlong_urls_get_an_answer_json_while_the_app_sees_them(live: str) -> None:
    answer = _raw_get(live, "/collections?x=" + "a" * 62_000)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414"), head[:200]
    assert set(json.loads(body)) == {"code", "title", "detail"}
    huge = _raw_get(live, "/collections?x=" + "a" * 660_000)
    assert huge.startswith(b"HTTP/1.1 4"), huge[:200]  # refused by the HTTP layer (414/431), never silence
