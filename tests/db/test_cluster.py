"""The private PostGIS cluster: first start, reuse, stop and restart, and the faults a user meets."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cim.db import cluster as cluster_module
from cim.db.cluster import PrivateCluster
from cim.errors import DatabaseError
from tests.db.conftest import own_cluster


@pytest.fixture
def private(tmp_path: Path) -> Iterator[PrivateCluster]:
    """A private cluster of its own in a temporary data directory, stopped afterwards."""
    with own_cluster(tmp_path / "data") as made:
        yield made


def _postgis_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT postgis_lib_version()").fetchone()
        assert row is not None
        return str(row[0])


def test_first_up_creates_a_cluster_with_postgis_and_a_second_up_reuses_it(private: PrivateCluster) -> None:
    url = private.up()
    major, minor = (int(p) for p in _postgis_version(url).split(".")[:2])
    assert (major, minor) >= (3, 3)
    status = private.status()
    assert status.running and status.port is not None and status.pid is not None
    started = time.monotonic()
    assert private.up() == url
    assert time.monotonic() - started < 2.0
    assert private.status().pid == status.pid
    assert (private.data_dir / "postgres.password").stat().st_mode & 0o077 == 0


def test_down_then_up_brings_the_same_data_back(private: PrivateCluster) -> None:
    url = private.up()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marker (v text)")
        conn.execute("INSERT INTO marker VALUES ('kept')")
    assert private.down() is True
    assert private.status().running is False
    assert private.down() is False
    url = private.up()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM marker").fetchone() == ("kept",)


def test_stale_pid_file_after_a_crash_is_recovered(private: PrivateCluster) -> None:
    private.up()
    status = private.status()
    assert status.pid is not None and status.pgdata is not None
    os.kill(status.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while private.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    # After a reboot the old PID may belong to an unrelated live process: ours here.
    pidfile = Path(status.pgdata) / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    lines[0] = str(os.getpid())
    pidfile.write_text("\n".join(lines) + "\n")
    url = private.up()
    assert _postgis_version(url)


def test_port_in_use_moves_the_server_to_another_free_port(private: PrivateCluster) -> None:
    private.up()
    first_port = private.status().port
    assert first_port is not None
    private.down()
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old port may be in TIME_WAIT
        blocker.bind(("127.0.0.1", first_port))
        blocker.listen(1)
        url = private.up()
    assert private.status().port != first_port
    assert _postgis_version(url)


def test_corrupted_data_directory_gives_a_clear_error_and_deletes_nothing(private: PrivateCluster) -> None:
    private.up()
    pgdata = Path(str(private.status().pgdata))
    private.down()
    (pgdata / "global" / "pg_control").unlink()
    before = sorted(p.name for p in pgdata.iterdir())
    with pytest.raises(DatabaseError, match=r"corrupted.*nothing was deleted"):
        private.up()
    assert sorted(p.name for p in pgdata.iterdir()) == before


def test_cluster_files_left_without_their_password_give_a_clear_error(private: PrivateCluster) -> None:
    """A data directory made again at the same path finds the old cluster's files but not its password."""
    private.up()
    pgdata = Path(str(private.status().pgdata))
    private.down()
    state = private.state_file.read_bytes()
    private.state_file.unlink()
    private.password_file.unlink()
    before = sorted(p.name for p in pgdata.iterdir())
    with pytest.raises(DatabaseError, match=r"password, is missing; nothing was changed"):
        private.up()
    assert sorted(p.name for p in pgdata.iterdir()) == before
    assert not private.password_file.exists()
    private.state_file.write_bytes(state)  # so that the fixture finds the files and removes them
    with pytest.raises(DatabaseError, match=r"password, is missing"):  # asked for the URL of the known cluster
        private.url()


def test_missing_postgresql_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cluster_module, "PG_LIB", tmp_path / "nowhere")
    monkeypatch.delenv("CIM_PG_BINDIR", raising=False)
    monkeypatch.setattr(cluster_module.shutil, "which", lambda name: None)
    with pytest.raises(DatabaseError, match="postgresql-15-postgis-3"):
        PrivateCluster(tmp_path / "data").up()


def test_server_settings_follow_the_machine_and_reach_an_older_cluster_at_its_next_start(
    private: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = private.up()
    with psycopg.connect(url) as conn:
        shared = conn.execute("SELECT setting::int8 * 8192 / 1048576 FROM pg_settings WHERE name = 'shared_buffers'")
        running_mb = int(shared.fetchone()[0])
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    low, high = cluster_module.SHARED_BUFFERS_MB
    assert running_mb == min(max(memory_mb // 4, low), high)
    pgdata = Path(private.status().pgdata or "")
    (pgdata / "cim.conf").write_text("shared_buffers = '128MB'\n", encoding="utf-8")  # as an older version wrote
    monkeypatch.setattr(cluster_module, "SHARED_BUFFERS_MB", (600, 600))
    assert private.down() is True
    url = private.up()
    with psycopg.connect(url) as conn:
        shared = conn.execute("SELECT setting::int8 * 8192 / 1048576 FROM pg_settings WHERE name = 'shared_buffers'")
        assert int(shared.fetchone()[0]) == 600
        assert conn.execute("SHOW max_wal_size").fetchone()[0] == "8GB"


def test_merged_settings_replace_the_platforms_lines_and_keep_a_standby_block() -> None:
    old = (
        "# Written by the CIM platform; an older version\nshared_buffers = '512MB'\nmax_wal_size = '4GB'\n\n"
        "# --- standby\nprimary_conninfo = 'host=127.0.0.1 port=5'\nhot_standby = on\n"
    )
    merged = cluster_module.merged_settings(old)
    assert merged.startswith(cluster_module.server_settings())
    assert "'512MB'" not in merged and "'4GB'" not in merged
    assert merged.endswith("# --- standby\nprimary_conninfo = 'host=127.0.0.1 port=5'\nhot_standby = on\n")
    assert cluster_module.merged_settings(merged) == merged
