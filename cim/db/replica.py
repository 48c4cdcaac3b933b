"""A hot standby of the private cluster: PostgreSQL streaming replication on this machine.

``StandbyCluster(data_dir).up()`` makes (first use) and starts a read-only copy of the data directory's
private cluster:

- a replication role ``cim_replicator`` with a generated password (``postgres-replica.password``, 0600),
  allowed by one ``pg_hba.conf`` line for 127.0.0.1 only;
- a physical replication slot ``cim_replica`` on the primary, so the primary keeps every WAL segment the
  standby has not received yet (a standby that is down for a while catches up instead of needing a new
  base backup; remove a standby you no longer want with :meth:`StandbyCluster.remove`, or the slot keeps
  WAL on the primary's disk forever);
- ``pg_basebackup`` of the primary (WAL streamed along) into its own data folder, ``standby.signal``,
  ``primary_conninfo`` and ``hot_standby = on``, on its own free loopback port.

The standby runs as the same operating-system user as the primary (``postgres`` when root) and is
stopped, restarted after a crash and reported on like the primary (:class:`~cim.db.cluster.PrivateCluster`
is its base). Its superuser and password are the primary's (the base backup copies the roles).
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cim.db.cluster import ClusterState, PrivateCluster, find_bindir
from cim.errors import DatabaseError
from cim.localservice import free_port

REPLICATION_USER = "cim_replicator"
SLOT = "cim_replica"
APPLICATION_NAME = "cim_replica"
"""How the standby's WAL receiver names itself on the primary (``pg_stat_replication.application_name``)."""
_HBA_LINE = f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256"
_STANDBY_MARK = "# cim standby settings"


@dataclass(frozen=True)
class ReplicationStatus:
    """Where the standby is in the primary's WAL (LSNs as PostgreSQL prints them, ``X/Y``)."""

    in_recovery: bool
    """True while it is a standby; False once promoted."""
    replay_paused: bool
    receive_lsn: str | None
    replay_lsn: str | None
    last_replay_at: str | None
    """Commit time (ISO 8601) of the last replayed transaction."""
    primary_lsn: str | None
    """The primary's current WAL write position (None when the primary is unreachable)."""
    lag_bytes: int | None
    """WAL bytes the primary has written that the standby has not replayed yet."""
    streaming: bool
    """The primary sees the standby's WAL receiver (``pg_stat_replication``)."""


