"""Streaming replication on this machine: a private primary, its hot standby, and `cim serve --read-replica`.

One pair of clusters for the whole module (a fresh data directory that the ``postgres`` user cannot reach,
so both clusters live under ``/var/lib/cim`` as on a root install); one service process on the pair. The
service is a real ``cim serve`` (uvicorn, one worker) and the client is httpx over loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cim.api.security import new_api_key
from cim.db.cluster import PrivateCluster
from cim.db.engine import make_engine
from cim.db.migrate import upgrade_to_head
from cim.db.replica import APPLICATION_NAME, StandbyCluster, lsn_value
from cim.errors import AuthError, DatabaseError
from cim.localservice import free_port
from tests.live import stop_process

pytestmark = pytest.mark.xdist_group("replica")

STA = "/sta/v1.1"
MAX_LAG_SECONDS = 4.0
SEED = {"name": "seed thing", "description": "made when the service starts"}


@dataclass
class Pair:
    """The primary and its standby, made once for the module."""

    data_dir: Path
    primary: PrivateCluster
    standby: StandbyCluster
    primary_url: str
    standby_url: str


@dataclass
class Service:
    """A running `cim serve --read-replica` on the pair, with a sensor-role key."""

    url: str
    key: str
    planner_key: str
    process: subprocess.Popen[bytes]


def _until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (psycopg.Error, httpx.TransportError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _one(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A migrated private primary and its hot standby in a fresh data directory."""
    data_dir = tmp_path_factory.mktemp("replica") / "data"
    primary = PrivateCluster(data_dir)
    primary_url = primary.up()
    upgrade_to_head(primary_url)
    standby = StandbyCluster(data_dir)
    standby_url = standby.up()
    yield Pair(data_dir, primary, standby, primary_url, standby_url)
    pgdata = [primary.status().pgdata]
    with contextlib.suppress(DatabaseError):
        standby.remove()
    with contextlib.suppress(DatabaseError):
        primary.down()
    for folder in pgdata:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def service(pair: Pair) -> Iterator[Service]:
    """`cim serve --read-replica URL` on the pair's primary (uvicorn, one worker, no MQTT)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        CIM_DATA_DIR=str(pair.data_dir),
        CIM_SENSING_MQTT="false",
        CIM_API_ACCESS_LOG="false",
        CIM_READ_REPLICA_MAX_LAG_SECONDS=str(MAX_LAG_SECONDS),
    )
    cmd = [str(Path(sys.executable).parent / "cim"), "-q", "serve", "--server", "uvicorn", "--port", str(port)]
    process = subprocess.Popen([*cmd, "--read-replica", pair.standby_url], env=env)
    url = f"http://127.0.0.1:{port}"
    try:

        def answering() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"cim serve exited with {process.returncode} (its stderr is above)")
            return httpx.get(f"{url}/status/database", timeout=5).status_code == 200

        _until(answering, 180, "the service")  # importing the app and checking migrations: slow on a loaded machine
        engine = make_engine(pair.primary_url)
        try:
            key = new_api_key(engine, name="replica-test", role="sensor")[1]
            planner = new_api_key(engine, name="replica-planner", role="planner")[1]
        finally:
            engine.dispose()
        seeded = httpx.post(f"{url}{STA}/Things", json=SEED, headers={"X-API-Key": key}, timeout=30)
        assert seeded.status_code == 201, seeded.text
        yield Service(url, key, planner, process)
    finally:
        stop_process(process, sig=signal.SIGINT)


def test_a_write_on_the_primary_is_visible_on_the_standby_which_refuses_writes(pair: Pair) -> None:
    with psycopg.connect(pair.primary_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE replica_marker (v text)")
        conn.execute("INSERT INTO replica_marker VALUES ('from the primary')")
    _until(lambda: _one(pair.standby_url, "SELECT v FROM replica_marker"), what="the row on the standby")
    assert _one(pair.standby_url, "SELECT pg_is_in_recovery()") is True
    with (
        psycopg.connect(pair.standby_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("INSERT INTO replica_marker VALUES ('on the standby')")
    slot = _one(pair.primary_url, "SELECT active FROM pg_replication_slots WHERE slot_name = 'cim_replica'")
    assert slot is True
    # replication connections are allowed from loopback only, for the replication role only
    hba = _one(
        pair.primary_url,
        "SELECT string_agg(address || ' ' || array_to_string(user_name, ','), ';') FROM pg_hba_file_rules"
        " WHERE 'replication' = ANY(database) AND 'cim_replicator' = ANY(user_name)",
    )
    assert hba == "127.0.0.1 cim_replicator"


def test_cim_db_replica_status_reports_streaming_and_no_lag(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cim.cli import main

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CIM_DATA_DIR", str(pair.data_dir))
    capsys.readouterr()
    assert main(["db", "replica", "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["running"] is True and report["in_recovery"] is True
    assert report["port"] != pair.primary.status().port
    _until(lambda: StandbyCluster(pair.data_dir).replication().lag_bytes == 0, what="no lag")
    assert (
        _one(pair.primary_url, "SELECT state FROM pg_stat_replication WHERE application_name = %s", (APPLICATION_NAME,))
        == "streaming"
    )
    assert main(["db", "replica", "url"]) == 0
    assert capsys.readouterr().out.strip() == pair.standby_url


def test_the_service_reads_from_the_standby_and_writes_to_the_primary(pair: Pair, service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as http:
        r = http.post(
            f"{STA}/Things", json={"name": "pump 1", "description": "a pump"}, headers={"X-API-Key": service.key}
        )
        assert r.status_code == 201, r.text
        assert lsn_value(r.headers["CIM-Write-LSN"]) > 0
        assert _one(pair.primary_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cim-api'") >= 1
        _until(lambda: StandbyCluster(pair.data_dir).replication().lag_bytes == 0, what="the standby to catch up")
        fresh = httpx.get(f"{service.url}{STA}/Things", timeout=10)  # a client without the write's token
        assert fresh.status_code == 200 and "pump 1" in [t["name"] for t in fresh.json()["value"]]
    # a GET preview writes in a transaction it rolls back: the standby refuses it, the primary answers it
    preview = httpx.get(f"{service.url}/analysis/safety/gas-proximity", timeout=30)
    assert preview.status_code == 200, preview.text
    assert preview.json()["type"] == "FeatureCollection"
    standby_log = Path(str(pair.standby.status().pgdata)) / "server.log"
    assert "cannot execute INSERT in a read-only transaction" in standby_log.read_text(errors="replace")
    readers = _one(pair.standby_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cim-api-read'")
    assert readers >= 1
    status = httpx.get(f"{service.url}/status/database", timeout=10).json()
    assert status["primary"]["reachable"] is True
    assert status["read_replica"]["used_for_reads"] is True and status["read_replica"]["in_recovery"] is True


def test_a_lagging_standby_keeps_reads_of_a_clients_own_writes_on_the_primary(pair: Pair, service: Service) -> None:
    _one(pair.standby_url, "SELECT pg_wal_replay_pause()::text")
    try:
        _until(lambda: _one(pair.standby_url, "SELECT pg_get_wal_replay_pause_state()") == "paused", what="pause")
        with httpx.Client(base_url=service.url, timeout=10) as writer:
            r = writer.post(
                f"{STA}/Things", json={"name": "gauge 7", "description": "x"}, headers={"X-API-Key": service.key}
            )
            assert r.status_code == 201, r.text
            thing = f"{STA}/Things({r.json()['@iot.id']})"
            token = r.headers["CIM-Write-LSN"]
            # another client, without the token, reads the standby: the new thing is not there yet
            assert httpx.get(f"{service.url}{thing}", timeout=10).status_code == 404
            # the writer's own reads carry the token (cookie, or the header) and are answered by the primary
            assert writer.get(thing).json()["name"] == "gauge 7"
            assert httpx.get(f"{service.url}{thing}", headers={"CIM-Write-LSN": token}, timeout=10).status_code == 200
            status = httpx.get(f"{service.url}/status/database", timeout=10).json()["read_replica"]
            assert status["replay_paused"] is True and status["lag_bytes"] > 0
            # past the lag bound the standby is left out of reads altogether
            _until(
                lambda: (
                    httpx.get(f"{service.url}/status/database", timeout=10).json()["read_replica"]["lag_seconds"]
                    > MAX_LAG_SECONDS
                ),
                MAX_LAG_SECONDS + 10,
                "the lag bound",
            )
            assert (
                httpx.get(f"{service.url}/status/database", timeout=10).json()["read_replica"]["used_for_reads"]
                is False
            )
            assert httpx.get(f"{service.url}{thing}", timeout=10).status_code == 200
    finally:
        _one(pair.standby_url, "SELECT pg_wal_replay_resume()::text")
    _until(lambda: httpx.get(f"{service.url}/status/database", timeout=10).json()["read_replica"]["lag_bytes"] == 0,
           what="the standby to catch up")  # fmt: skip
    assert httpx.get(f"{service.url}/status/database", timeout=10).json()["read_replica"]["used_for_reads"] is True


def test_a_key_revoked_while_the_standby_lags_is_refused_at_once_in_a_read(pair: Pair) -> None:
    from cim.api.security import KeyVerifier
    from cim.db.api_keys import revoke_api_key
    from cim.db.routing import CURRENT_ROUTE, ReadRoute, RoutingEngine

    engine = RoutingEngine(make_engine(pair.primary_url), make_engine(pair.standby_url), max_lag_seconds=60)
    try:
        key_id, key = new_api_key(engine, name="to-revoke", role="viewer")
        _until(lambda: _one(pair.standby_url, "SELECT 1 FROM api_key WHERE id = %s", (key_id,)), what="key on standby")
        verifier = KeyVerifier(engine)
        token = CURRENT_ROUTE.set(ReadRoute(replica_allowed=True))
        try:
            assert verifier.verify(key).key_id == key_id
            _one(pair.standby_url, "SELECT pg_wal_replay_pause()::text")
            with engine.begin() as conn:
                revoke_api_key(conn, key_id)
            time.sleep(0.6)  # the monitor sees the lag; the standby still has the key unrevoked
            assert _one(pair.standby_url, "SELECT revoked_at FROM api_key WHERE id = %s", (key_id,)) is None
            assert engine.serves_reads(engine.monitor.health)
            with pytest.raises(AuthError, match="revoked"):
                verifier.verify(key)
        finally:
            CURRENT_ROUTE.reset(token)
            _one(pair.standby_url, "SELECT pg_wal_replay_resume()::text")
    finally:
        engine.dispose()


def test_while_the_primary_restarts_reads_keep_working_writes_get_503_and_the_standby_catches_up(
    pair: Pair, service: Service
) -> None:
    body = {"name": "valve 3", "description": "x"}
    headers = {"X-API-Key": service.key}
    assert pair.primary.down() is True
    try:
        r = httpx.get(f"{service.url}{STA}/Things", timeout=10)
        assert r.status_code == 200 and "seed thing" in [t["name"] for t in r.json()["value"]]
        w = httpx.post(
            f"{service.url}/analysis/health-check/runs", json={}, headers={"X-API-Key": service.planner_key}, timeout=10
        )
        assert w.status_code == 503
        assert "primary database is not reachable" in w.json()["detail"] and w.headers["Retry-After"]
        status = httpx.get(f"{service.url}/status/database", timeout=10).json()
        assert status["primary"]["reachable"] is False and status["read_replica"]["used_for_reads"] is True
    finally:
        pair.primary.up()
    w = _until(lambda: (r := httpx.post(f"{service.url}{STA}/Things", json=body, headers=headers, timeout=10))
               .status_code == 201 and r, what="writes to come back")  # fmt: skip
    thing = f"{STA}/Things({w.json()['@iot.id']})"
    _until(lambda: httpx.get(f"{service.url}{thing}", timeout=10).status_code == 200, what="the standby to catch up")
    _until(lambda: StandbyCluster(pair.data_dir).replication().streaming, what="streaming again")


def test_a_crashed_standby_is_restarted_by_up_and_reads_fall_back_to_the_primary_meanwhile(
    pair: Pair, service: Service
) -> None:
    status = pair.standby.status()
    assert status.pid is not None
    os.kill(status.pid, signal.SIGKILL)
    _until(lambda: not pair.standby.status().running, what="the standby to die")
    r = httpx.get(f"{service.url}{STA}/Things", timeout=10)
    assert r.status_code == 200 and "seed thing" in [t["name"] for t in r.json()["value"]]
    assert StandbyCluster(pair.data_dir).up() == pair.standby_url
    _until(lambda: httpx.get(f"{service.url}/status/database", timeout=10).json()["read_replica"]["used_for_reads"],
           what="reads back on the standby")  # fmt: skip
