"""``cim db``: the platform database (private cluster or ``DATABASE_URL``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from cim.cli.common import JsonOption, OverwriteOption, emit_json, emit_outcome, state, stderr
from cim.db.cluster import PrivateCluster, ensure_extensions
from cim.db.engine import make_engine
from cim.db.migrate import upgrade_to_head
from cim.db.status import database_status
from cim.errors import DatabaseError

app = typer.Typer(help="Start, stop, migrate and inspect the platform database.", no_args_is_help=True)


def redact(url: str) -> str:
    """A connection URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _external_up(url: str) -> None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            ensure_extensions(conn)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot reach DATABASE_URL {redact(url)}: {str(exc).strip().splitlines()[0]}") from exc


@app.command("up")
def up(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Start the private PostGIS cluster (or check DATABASE_URL), create extensions, apply migrations."""
    settings = state(ctx).settings
    if settings.database_url:
        url = settings.database_url
        _external_up(url)
        where = f"DATABASE_URL {redact(url)}"
    else:
        url = PrivateCluster(settings.data_path).up()
        where = f"private cluster in {settings.data_path}"
    revisions = upgrade_to_head(url)
    message = f"database up: {where} ({redact(url)}), schema at {', '.join(revisions)}"
    document = {"running": True, "where": where, "url": redact(url), "schema_revision": list(revisions)}
    emit_outcome(document, message, as_json=json_output)


@app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Report whether the database runs, its port, PostgreSQL/PostGIS versions, schema revision, row counts."""
    settings = state(ctx).settings
    report: dict[str, Any]
    if settings.database_url:
        url: str | None = settings.database_url
        report = {"managed": False, "url": redact(settings.database_url)}
    else:
        cluster_status = PrivateCluster(settings.data_path).status()
        report = {
            "managed": True,
            "data_dir": str(settings.data_path),
            "initialised": cluster_status.initialised,
            "pgdata": cluster_status.pgdata,
            "port": cluster_status.port,
            "pid": cluster_status.pid,
        }
        url = PrivateCluster(settings.data_path).url() if cluster_status.running else None
        report["running"] = cluster_status.running
    if url is not None:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                report.update(vars(database_status(conn)))
            report["running"] = True
        except Exception as exc:  # unreachable external database: report, do not crash
            report["running"] = False
            report["error"] = str(exc).strip().splitlines()[0]
        finally:
            engine.dispose()
    if json_output:
        emit_json(report)
        return
    for key in (
        "running",
        "managed",
        "data_dir",
        "pgdata",
        "port",
        "url",
        "postgresql_version",
        "postgis_version",
        "schema_revision",
        "head_revision",
        "at_head",
        "error",
    ):
        if key in report and report[key] is not None:
            typer.echo(f"{key:20} {report[key]}")
    for table, count in report.get("row_counts", {}).items():
        typer.echo(f"  {table:18} {count:>12,}")


@app.command("url")
def url(ctx: typer.Context) -> None:
    """Print a connection URL that psql accepts (with the password: keep it private)."""
    settings = state(ctx).settings
    typer.echo(settings.database_url or PrivateCluster(settings.data_path).url())


@app.command("down")
def down(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Stop the private cluster (its data stays; `cim db up` brings it back)."""
    settings = state(ctx).settings
    if settings.database_url:
        raise DatabaseError("DATABASE_URL is set: that database is not managed by cim, stop it where it runs")
    stopped = PrivateCluster(settings.data_path).down()
    message = "database stopped" if stopped else "database was not running"
    emit_outcome({"stopped": stopped}, message, as_json=json_output)


@app.command("migrate")
def migrate(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Apply pending schema migrations (Alembic) to the platform database."""
    settings = state(ctx).settings
    target = settings.database_url or PrivateCluster(settings.data_path).up()
    revisions = upgrade_to_head(target)
    emit_outcome({"schema_revision": list(revisions)}, f"schema at {', '.join(revisions)}", as_json=json_output)


@app.command("backup")
def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The backup file to write (a tar: dump + files + manifest).")],
    overwrite: OverwriteOption = False,
    json_output: JsonOption = False,
) -> None:
    """Back up the database (pg_dump custom format) and the data directory's tilesets, rasters and archive."""
    from cim.db import database_url
    from cim.db.backup import create_backup

    settings = state(ctx).settings
    report = create_backup(database_url(settings), settings.data_path, file, overwrite=overwrite)
    if json_output:
        emit_json(report)
    else:
        stderr.print(
            f"backup written to {report.path}: {report.size_bytes / 1e6:.1f} MB, database dump "
            f"{report.database_bytes / 1e6:.1f} MB, {report.files} files ({report.file_bytes / 1e6:.1f} MB), "
            f"{sum(report.row_counts.values()):,} rows in {report.seconds:.1f} s"
        )


@app.command("verify-backup")
def verify_backup_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A backup written by `cim db backup`.")],
    json_output: JsonOption = False,
) -> None:
    """Check a backup without restoring it: every checksum, nothing missing, a readable database dump."""
    from cim.db.backup import verify_backup

    _ = state(ctx)
    report = verify_backup(file)
    if json_output:
        emit_json(report)
    else:
        stderr.print(
            f"backup {report.path} of {report.created_at} is intact: {report.files} files, database dump with "
            f"{report.dump_entries} entries, {sum(report.row_counts.values()):,} rows, schema "
            f"{', '.join(report.schema_revision)}"
        )


