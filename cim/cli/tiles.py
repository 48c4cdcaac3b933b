"""``cim tiles``: build 3D Tiles 1.1 (and quantized-mesh terrain) from the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cim.cli.common import JsonOption, emit_json, state, stderr
from cim.errors import TilesError

app = typer.Typer(help="3D Tiles: build tilesets from the database.", no_args_is_help=True)


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    try:
        w, s, e, n = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise TilesError(f"--bbox {value!r}: give four numbers W,S,E,N in degrees (CGCS2000)") from exc
    return (w, s, e, n)


@app.command("build")
def build(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tileset name (letters, digits, _ - .).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default $CIM_DATA_DIR/tiles/NAME).")
    ] = None,
    layers: Annotated[
        str, typer.Option("--layers", help="Comma-separated: buildings,elements,facilities,terrain.")
    ] = "buildings,elements,facilities,terrain",
    bbox: Annotated[str | None, typer.Option("--bbox", help="W,S,E,N in CGCS2000 degrees.")] = None,
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
    json_out: JsonOption = False,
) -> None:
    """Build or incrementally rebuild tileset NAME from the live rows of the database."""
    from tiles.build import build_tileset

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
        report = build_tileset(
            st.engine(),
            st.settings,
            name,
            out=out,
            layers=[v for v in layers.split(",") if v.strip()],
            bbox=_bbox(bbox),
            compress=compress,
            jobs=jobs,
            executor=pool,
            implicit=implicit,
        )
    finally:
        if client is not None:
            client.close()
    if json_out:
        emit_json(report.to_dict())
    elif not st.quiet:
        stderr.print(
            f"tileset {report.name}: {report.tiles} tiles ({report.written} written, {report.kept} kept, "
            f"{report.deleted} deleted), {report.buildings} buildings, {report.elements} elements, "
            f"{report.facilities} facilities, {report.terrain_tiles} terrain tiles, {report.bytes / 1e6:.1f} MB "
            f"in {report.seconds:.1f} s → {report.path}/tileset.json"
        )
