"""``cim tiles``: build 3D Tiles 1.1 (and quantized-mesh terrain) from the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cim.cli.common import BBoxOption, JsonOption, emit_json, listing_done, moment_text, state, stderr
from cim.errors import TilesError
from tiles.options import PARTITION_ROWS

app = typer.Typer(help="3D Tiles: build tilesets from the database.", no_args_is_help=True)


@app.command("build")
def build(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tileset name (letters, digits, _ - .).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default $CIM_DATA_DIR/tiles/NAME).")
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers", help="Comma-separated tile classes and terrain (default: all; see `cim tiles classes`)."
        ),
    ] = None,
    bbox: BBoxOption = None,
    compress: Annotated[str, typer.Option("--compress", help="none | meshopt | draco.")] = "none",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 1,
    executor: Annotated[
        str | None, typer.Option("--executor", help="dask://HOST:PORT: render tiles on a Dask cluster.")
    ] = None,
    implicit: Annotated[
        bool,
        typer.Option(
            "--implicit", help="Write implicit quadtrees (one per feature class, implicitTiling + .subtree files)."
        ),
    ] = False,
    partition_rows: Annotated[
        int,
        typer.Option(
            "--partition-rows",
            help="Buildings the builder holds at once; a larger build is streamed grid cell by grid cell "
            "(the main process needs about 0.5 GB per million).",
        ),
    ] = PARTITION_ROWS,
    json_out: JsonOption = False,
) -> None:
    """Build or incrementally rebuild tileset NAME from the live rows of the database."""
    from tiles.build import build_tileset
    from tiles.options import OutputOptions, TilingOptions

    st = state(ctx)
    client = None
    pool = None
    if executor:
        if not executor.startswith("dask://"):
            raise TilesError(f"--executor {executor!r}: only dask://HOST:PORT is supported")
        try:
            from dask.distributed import Client
        except ImportError as exc:  # pragma: no cover
            raise TilesError("--executor dask:// needs the 'distributed' package") from exc
        try:
            client = Client("tcp://" + executor.removeprefix("dask://"), timeout=10)
        except OSError as exc:
            raise TilesError(f"cannot reach the Dask scheduler at {executor}: {exc}") from exc
        pool = client.get_executor()
    try:
        chosen = tuple(v.strip() for v in layers.split(",") if v.strip()) if layers is not None else None
        tiling = TilingOptions(layers=chosen, bbox=bbox, implicit=implicit, partition_rows=partition_rows)
        output = OutputOptions(out=out, compress=compress, jobs=jobs)
        report = build_tileset(st.engine(), st.settings, name, tiling, output, executor=pool)
    finally:
        if client is not None:
            client.close()
    if json_out:
        emit_json(report.to_dict())
    elif not st.quiet:
        stderr.print(report.summary())


@app.command("classes")
def classes_command(json_out: JsonOption = False) -> None:
    """List the tile content classes (the registry): layer, metadata class, title, legend."""
    from tiles import classes

    described = [c.describe() for c in classes.registered()]
    if json_out:
        emit_json({"classes": described, "layers": list(classes.layers())})
        return
    for c in described:
        typer.echo(f"{c['layer']:12} {c['class']:14} {c['title']} / {c['zh']}")
    typer.echo(f"{classes.TERRAIN:12} {'':14} quantized-mesh terrain from the DEM")


@app.command("list")
def list_command(
    ctx: typer.Context,
    json_out: JsonOption = False,
) -> None:
    """List the tilesets: those the server can serve, and those whose files are gone (marked missing)."""
    from cim.db.catalog import list_tilesets

    st = state(ctx)
    with st.engine().connect() as conn:
        rows = list_tilesets(conn, st.settings.data_path / "tiles", include_missing=True)
    if listing_done(rows, {"tilesets": rows}, as_json=json_out, empty="no tilesets are registered"):
        return
    typer.echo(f"{'name':20} {'status':8} {'tiles':>7} {'features':>9} {'MB':>8}  {'built':19}  layers")
    for t in rows:
        built = moment_text(t["built_at"])
        typer.echo(
            f"{t['name']:20} {t['status']:8} {t['tile_count']:>7} {t['feature_count']:>9} "
            f"{t['size_bytes'] / 1e6:>8.1f}  {built:19}  {','.join(t['layers'])}"
        )
    for t in rows:
        if not t["available"]:
            stderr.print(f"{t['name']}: {t['missing_reason']}")


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tileset name (see `cim tiles list`).")],
    keep_files: Annotated[bool, typer.Option("--keep-files", help="Remove the registration only.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Delete tileset NAME: its registration, and its files when they lie in the data directory's tiles folder.

    Files written elsewhere with --out are left in place (and named): cim does not remove folders it does not own.
    """
    import shutil

    from cim.db.catalog import delete_tileset

    st = state(ctx)
    with st.engine().begin() as conn:
        path = delete_tileset(conn, name)
    root = (st.settings.data_path / "tiles").resolve()
    folders = {(root / name).resolve(), Path(path).resolve()}
    removed: list[str] = []
    kept: list[str] = []
    for folder in sorted(folders):
        if not folder.exists():
            continue
        if not keep_files and folder.is_relative_to(root) and folder != root:
            shutil.rmtree(folder)
            removed.append(str(folder))
        else:
            kept.append(str(folder))
    if json_out:
        emit_json({"deleted": True, "name": name, "removed_files": removed, "kept_files": kept})
        return
    stderr.print(f"tileset {name} deleted" + (f"; files removed: {', '.join(removed)}" if removed else ""))
    for left in kept:
        stderr.print(f"files left in place: {left}")
