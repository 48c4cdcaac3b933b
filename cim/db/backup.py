"""Backups of a deployment: the database (PostgreSQL custom-format dump) and the data directory's files.

A backup is one uncompressed tar file:

- ``database.dump``: ``pg_dump --format=custom`` of the platform database (compressed by pg_dump);
- ``files/<folder>/…``: every regular file of the data directory's :data:`DATA_FOLDERS` (built tilesets,
  DEM rasters, archived model files);
- ``manifest.json`` (last): format, creation time, versions, schema revision, exact row counts per table,
  and the size and SHA-256 of the dump and of every file.

:func:`verify_backup` checks every checksum and the dump's table of contents without touching any database;
:func:`restore_backup` does the same while unpacking, then replaces the target database's contents in one
transaction and swaps the folders in. ``pg_dump``, ``pg_restore`` and ``psql`` of the server's major version
are used (Debian's ``/usr/lib/postgresql/<major>/bin``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import text

from cim import __version__
from cim.db.cluster import PG_LIB, find_bindir
from cim.db.engine import connect_url, make_engine
from cim.db.migrate import upgrade_to_head
from cim.db.status import database_status
from cim.errors import CimError

FORMAT = "cim-backup/1"
DATA_FOLDERS = ("tiles", "rasters", "archive", "storage")
"""Folders of the data directory that hold platform data (not the cluster itself, not transient uploads)."""
MANIFEST = "manifest.json"
DUMP = "database.dump"
PATH_COLUMNS = (("tileset", "path"), ("dataset", "path"))
"""Columns that may hold absolute paths inside the data directory; rewritten when restoring elsewhere."""
_CHUNK = 1 << 20


class BackupError(CimError, exit_code=20):
    """A backup could not be made, checked or restored; the target was left as it was."""


@dataclass
class BackupManifest:
    """What a backup holds (``manifest.json``)."""

    format: str
    created_at: str
    cim_version: str
    data_dir: str
    postgresql_version: str
    postgis_version: str
    schema_revision: list[str]
    row_counts: dict[str, int]
    database: dict[str, Any]
    """``{"file": "database.dump", "size": bytes, "sha256": hex}``."""
    files: list[dict[str, Any]] = field(default_factory=list)
    """One ``{"path": "tiles/city/tileset.json", "size": bytes, "sha256": hex}`` per file (relative, POSIX)."""
    folders: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per data folder (``tiles``, ``rasters``…): ``{"files": n, "bytes": total}``."""
    tilesets: dict[str, int] = field(default_factory=dict)
    """Files per tileset folder (``tiles/<name>/``)."""


@dataclass
class BackupReport:
    """What :func:`create_backup` wrote."""

    path: str
    size_bytes: int
    files: int
    file_bytes: int
    database_bytes: int
    row_counts: dict[str, int]
    seconds: float


@dataclass
class VerifyReport:
    """What :func:`verify_backup` checked: every checksum and the dump's table of contents."""

    path: str
    ok: bool
    created_at: str
    files: int
    file_bytes: int
    database_bytes: int
    dump_entries: int
    row_counts: dict[str, int]
    schema_revision: list[str]


@dataclass
class RestoreReport:
    """What :func:`restore_backup` restored, and the row counts found afterwards (equal to the manifest's)."""

    path: str
    files: int
    file_bytes: int
    row_counts: dict[str, int]
    replaced: bool
    """True when a database with data (or data folders with files) was overwritten (``force``)."""
    seconds: float


# ------------------------------------------------------------------------------------------- tools


