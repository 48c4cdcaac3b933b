"""``cim datasets``: list, inspect the version history of, and delete ingested sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cim.cli.common import JsonOption, emit_json, listing_done, moment_text, state, stderr
from cim.db.catalog import dataset_summary, list_datasets
from cim.db.datasets import dataset_history, dataset_rows, delete_dataset

app = typer.Typer(help="Ingested sources (IFC, vector, raster): list, history, delete.", no_args_is_help=True)

KINDS = ("ifc", "vector", "raster")
STATUSES = ("loading", "loaded", "superseded", "failed")
DatasetId = Annotated[int, typer.Argument(help="Dataset id (see `cim datasets list`).")]


@app.command("list")
def list_command(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind: ifc, vector or raster.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only this state: loading, loaded, superseded or failed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 100,
    json_out: JsonOption = False,
) -> None:
    """List the stored datasets, newest first."""
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(KINDS)}", param_hint="--kind")
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"{status!r} is not one of {', '.join(STATUSES)}", param_hint="--status")
    with state(ctx).engine().connect() as conn:
        total, rows = list_datasets(conn, kind=kind, status=status, limit=limit)
    document = {"numberMatched": total, "numberReturned": len(rows), "datasets": rows}
    if listing_done(rows, document, as_json=json_out, empty="no datasets are stored"):
        return
    typer.echo(f"{'id':>6}  {'kind':7} {'layer':11} {'status':10} {'stored':>9}  {'created':19}  name")
    for d in rows:
        stored = (d["counts"] or {}).get("stored", "")
        created = moment_text(d["created_at"])
        layer = d["layer"] or ""
        typer.echo(f"{d['id']:>6}  {d['kind']:7} {layer:11} {d['status']:10} {stored!s:>9}  {created:19}  {d['name']}")
    if total > len(rows):
        stderr.print(f"{len(rows)} of {total} shown; use --limit")


@app.command("history")
def history_command(ctx: typer.Context, dataset_id: DatasetId, json_out: JsonOption = False) -> None:
    """Every version of the source DATASET_ID belongs to (oldest first) with its rows: live and history."""
    with state(ctx).engine().connect() as conn:
        versions: list[dict[str, Any]] = []
        for d in dataset_history(conn, dataset_id):
            entry = dataset_summary(d)
            entry["path"] = d.path
            entry["rows"] = dataset_rows(conn, int(d.id))
            versions.append(entry)
    if json_out:
        emit_json({"dataset_id": dataset_id, "versions": versions})
        return
    for v in versions:
        rows = ", ".join(f"{t} {c['live']} live + {c['history']} history" for t, c in v["rows"].items()) or "no rows"
        marker = "*" if v["id"] == dataset_id else " "
        superseded = f", superseded {v['superseded_at'][:19]}" if v["superseded_at"] else ""
        typer.echo(
            f"{marker}{v['id']:>6}  v{v['version']}  {v['status']:10} {v['created_at'][:19]}{superseded}  "
            f"sha256 {v['sha256'][:12]}  {rows}"
        )


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    dataset_id: DatasetId,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even when tilesets were built from it (they are marked stale).")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Delete dataset DATASET_ID and its rows (buildings, elements, facilities…) in one transaction.

    Refused when tilesets were built from its rows, unless --force. A DEM's stored GeoTIFF is removed too.
    """
    st = state(ctx)
    with st.engine().begin() as conn:
        result = delete_dataset(conn, dataset_id, force=force)
    removed_file = None
    if result.file is not None:
        rasters = (st.settings.data_path / "rasters").resolve()
        target = Path(result.file).resolve()
        if target.is_relative_to(rasters) and target.is_file():
            target.unlink()
            removed_file = str(target)
    doc = {
        "deleted": True,
        "dataset_id": result.dataset_id,
        "name": result.name,
        "deleted_rows": result.deleted_rows,
        "stale_tilesets": result.stale_tilesets,
        "removed_file": removed_file,
    }
    if json_out:
        emit_json(doc)
        return
    rows = ", ".join(f"{n} {t}" for t, n in result.deleted_rows.items()) or "no rows"
    stderr.print(f"dataset {result.dataset_id} ({result.name}) deleted with {rows}")
    if result.stale_tilesets:
        stderr.print(
            f"tilesets built from it, now marked stale: {', '.join(result.stale_tilesets)}; rebuild them with "
            "`cim tiles build NAME`"
        )
