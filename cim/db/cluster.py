"""The private PostgreSQL + PostGIS cluster under the data directory (the embedded default database).

``initdb`` on first use, ``pg_ctl start`` on a free loopback port, password authentication (SCRAM) with a
generated password kept in the data directory (mode 0600). PostgreSQL refuses to run as root, so as root
the server runs as the ``postgres`` user; when that user cannot reach the data directory (e.g. it lies in
root's home) the cluster's files go to ``/var/lib/cim/<hash of the data directory>`` instead and the data
directory records where.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from cim.errors import DatabaseError
from cim.localservice import free_port, live_pid, locked_folder, log_tail, pid_from_file, port_is_free, saved_state
from cim.localstate import write_json_state

# free_port and port_is_free live in cim.localservice; re-exported here for existing importers.
__all__ = [
    "ClusterState",
    "ClusterStatus",
    "PrivateCluster",
    "ensure_extensions",
    "find_bindir",
    "free_port",
    "port_is_free",
]

SUPERUSER = "cim"
DATABASE = "cim"
OPTIONAL_EXTENSIONS = ("postgis_sfcgal", "pgrouting")
_SERVER_SETTINGS = """\
# Written by the CIM platform at each start; normal durability, sized for bulk spatial loads.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
shared_buffers = '{shared_buffers_mb}MB'
work_mem = '64MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '15min'
max_parallel_workers_per_gather = 2
jit = off
logging_collector = off
"""
SHARED_BUFFERS_MB = (512, 8192)
"""Bounds of ``shared_buffers``: a quarter of the machine's memory (PostgreSQL's usual advice), within these."""


def server_settings() -> str:
    """The private cluster's ``cim.conf``: ``shared_buffers`` a quarter of this machine's memory (512 MB–8 GB:
    at 10M buildings the building table and its GiST index are ≈ 3 GB and a leaf tile's read or a bbox query
    then finds its pages in PostgreSQL's own cache), ``max_wal_size`` 8 GB (a 10M-building load writes ≈ 6 GB
    of WAL: no checkpoint in the middle of it)."""
    try:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        memory_mb = 0
    low, high = SHARED_BUFFERS_MB
    return _SERVER_SETTINGS.format(shared_buffers_mb=min(max(memory_mb // 4, low), high))


def merged_settings(old: str) -> str:
    """``cim.conf`` with the platform's settings (:func:`server_settings`) in place of the ones ``old`` holds,
    and every other line of ``old`` kept after them (a standby's block, written by :mod:`cim.db.replica`)."""
    new = server_settings()
    managed = {line.split("=", 1)[0].strip() for line in new.splitlines() if "=" in line and not line.startswith("#")}
    kept = [
        line
        for line in old.splitlines()
        if not line.startswith("# Written by the CIM platform")
        and not ("=" in line and not line.lstrip().startswith("#") and line.split("=", 1)[0].strip() in managed)
    ]
    rest = "\n".join(kept).strip("\n")
    return f"{new}\n{rest}\n" if rest else new


PG_LIB = Path("/usr/lib/postgresql")
"""Where Debian/Ubuntu install the server binaries of each PostgreSQL major version."""
_PACKAGES_HINT = "install the Debian packages postgresql-15 and postgresql-15-postgis-3 (`make setup` does)"


@dataclass(frozen=True)
class ClusterState:
    """What the data directory records about its cluster (``postgres.json``)."""

    pgdata: str
    port: int
    user: str = SUPERUSER
    database: str = DATABASE


@dataclass(frozen=True)
class ClusterStatus:
    """Whether the private cluster runs, and where."""

    initialised: bool
    running: bool
    pgdata: str | None
    port: int | None
    pid: int | None


def find_bindir() -> Path:
    """The directory of the newest installed PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``)."""
    env = os.environ.get("CIM_PG_BINDIR")
    candidates = [Path(env)] if env else []
    versions = sorted(
        PG_LIB.glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(Path(which).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() and (bindir / "postgres").exists():
            return bindir
    raise DatabaseError(f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: {_PACKAGES_HINT}")


class PrivateCluster:
    """The private PostgreSQL cluster of one data directory."""

    NAME = "postgres"
    """Stem of the state file (``<NAME>.json``) and of the lock; the hot standby uses its own."""
    PGDATA_NAME = "pgdata"
    """Folder of the cluster's files inside the data directory (or ``/var/lib/cim/<PGDATA_NAME>-<hash>``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.state_file = self.data_dir / f"{self.NAME}.json"
        self.password_file = self.data_dir / "postgres.password"
        self.as_root = os.geteuid() == 0

    # -- public operations -------------------------------------------------------------------------

    def up(self) -> str:
        """Initialise (first use), start (when stopped) and prepare the database; return its URL.

        Idempotent: a running cluster is found and reused. Migrations are not applied here.
        """
        with self._lock():
            state = self._state() or self._initialise()
            self._check_not_corrupted(Path(state.pgdata))
            if not self._is_running(state):
                state = self._start(state)
            self._prepare_database(state)
            return self.url(state)

    def down(self) -> bool:
        """Stop the server (fast shutdown). Returns False when it was not running."""
        with self._lock():
            state = self._state()
            if state is None or not self._is_running(state):
                return False
            self._pg_ctl(state, "stop", "-m", "fast", "-w", "-t", "60")
            return True

    def status(self) -> ClusterStatus:
        """Whether the cluster is initialised and running, its data and port."""
        state = self._state()
        if state is None:
            return ClusterStatus(False, False, None, None, None)
        pid = self._live_postmaster_pid(state)
        port = self._running_port(state) if pid else state.port
        return ClusterStatus(True, pid is not None, state.pgdata, port, pid)

    def url(self, state: ClusterState | None = None) -> str:
        """The libpq connection URL of the cluster's database (``psql`` accepts it)."""
        state = state or self._state()
        if state is None:
            raise DatabaseError(f"no private cluster in {self.data_dir}; run `cim db up` first")
        port = self._running_port(state) or state.port
        if not self.password_file.exists():
            raise self._password_missing(Path(state.pgdata))
        password = self.password_file.read_text(encoding="utf-8").strip()
        return f"postgresql://{state.user}:{password}@127.0.0.1:{port}/{state.database}"

    # -- internals ---------------------------------------------------------------------------------

    def _password_missing(self, pgdata: Path) -> DatabaseError:
        return DatabaseError(
            f"{pgdata} holds a cluster but {self.password_file}, its password, is missing; nothing was "
            f"changed. Put the password file back, or move {pgdata} away to create a new cluster"
        )

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return locked_folder(self.data_dir, ".cluster.lock" if self.NAME == "postgres" else f".{self.NAME}.lock")

    def _state(self) -> ClusterState | None:
        try:
            return saved_state(self.state_file, ClusterState)
        except ValueError as exc:
            raise DatabaseError(f"{self.state_file} is unreadable ({exc}); nothing was changed") from exc

    def _save_state(self, state: ClusterState) -> None:
        write_json_state(self.state_file, asdict(state))

    def _pgdata_location(self) -> Path:
        inside = self.data_dir / self.PGDATA_NAME
        if not self.as_root or self._postgres_can_reach(self.data_dir):
            return inside
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path("/var/lib/cim") / f"{self.PGDATA_NAME}-{digest}"

    def _postgres_can_reach(self, directory: Path) -> bool:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-x", str(directory)], capture_output=True, check=False
        )
        return result.returncode == 0

    def _run(
        self, args: list[str], *, what: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_root else args
        full_env = {**os.environ, **env} if env else None
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=full_env)
        except FileNotFoundError as exc:
            raise DatabaseError(f"cannot run {args[0]}: {exc}; {_PACKAGES_HINT}") from exc
        except subprocess.TimeoutExpired as exc:
            raise DatabaseError(f"{what} timed out after {timeout:.0f} s") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise DatabaseError(f"{what} failed: {detail[-1] if detail else 'exit ' + str(result.returncode)}")
        return result

    def _initialise(self) -> ClusterState:
        bindir = find_bindir()
        if self.as_root:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise DatabaseError(f"running as root needs the 'postgres' system user: {_PACKAGES_HINT}") from exc
        pgdata = self._pgdata_location()
        if pgdata.exists() and any(pgdata.iterdir()):
            self._check_not_corrupted(pgdata)
            if not self.password_file.exists():
                # Its superuser password was in a data directory of the same path that is gone: nobody can log in.
                raise self._password_missing(pgdata)
        else:
            pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
            password = secrets.token_urlsafe(24)
            self.password_file.write_text(password + "\n", encoding="utf-8")
            self.password_file.chmod(0o600)
            pwfile = pgdata.parent / f".pw-{os.getpid()}"
            pwfile.write_text(password + "\n", encoding="utf-8")
            try:
                if self.as_root:
                    shutil.chown(pgdata, "postgres", "postgres")
                    shutil.chown(pwfile, "postgres", "postgres")
                pwfile.chmod(0o600)
                self._run(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(pgdata),
                        "-U",
                        SUPERUSER,
                        f"--pwfile={pwfile}",
                        "--auth=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ],
                    what="initdb",
                )
            finally:
                pwfile.unlink(missing_ok=True)
            conf = pgdata / "postgresql.conf"
            self._append_as_owner(conf, "\ninclude_if_exists = 'cim.conf'\n")
            self._write_as_owner(pgdata / "cim.conf", server_settings())
        state = ClusterState(pgdata=str(pgdata), port=free_port(54320))
        self._save_state(state)
        return state

    def _write_as_owner(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        if self.as_root:
            shutil.chown(path, "postgres", "postgres")

    def _append_as_owner(self, path: Path, text: str) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)

    def _check_not_corrupted(self, pgdata: Path) -> None:
        if not pgdata.exists():
            raise DatabaseError(
                f"the cluster's data directory {pgdata} is missing; {self.state_file} points to it. "
                f"Move {self.state_file} away to create a new cluster (nothing was deleted)"
            )
        missing = [name for name in ("PG_VERSION", "global/pg_control", "base") if not (pgdata / name).exists()]
        if missing:
            raise DatabaseError(
                f"the data directory {pgdata} looks corrupted (missing {', '.join(missing)}); nothing was "
                "deleted. Restore it from a backup, or move it away to start with an empty cluster"
            )
        version = (pgdata / "PG_VERSION").read_text(encoding="utf-8").strip()
        bindir = find_bindir()
        server_major = bindir.parent.name
        if server_major.isdigit() and version != server_major:
            raise DatabaseError(
                f"the cluster in {pgdata} was made by PostgreSQL {version} but the installed server is "
                f"{server_major}; install postgresql-{version} or upgrade the cluster with pg_upgrade"
            )

    def _live_postmaster_pid(self, state: ClusterState) -> int | None:
        pid = pid_from_file(Path(state.pgdata) / "postmaster.pid")
        return live_pid(pid, "postgres", state.pgdata)

    def _running_port(self, state: ClusterState) -> int | None:
        return pid_from_file(Path(state.pgdata) / "postmaster.pid", line=3)

    def _is_running(self, state: ClusterState) -> bool:
        return self._live_postmaster_pid(state) is not None

    def _pg_ctl(self, state: ClusterState, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run([str(find_bindir() / "pg_ctl"), "-D", state.pgdata, *args], what=f"pg_ctl {args[0]}")

    def _start(self, state: ClusterState) -> ClusterState:
        pidfile = Path(state.pgdata) / "postmaster.pid"
        if pidfile.exists():
            # Not running (checked by the caller), so the pid file was left by a crash or a reboot.
            pidfile.unlink()
        log = Path(state.pgdata) / "server.log"
        # The platform's settings as this version writes them (a cluster made by an older one gets them too).
        conf = Path(state.pgdata) / "cim.conf"
        self._write_as_owner(conf, merged_settings(conf.read_text(encoding="utf-8") if conf.exists() else ""))
        for attempt in range(2):
            # Another program may take the free port between the check and the server's bind: then once more
            # on a port the OS picks.
            port = free_port(state.port if attempt == 0 else None)
            if port != state.port:
                state = ClusterState(pgdata=state.pgdata, port=port, user=state.user, database=state.database)
                self._save_state(state)
            try:
                self._pg_ctl(state, "start", "-w", "-t", "120", "-l", str(log), "-o", f"-p {port}")
                return state
            except DatabaseError as exc:
                tail = log_tail(log)
                if attempt == 0 and "could not bind" in tail and not self._is_running(state):
                    continue
                raise DatabaseError(f"{exc}; server log: {tail}" if tail else str(exc)) from exc
        raise AssertionError("unreachable")

    def _prepare_database(self, state: ClusterState) -> None:
        admin_url = self.url(state).rsplit("/", 1)[0] + "/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise DatabaseError(f"the private cluster does not accept connections: {exc}") from exc
                time.sleep(0.2)
        with conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (state.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{state.database}"')
        with psycopg.connect(self.url(state), autocommit=True) as db:
            ensure_extensions(db)


def ensure_extensions(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Create PostGIS (required) and the optional extensions that are installed; return those present."""
    available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions").fetchall()}
    if "postgis" not in available:
        version = conn.execute("SHOW server_version_num").fetchone()
        major = int(str(version[0]) if version else "150000") // 10000
        raise DatabaseError(f"PostGIS is not installed for PostgreSQL {major}: install postgresql-{major}-postgis-3")
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    for name in OPTIONAL_EXTENSIONS:
        if name in available:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
    rows = conn.execute("SELECT extname FROM pg_extension").fetchall()
    return sorted(str(r[0]) for r in rows)