def server_major(url: str) -> int:
    """The PostgreSQL major version of the server at ``url`` (15 for 15.8)."""
    with psycopg.connect(connect_url(url), connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    return int(str(row[0]) if row else "0") // 10000


def client_tool(name: str, major: int) -> Path:
    """``pg_dump`` / ``pg_restore`` / ``psql`` of PostgreSQL ``major`` (never an older one: a dump made by an
    older pg_dump may miss what the newer server holds)."""
    candidates = [PG_LIB / str(major) / "bin" / name]
    with suppress(CimError):
        candidates.append(find_bindir() / name)
    which = shutil.which(name)
    if which:
        candidates.append(Path(which))
    for tool in candidates:
        if not tool.exists():
            continue
        out = subprocess.run([str(tool), "--version"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"(\d+)(?:\.\d+)?", out)
        if found and int(found.group(1)) >= major:
            return tool
    raise BackupError(f"{name} of PostgreSQL {major} not found: install the Debian package postgresql-client-{major}")


def _libpq_env(url: str) -> dict[str, str]:
    """Environment that points libpq tools at ``url`` (the password stays out of the process list)."""
    params = conninfo_to_dict(connect_url(url))
    env = dict(os.environ)
    for key, var in (
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("password", "PGPASSWORD"),
        ("dbname", "PGDATABASE"),
        ("sslmode", "PGSSLMODE"),
    ):
        if params.get(key):
            env[var] = str(params[key])
    return env


def _run(args: list[str], url: str, what: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, env=_libpq_env(url), capture_output=True, check=False, **kwargs)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{what} failed: {lines[-1] if lines else 'exit ' + str(result.returncode)}")
    return result


# ------------------------------------------------------------------------------------------- backup


def _data_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(relative POSIX path, absolute path)`` of every regular file in the data folders, sorted."""
    for folder in DATA_FOLDERS:
        base = data_dir / folder
        if not base.is_dir():
            continue
        for root, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                if path.is_file() and not path.is_symlink():
                    yield path.relative_to(data_dir).as_posix(), path


def _folder_summary(files: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for f in files:
        entry = out.setdefault(str(f["path"]).split("/", 1)[0], {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += int(f["size"])
    return out


def _tileset_summary(files: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in files:
        parts = str(f["path"]).split("/")
        if parts[0] == "tiles" and len(parts) > 2:
            out[parts[1]] = out.get(parts[1], 0) + 1
    return out


class _HashingReader(io.RawIOBase):
    """A file read through once, its SHA-256 and size taken on the way."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def _add(tar: tarfile.TarFile, name: str, path: Path) -> dict[str, Any]:
    info = tar.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(path, "rb") as handle:
        reader = _HashingReader(handle)
        tar.addfile(info, reader)
    if reader.size != info.size:
        raise BackupError(f"{path} changed while it was backed up; run the backup again")
    return {"size": reader.size, "sha256": reader.digest.hexdigest()}


def create_backup(url: str, data_dir: Path, out: Path, *, overwrite: bool = False) -> BackupReport:
    """Write a backup of the database at ``url`` and of ``data_dir``'s data folders to ``out`` (a tar file).

    The file appears only when complete (written next to it, then renamed). Refuses an existing ``out``
    without ``overwrite``. The dump is one consistent snapshot of the database; files written while the
    backup runs (a tileset being rebuilt) may be newer than it.
    """
    started = time.perf_counter()
    out = Path(out).expanduser().resolve()
    data_dir = Path(data_dir).expanduser().resolve()
    if out.exists() and not overwrite:
        raise BackupError(f"{out} exists; pass --overwrite to replace it")
    if out.is_relative_to(data_dir) and any(out.is_relative_to(data_dir / f) for f in DATA_FOLDERS):
        raise BackupError(f"{out} lies inside a data folder it would back up; write it elsewhere")
    out.parent.mkdir(parents=True, exist_ok=True)
    pg_dump = client_tool("pg_dump", server_major(url))
    work = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    work.mkdir()
    partial = work / "backup.tar"
    engine = make_engine(url, isolation_level="REPEATABLE READ")
    try:
        dump = work / DUMP
        # The manifest's row counts and the dump see the same snapshot: pg_dump joins this transaction's.
        with engine.connect() as conn:
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            status = database_status(conn)
            _run(
                [
                    str(pg_dump),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={dump}",
                ],
                url,
                "pg_dump",
            )
            conn.rollback()
        files: list[dict[str, Any]] = []
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            database = {"file": DUMP, **_add(tar, DUMP, dump)}
            dump.unlink()
            for rel, path in _data_files(data_dir):
                files.append({"path": rel, **_add(tar, f"files/{rel}", path)})
            manifest = BackupManifest(
                format=FORMAT,
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                cim_version=__version__,
                data_dir=str(data_dir),
                postgresql_version=status.postgresql_version,
                postgis_version=status.postgis_version,
                schema_revision=status.schema_revision,
                row_counts=status.row_counts,
                database=database,
                files=files,
                folders=_folder_summary(files),
                tilesets=_tileset_summary(files),
            )
            body = json.dumps(asdict(manifest), indent=2, ensure_ascii=False).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(body))
        os.replace(partial, out)
    finally:
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return BackupReport(
        path=str(out),
        size_bytes=out.stat().st_size,
        files=len(files),
        file_bytes=sum(int(f["size"]) for f in files),
        database_bytes=int(database["size"]),
        row_counts=status.row_counts,
        seconds=round(time.perf_counter() - started, 3),
    )


# ------------------------------------------------------------------------------------------- reading


def read_manifest(tar: tarfile.TarFile, path: Path) -> BackupManifest:
    """The manifest of an open backup; raises :class:`BackupError` when it is not a CIM backup."""
    try:
        member = tar.getmember(MANIFEST)
        handle = tar.extractfile(member)
        if handle is None:
            raise KeyError(MANIFEST)
        data = json.loads(handle.read().decode("utf-8"))
        manifest = BackupManifest(**data)
    except (KeyError, ValueError, TypeError) as exc:
        raise BackupError(f"{path} is not a complete CIM backup (no readable {MANIFEST}): {exc}") from exc
    if manifest.format != FORMAT:
        raise BackupError(f"{path} is a {manifest.format!r} backup; this version reads {FORMAT!r}")
    return manifest


@contextmanager
def _open(path: Path) -> Iterator[tuple[tarfile.TarFile, BackupManifest]]:
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    with ExitStack() as stack:
        try:
            tar = stack.enter_context(tarfile.open(path, "r:"))
        except (tarfile.TarError, OSError) as exc:
            raise BackupError(f"{path} is not a CIM backup (not a tar file): {exc}") from exc
        yield tar, read_manifest(tar, path)


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BackupError(f"the backup holds an unsafe path {name!r}; refusing to unpack it")
    return rel


def _checked_members(tar: tarfile.TarFile, manifest: BackupManifest, target: Path | None) -> Iterator[tuple[str, int]]:
    """Read every member (writing it under ``target`` when given), checking size and SHA-256 against the
    manifest; yields ``(name, size)``. Raises :class:`BackupError` on any mismatch, missing or extra member."""
    expected = {manifest.database["file"]: manifest.database, MANIFEST: None}
    expected.update({f"files/{f['path']}": f for f in manifest.files})
    seen: set[str] = set()
    for member in tar:
        name = member.name
        if name not in expected:
            raise BackupError(f"the backup holds {name!r}, which its manifest does not list")
        if name == MANIFEST:
            seen.add(name)
            continue
        if not member.isfile():
            raise BackupError(f"{name!r} in the backup is not a regular file")
        entry = expected[name]
        assert entry is not None
        source = tar.extractfile(member)
        assert source is not None
        digest = hashlib.sha256()
        size = 0
        with ExitStack() as stack:
            sink: IO[bytes] | None = None
            if target is not None:
                dest = target / _safe_relative(name)
                dest.parent.mkdir(parents=True, exist_ok=True)
                sink = stack.enter_context(open(dest, "wb"))
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if sink is not None:
                    sink.write(chunk)
        if size != int(entry["size"]) or digest.hexdigest() != entry["sha256"]:
            raise BackupError(f"{name} in the backup does not match its checksum: the backup is damaged")
        seen.add(name)
        yield name, size
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"the backup lacks {len(missing)} listed file(s), e.g. {missing[0]}: it is incomplete")