@app.command("restore")
def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A backup written by `cim db backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that holds data (and the data folders' files).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Restore a backup into the platform database and data directory (refused over data without --force)."""
    from cim.db import database_url
    from cim.db.backup import restore_backup

    settings = state(ctx).settings
    report = restore_backup(database_url(settings, migrate=False), settings.data_path, file, force=force)
    if json_output:
        emit_json(report)
    else:
        stderr.print(
            f"restored {report.path}: {sum(report.row_counts.values()):,} rows, {report.files} files "
            f"({report.file_bytes / 1e6:.1f} MB) in {report.seconds:.1f} s"
        )


replica_app = typer.Typer(
    help="A hot standby of the private cluster (streaming replication): up, status, url, down, promote, remove.",
    no_args_is_help=True,
)
app.add_typer(replica_app, name="replica")


def _standby(ctx: typer.Context) -> Any:
    from cim.db.replica import StandbyCluster

    settings = state(ctx).settings
    if settings.database_url:
        raise DatabaseError(
            "DATABASE_URL is set: cim manages replicas of its private cluster only; make a standby of that "
            "server where it runs (pg_basebackup -R), then give its URL to `cim serve --read-replica`"
        )
    return StandbyCluster(settings.data_path)


@replica_app.command("up")
def replica_up(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Make (first use: pg_basebackup of the primary, replication slot) and start the hot standby."""
    standby = _standby(ctx)
    url = standby.up()
    report = {"running": True, "url": redact(url), **standby.report()}
    message = f"read replica up on port {report['port']} ({redact(url)}), lag {report.get('lag_bytes')} bytes"
    emit_outcome(report, message, as_json=json_output)


@replica_app.command("status")
def replica_status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Whether the standby runs, its port, and where it is in the primary's WAL (lag in bytes)."""
    report = _standby(ctx).report()
    if json_output:
        emit_json(report)
        return
    for key, value in report.items():
        if value is not None:
            typer.echo(f"{key:20} {value}")


@replica_app.command("url")
def replica_url(ctx: typer.Context) -> None:
    """Print the standby's connection URL (for `cim serve --read-replica` or psql; keep it private)."""
    typer.echo(_standby(ctx).url())


@replica_app.command("down")
def replica_down(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Stop the standby (its slot keeps the primary's WAL for it; `cim db replica up` catches up)."""
    stopped = _standby(ctx).down()
    message = "read replica stopped" if stopped else "read replica was not running"
    emit_outcome({"stopped": stopped}, message, as_json=json_output)


@replica_app.command("promote")
def replica_promote(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Fail over: promote the standby to a primary that accepts writes (it stops following the old one)."""
    url = _standby(ctx).promote()
    message = f"standby promoted: it accepts writes at {redact(url)}; point DATABASE_URL at it"
    emit_outcome({"promoted": True, "url": redact(url)}, message, as_json=json_output)


@replica_app.command("remove")
def replica_remove(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Stop the standby, drop its replication slot on the primary and delete its files (not the primary's)."""
    removed = _standby(ctx).remove()
    message = "read replica removed" if removed else "there was no read replica"
    emit_outcome({"removed": removed}, message, as_json=json_output)
