"""``cim db backup`` / ``verify-backup`` / ``restore``: a deployment survives the loss of its machine."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from cim.cli import main
from cim.db.backup import server_major
from cim.db.catalog import list_tilesets
from cim.db.cluster import PrivateCluster
from cim.db.engine import make_engine
from cim.db.scratch import database_on, drop_database
from cim.dem import live_dem, sample_heights
from cim.settings import Settings
from ingest.raster import ingest_raster
from ingest.vector import ingest_vector
from tests import factories
from tests.conftest import CliResult
from tests.db.conftest import own_cluster
from tests.test_dem import write_linear_dem
from tiles.build import build_tileset

RunCim = Callable[..., CliResult]
LON, LAT = 114.30, 30.58
TABLES_COMPARED = ("building", "district", "api_key", "facility")
"""Tables compared row by row (their rows hold no data-directory paths)."""


def _geojson(path: Path, n: int) -> Path:
    return factories.buildings_geojson(path, n, lambda i: {"id": i, "name": f"楼{i}", "height": 10 + i}, LON, LAT)


@pytest.fixture
def deployment(engine: Engine, settings: Settings, tmp_path: Path) -> Settings:
    """A deployment with a DEM, buildings on it, a built tileset and an archived file in its data directory."""
    dem, _, _ = write_linear_dem(tmp_path / "dem.tif", size=64)
    ingest_raster(engine, dem, settings)
    ingest_vector(engine, _geojson(tmp_path / "b.geojson", 5), settings, layer="buildings")
    build_tileset(engine, settings, "city", layers=["buildings"])
    archived = settings.data_path / "storage" / "archive" / "office" / "v1" / "content" / "office.ifc"
    archived.parent.mkdir(parents=True)
    archived.write_bytes(b"ISO-10303-21;\n" + bytes(range(256)) * 64)
    return settings


Env = dict[str, str | None]
"""Environment variables of one ``cim`` command (None: unset)."""


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: Env, *args: str) -> CliResult:
    """Run ``cim ARGS`` in-process with these environment variables (None: unset)."""
    with monkeypatch.context() as patch:
        for key, value in env.items():
            if value is None:
                patch.delenv(key, raising=False)
            else:
                patch.setenv(key, value)
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
    return CliResult(code, out.out, out.err)


Cli = Callable[..., CliResult]
"""``cli(env, *args)``: :func:`_cli` bound to this test's monkeypatch and capsys."""


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``cim ARGS`` in-process with the given environment variables."""

    def run(env: Env, *args: str) -> CliResult:
        return _cli(monkeypatch, capsys, env, *args)

    return run


@pytest.fixture
def env(deployment: Settings) -> Env:
    """The environment of a ``cim`` command on the deployment."""
    return {"DATABASE_URL": str(deployment.database_url), "CIM_DATA_DIR": str(deployment.data_path)}


@pytest.fixture
def backup(cli: Cli, env: Env, tmp_path: Path) -> Path:
    """``cim db backup`` of the deployment, in ``tmp_path / "b.tar"``."""
    path = tmp_path / "b.tar"
    assert cli(env, "db", "backup", str(path)).exit_code == 0
    return path


def _file_sums(data_dir: Path) -> dict[str, str]:
    sums = {}
    for folder in ("tiles", "rasters", "storage"):
        for path in sorted((data_dir / folder).rglob("*")):
            if path.is_file():
                sums[path.relative_to(data_dir).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def _table_sums(engine: Engine) -> dict[str, tuple[int, str | None]]:
    out = {}
    with engine.connect() as conn:
        for table in TABLES_COMPARED:
            out[table] = tuple(
                conn.execute(text(f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM {table} t")).one()
            )
        rows = conn.execute(text("SELECT id, name, kind, layer, sha256, counts, status FROM dataset ORDER BY id"))
        out["dataset"] = (0, hashlib.md5(repr([tuple(r) for r in rows]).encode()).hexdigest())
    return out


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[PrivateCluster]:
    """A second private cluster of its own in a temporary data directory, as on a replacement machine."""
    with own_cluster(tmp_path / "restored") as cluster:
        yield cluster
    state = json.loads(cluster.state_file.read_text()) if cluster.state_file.exists() else None
    if state and not Path(state["pgdata"]).is_relative_to(tmp_path):
        shutil.rmtree(state["pgdata"], ignore_errors=True)


def test_backup_restored_into_a_fresh_private_cluster_has_the_same_rows_and_files(
    deployment: Settings, engine: Engine, fresh_cluster: PrivateCluster, cli: Cli, env: Env, tmp_path: Path
) -> None:
    source_env = env
    backup = tmp_path / "backups" / "cim-2026-12-01.tar"
    made = cli(source_env, "db", "backup", str(backup), "--json")
    assert made.exit_code == 0, made.stderr
    report = json.loads(made.stdout)
    assert report["files"] >= 4 and report["row_counts"]["building"] == 5 and backup.is_file()
    with tarfile.open(backup) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["format"] == "cim-backup/1" and manifest["database"]["file"] == "database.dump"
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == _file_sums(deployment.data_path)
    assert manifest["tilesets"]["city"] >= 2 and manifest["folders"]["rasters"]["files"] == 1

    target_dir = fresh_cluster.data_dir
    target_env = {"DATABASE_URL": None, "CIM_DATA_DIR": str(target_dir)}
    restored = cli(target_env, "db", "restore", str(backup), "--json")
    assert restored.exit_code == 0, restored.stderr
    assert json.loads(restored.stdout)["row_counts"] == report["row_counts"]

    target = make_engine(fresh_cluster.url())
    try:
        assert _table_sums(target) == _table_sums(engine)
        assert _file_sums(target_dir) == _file_sums(deployment.data_path)
        status = cli(target_env, "db", "status", "--json")
        assert json.loads(status.stdout)["row_counts"] == report["row_counts"]
        with target.connect() as conn:
            # paths inside the old data directory now point into the new one
            (city,) = list_tilesets(conn, target_dir / "tiles")
            assert city["available"] is True
            dem = live_dem(conn)
        assert dem is not None and dem.path.is_relative_to(target_dir)
        assert sample_heights(dem.path, [LON], [LAT]).shape == (1,)
    finally:
        target.dispose()


def test_restore_over_a_database_with_data_is_refused_without_force(
    deployment: Settings, engine: Engine, cli: Cli, env: Env, backup: Path, tmp_path: Path
) -> None:
    ingest_vector(engine, _geojson(tmp_path / "later.geojson", 2), deployment, layer="buildings")
    before = _table_sums(engine)

    refused = cli(env, "db", "restore", str(backup))
    assert refused.exit_code == 20 and refused.stderr.count("\n") == 1
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert _table_sums(engine) == before

    forced = cli(env, "db", "restore", str(backup), "--force", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(forced.stdout)["replaced"] is True
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building")).scalar_one() == 5  # the later 2 are gone


def _damage(backup: Path, member_suffix: str) -> None:
    with tarfile.open(backup) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(member_suffix))
    data = bytearray(backup.read_bytes())
    data[member.offset_data + 10] ^= 0xFF
    backup.write_bytes(bytes(data))


def test_damaged_backup_is_detected_by_verify_and_restore_changes_nothing(
    deployment: Settings, engine: Engine, cli: Cli, env: Env, backup: Path
) -> None:
    good = cli(env, "db", "verify-backup", str(backup), "--json")
    assert good.exit_code == 0, good.stderr
    doc: dict[str, Any] = json.loads(good.stdout)
    assert doc["ok"] is True and doc["dump_entries"] > 20 and doc["row_counts"]["building"] == 5

    _damage(backup, "office.ifc")
    bad = cli(env, "db", "verify-backup", str(backup))
    assert bad.exit_code == 20 and "office.ifc" in bad.stderr and "checksum" in bad.stderr
    before, files = _table_sums(engine), _file_sums(deployment.data_path)
    refused = cli(env, "db", "restore", str(backup), "--force")
    assert refused.exit_code == 20 and "checksum" in refused.stderr
    assert _table_sums(engine) == before and _file_sums(deployment.data_path) == files
    assert not list(deployment.data_path.glob(".restore-*"))


def test_backup_refuses_to_overwrite_an_existing_file_and_reads_only_backups(
    cli: Cli, env: Env, tmp_path: Path
) -> None:
    backup = tmp_path / "b.tar"
    backup.write_text("yesterday's backup")
    refused = cli(env, "db", "backup", str(backup))
    assert refused.exit_code == 20 and "--overwrite" in refused.stderr
    assert backup.read_text() == "yesterday's backup"
    assert cli(env, "db", "backup", str(backup), "--overwrite").exit_code == 0
    not_a_backup = tmp_path / "notes.tar"
    with tarfile.open(not_a_backup, "w") as tar:
        tar.add(tmp_path / "b.geojson", arcname="b.geojson")
    result = cli(env, "db", "verify-backup", str(not_a_backup))
    assert result.exit_code == 20 and "not a complete CIM backup" in result.stderr


def test_the_dump_in_a_backup_loads_with_plain_pg_restore(
    engine: Engine, pg_server_url: str, backup: Path, tmp_path: Path
) -> None:
    """An operator without cim at hand can still get the data back with PostgreSQL's own tools."""
    with tarfile.open(backup) as tar:
        tar.extract("database.dump", tmp_path, filter="data")
    name = f"cim_plain_{secrets.token_hex(4)}"
    with psycopg.connect(database_on(pg_server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = database_on(pg_server_url, name)
        major = server_major(url)
        subprocess.run(
            [
                f"/usr/lib/postgresql/{major}/bin/pg_restore",
                "--no-owner",
                "--exit-on-error",
                "-d",
                url,
                "database.dump",
            ],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        plain = make_engine(url)
        try:
            assert _table_sums(plain) == _table_sums(engine)
        finally:
            plain.dispose()
    finally:
        drop_database(pg_server_url, name)