def _dump_entries(pg_restore: Path, dump: Path) -> int:
    result = subprocess.run([str(pg_restore), "--list", str(dump)], capture_output=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"the database dump is unreadable: {lines[-1] if lines else 'pg_restore failed'}")
    return sum(1 for line in result.stdout.decode(errors="replace").splitlines() if line and line[0] != ";")


def _major_of(version: str) -> int:
    found = re.match(r"(\d+)", version)
    return int(found.group(1)) if found else 0


def verify_backup(path: Path, scratch: Path | None = None) -> VerifyReport:
    """Check a backup without restoring it: every file's size and SHA-256, nothing missing or extra, and the
    dump's table of contents (``pg_restore --list``). ``scratch``: a folder for the dump while it is read
    (default: next to the backup). Raises :class:`BackupError` when anything is wrong."""
    path = Path(path).expanduser().resolve()
    with _open(path) as (tar, manifest):
        work = (scratch or path.parent) / f".verify-{secrets.token_hex(4)}"
        work.mkdir(parents=True)
        try:
            sizes = dict(_checked_members(tar, manifest, None))
            tar.extract(manifest.database["file"], work, filter="data")
            tool = client_tool("pg_restore", _major_of(manifest.postgresql_version))
            entries = _dump_entries(tool, work / manifest.database["file"])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return VerifyReport(
        path=str(path),
        ok=True,
        created_at=manifest.created_at,
        files=len(manifest.files),
        file_bytes=sum(sizes.get(f"files/{f['path']}", 0) for f in manifest.files),
        database_bytes=int(manifest.database["size"]),
        dump_entries=entries,
        row_counts=manifest.row_counts,
        schema_revision=manifest.schema_revision,
    )


# ------------------------------------------------------------------------------------------- restore


def database_has_data(url: str) -> list[str]:
    """Tables of the current schema (not PostGIS's own, not ``alembic_version``) that hold rows."""
    with psycopg.connect(connect_url(url), connect_timeout=10) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version' "
                "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
                "AND d.objid = c.oid AND d.deptype = 'e') ORDER BY c.relname"
            )
        ]
        return [
            t
            for t in tables
            if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(t))).fetchone() == (True,)
        ]


def _folders_with_files(data_dir: Path) -> list[str]:
    return [f for f in DATA_FOLDERS if (data_dir / f).is_dir() and any(p.is_file() for p in (data_dir / f).rglob("*"))]