def lsn_value(lsn: str) -> int:
    """A WAL position ``X/Y`` (hexadecimal halves, as PostgreSQL prints ``pg_lsn``) as one integer (bytes).

    >>> lsn_value("0/16B3748")
    23803720
    >>> lsn_value("1/0") - lsn_value("0/FFFFFFFF")
    1
    """
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class StandbyCluster(PrivateCluster):
    """The hot standby of the private cluster of one data directory."""

    NAME = "postgres-replica"
    PGDATA_NAME = "replica-pgdata"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.primary = PrivateCluster(self.data_dir)
        self.replication_password_file = self.data_dir / "postgres-replica.password"

    # -- public operations -------------------------------------------------------------------------

    def up(self) -> str:
        """Make (first use) and start the standby; return its URL. The primary is started when it is not.

        Idempotent: a running standby is reused; after a crash a stale pid file is recovered. When the
        primary moved to another port since the last start, ``primary_conninfo`` follows it.
        """
        primary_url = self.primary.up()
        with self._lock():
            state = self._state()
            if state is None:
                state = self._make_standby(primary_url)
            self._check_not_corrupted(Path(state.pgdata))
            self._write_standby_settings(state)
            if not self._is_running(state):
                state = self._start(state)
            else:
                self._reload(state)
            self._wait_for_connections(state)
            return self.url(state)

    def promote(self) -> str:
        """Promote the standby to a primary of its own (failover); return its URL.

        After this it accepts writes and no longer follows the old primary: point ``DATABASE_URL`` at it,
        and do not start the old primary for writes again (see docs/operations.md, failover).
        """
        with self._lock():
            state = self._state()
            if state is None or not self._is_running(state):
                raise DatabaseError("no running standby to promote; run `cim db replica up` first")
            self._pg_ctl(state, "promote", "-w", "-t", "60")
            return self.url(state)

    def remove(self) -> bool:
        """Stop the standby, drop its replication slot on the primary and delete its data folder.

        Returns False when there was no standby. The primary's data is not touched.
        """
        with self._lock():
            state = self._state()
            if state is None:
                return False
            if self._is_running(state):
                self._pg_ctl(state, "stop", "-m", "fast", "-w", "-t", "60")
            if self.primary.status().running:
                with psycopg.connect(self.primary.url(), autocommit=True, connect_timeout=10) as conn:
                    _drop_slot(conn)
            shutil.rmtree(state.pgdata, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)
            return True

    def replication(self) -> ReplicationStatus:
        """The standby's replay position and lag behind the primary (the standby must be running)."""
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
                " pg_last_xact_replay_timestamp(),"
                " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END"
            ).fetchone()
        assert row is not None
        in_recovery, receive, replay, replay_at, paused = row
        primary_lsn: str | None = None
        streaming = False
        try:
            with psycopg.connect(self.primary.url(), autocommit=True, connect_timeout=5) as conn:
                lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                primary_lsn = str(lsn[0]) if lsn else None
                seen = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'",
                    (APPLICATION_NAME,),
                ).fetchone()
                streaming = bool(seen and seen[0])
        except (psycopg.OperationalError, DatabaseError):
            pass
        lag = None
        if primary_lsn is not None and replay is not None and in_recovery:
            lag = max(0, lsn_value(primary_lsn) - lsn_value(str(replay)))
        return ReplicationStatus(
            in_recovery=bool(in_recovery),
            replay_paused=bool(paused),
            receive_lsn=None if receive is None else str(receive),
            replay_lsn=None if replay is None else str(replay),
            last_replay_at=None if replay_at is None else replay_at.isoformat(),
            primary_lsn=primary_lsn,
            lag_bytes=lag,
            streaming=streaming,
        )

    def report(self) -> dict[str, Any]:
        """What ``cim db replica status`` prints: initialised, running, port, pid and, when running, replication."""
        status = self.status()
        out: dict[str, Any] = {
            "initialised": status.initialised,
            "running": status.running,
            "pgdata": status.pgdata,
            "port": status.port,
            "pid": status.pid,
        }
        if status.running:
            try:
                out.update(vars(self.replication()))
            except psycopg.OperationalError as exc:
                out["error"] = str(exc).strip().splitlines()[0]
        return out

    # -- internals ---------------------------------------------------------------------------------

    def _make_standby(self, primary_url: str) -> ClusterState:
        password = self._replication_password()
        with psycopg.connect(primary_url, autocommit=True, connect_timeout=10) as conn:
            _ensure_replication_role(conn, password)
            self._allow_replication_from_loopback(conn)
            _drop_slot(conn)  # left by an interrupted earlier attempt: the new base backup creates it again
        pgdata = self._pgdata_location()
        if pgdata.exists() and any(pgdata.iterdir()):
            raise DatabaseError(
                f"{pgdata} already holds files but {self.state_file} does not record a standby there; "
                "move it away to make a new standby (nothing was deleted)"
            )
        pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.as_root:
            shutil.chown(pgdata, "postgres", "postgres")
        primary_port = int(primary_url.rsplit(":", 1)[1].split("/", 1)[0])
        try:
            self._run(
                [
                    str(find_bindir() / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary_port),
                    "-U",
                    REPLICATION_USER,
                    "--no-password",
                    "-D",
                    str(pgdata),
                    "-X",
                    "stream",
                    "-C",
                    "-S",
                    SLOT,
                    "-c",
                    "fast",
                ],
                what="pg_basebackup of the primary",
                timeout=3600,
                env={"PGPASSWORD": password},  # never on a command line (the process list shows those)
            )
        except DatabaseError:
            shutil.rmtree(pgdata, ignore_errors=True)
            raise
        (pgdata / "server.log").unlink(missing_ok=True)  # the primary's log came along in the copy
        self._write_as_owner(pgdata / "standby.signal", "")
        state = ClusterState(pgdata=str(pgdata), port=free_port(54330))
        self._save_state(state)
        return state

    def _replication_password(self) -> str:
        if self.replication_password_file.exists():
            return self.replication_password_file.read_text(encoding="utf-8").strip()
        password = secrets.token_urlsafe(24)
        self.replication_password_file.write_text(password + "\n", encoding="utf-8")
        self.replication_password_file.chmod(0o600)
        return password

    def _allow_replication_from_loopback(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SHOW hba_file").fetchone()
        assert row is not None
        hba = Path(str(row[0]))
        lines = hba.read_text(encoding="utf-8").splitlines()
        if _HBA_LINE not in lines:
            # First match wins in pg_hba.conf: the line goes before initdb's defaults.
            text = f"# cim: streaming replication to the local hot standby (loopback only)\n{_HBA_LINE}\n"
            hba.write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
            conn.execute("SELECT pg_reload_conf()")

    def _write_standby_settings(self, state: ClusterState) -> None:
        """Rewrite the standby block of ``cim.conf``: where the primary is, the slot, hot standby."""
        primary = self.primary._state()
        if primary is None:
            raise DatabaseError(f"no private cluster in {self.data_dir}; run `cim db up` first")
        port = self.primary._running_port(primary) or primary.port
        conf = Path(state.pgdata) / "cim.conf"
        text = conf.read_text(encoding="utf-8") if conf.exists() else ""
        base = text.split(_STANDBY_MARK, 1)[0].rstrip("\n")
        pwfile = Path(state.pgdata) / "replication.pgpass"
        password = self._replication_password()
        self._write_as_owner(pwfile, f"127.0.0.1:{port}:replication:{REPLICATION_USER}:{password}\n")
        pwfile.chmod(0o600)
        conninfo = (
            f"host=127.0.0.1 port={port} user={REPLICATION_USER} passfile={pwfile} "
            f"application_name={APPLICATION_NAME} connect_timeout=5"
        )
        block = (
            f"{_STANDBY_MARK} (rewritten by `cim db replica up`)\n"
            f"primary_conninfo = '{conninfo}'\n"
            f"primary_slot_name = '{SLOT}'\n"
            "hot_standby = on\n"
            "hot_standby_feedback = on\n"
            "wal_receiver_status_interval = '1s'\n"
            "wal_retrieve_retry_interval = '1s'\n"
            "max_standby_streaming_delay = '30s'\n"
        )
        self._write_as_owner(conf, f"{base}\n\n{block}" if base else block)

    def _reload(self, state: ClusterState) -> None:
        self._pg_ctl(state, "reload")

    def _wait_for_connections(self, state: ClusterState) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(self.url(state), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise DatabaseError(f"the standby does not accept connections: {exc}") from exc
                time.sleep(0.2)


def _ensure_replication_role(conn: psycopg.Connection[Any], password: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (REPLICATION_USER,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} WITH REPLICATION LOGIN PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(REPLICATION_USER), sql.Literal(password)
        )
    )


def _drop_slot(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s AND NOT active",
        (SLOT,),
    )