# Everything of the schema goes, then the dump's script rebuilds it; psql runs both in ONE transaction, so a
# failure anywhere leaves the database as it was.
_PRELUDE = (
    "SET client_min_messages = warning; SET lock_timeout = '60s'; "
    "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;"
)


def _restore_database(url: str, dump: Path, major: int) -> None:
    pg_restore = client_tool("pg_restore", major)
    psql = client_tool("psql", major)
    env = _libpq_env(url)
    script = subprocess.Popen(
        [str(pg_restore), "--no-owner", "--no-privileges", "--no-comments", "--file=-", str(dump)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert script.stdout is not None
    loader = subprocess.run(
        [str(psql), "-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1", "-c", _PRELUDE, "-f", "-"],
        stdin=script.stdout,
        capture_output=True,
        env=env,
        check=False,
    )
    script.stdout.close()
    script_err = script.stderr.read() if script.stderr is not None else b""
    script.wait()
    if script.returncode != 0:
        lines = script_err.decode(errors="replace").strip().splitlines()
        raise BackupError(f"pg_restore failed: {lines[-1] if lines else script.returncode}; nothing was changed")
    if loader.returncode != 0:
        lines = [line for line in loader.stderr.decode(errors="replace").strip().splitlines() if "ERROR" in line]
        raise BackupError(f"restoring the database failed ({lines[0] if lines else 'psql error'}); nothing was changed")


def _rewrite_paths(url: str, old: str, new: str) -> None:
    if old == new:
        return
    with psycopg.connect(connect_url(url)) as conn:
        for table, column in PATH_COLUMNS:
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if exists is None or exists[0] is None:
                continue
            conn.execute(
                sql.SQL("UPDATE {t} SET {c} = %s || substr({c}, %s) WHERE starts_with({c}, %s)").format(
                    t=sql.Identifier(table), c=sql.Identifier(column)
                ),
                (new + "/", len(old) + 2, old + "/"),
            )


def restore_backup(url: str, data_dir: Path, path: Path, *, force: bool = False) -> RestoreReport:
    """Restore a backup into the database at ``url`` and the data folders of ``data_dir``.

    Refuses (:class:`BackupError`) when the database holds rows or the data folders hold files, unless
    ``force``. Every checksum is verified while unpacking (into a folder inside ``data_dir``) before anything
    is changed; the database's contents are then replaced in one transaction (``pg_restore`` script through
    ``psql --single-transaction``), paths inside the old data directory are rewritten to ``data_dir``, the
    schema is migrated to this version's head, and the folders are swapped in. Row counts are compared with
    the manifest's at the end.
    """
    started = time.perf_counter()
    data_dir = Path(data_dir).expanduser().resolve()
    with _open(path) as (tar, manifest):
        busy_tables = database_has_data(url)
        busy_folders = _folders_with_files(data_dir)
        if (busy_tables or busy_folders) and not force:
            what = ", ".join([*(f"table {t}" for t in busy_tables[:3]), *(f"folder {f}/" for f in busy_folders)])
            raise BackupError(
                f"the target is not empty ({what}…): restoring would replace its data; pass --force to do so, "
                "or restore into a fresh data directory (CIM_DATA_DIR) to check the backup first"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        work = data_dir / f".restore-{secrets.token_hex(4)}"
        work.mkdir()
        try:
            sizes = dict(_checked_members(tar, manifest, work))
            major = max(server_major(url), _major_of(manifest.postgresql_version))
            _restore_database(url, work / manifest.database["file"], major)
            _rewrite_paths(url, manifest.data_dir, str(data_dir))
            upgrade_to_head(url)
            _swap_folders(work / "files", data_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            counts = database_status(conn).row_counts
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    differ = {t: (n, counts.get(t)) for t, n in manifest.row_counts.items() if counts.get(t) != n}
    if differ:
        table, (want, got) = next(iter(differ.items()))
        raise BackupError(f"after the restore table {table} holds {got} rows, the backup {want}")
    return RestoreReport(
        path=str(Path(path).expanduser().resolve()),
        files=len(manifest.files),
        file_bytes=sum(sizes.get(f"files/{f['path']}", 0) for f in manifest.files),
        row_counts=counts,
        replaced=bool(busy_tables or busy_folders),
        seconds=round(time.perf_counter() - started, 3),
    )


def _swap_folders(unpacked: Path, data_dir: Path) -> None:
    """Put the unpacked data folders in place of the current ones (each by one rename)."""
    old = data_dir / f".replaced-{secrets.token_hex(4)}"
    try:
        for folder in DATA_FOLDERS:
            current = data_dir / folder
            new = unpacked / folder
            if current.exists():
                old.mkdir(exist_ok=True)
                current.rename(old / folder)
            if new.is_dir():
                new.rename(current)
    finally:
        shutil.rmtree(old, ignore_errors=True)
