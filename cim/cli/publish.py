"""``cim tiles publish NAME --to s3``: upload a built tileset to a storage backend, only its new contents.

Registered into the ``cim tiles`` group by ``cim/cli/__init__.py``; the work is ``tiles.publish``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cim.cli.common import JsonOption, emit_json, state, stderr


def publish(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tileset name (built with `cim tiles build NAME`).")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Storage backend (s3 or local, configured by CIM_STORAGE_*); default: CIM_TILES_STORAGE. "
            "`cim serve` with CIM_TILES_STORAGE set serves it from there.",
        ),
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--from", help="Folder of the built tileset; default: DATA_DIR/tiles/NAME.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Publish tileset NAME to object storage: new contents first, then the index (atomic), then clean-up."""
    from cim.storage import open_storage
    from cim.storage.published import PublishedTilesSettings
    from tiles.publish import publish_tileset

    st = state(ctx)
    published = PublishedTilesSettings()
    backend = to or published.storage
    if not backend:
        raise typer.BadParameter("name the storage backend with --to s3 (or set CIM_TILES_STORAGE)", param_hint="--to")
    storage = open_storage(st.settings, published.storage_settings(backend))
    folder = source or st.settings.data_path / "tiles" / name
    report = publish_tileset(folder, storage, name)
    if json_out:
        emit_json(report.to_dict())
    elif not st.quiet:
        stderr.print(
            f"published {name} to {report.destination}: {report.files} files, {report.uploaded} contents uploaded "
            f"({report.bytes_uploaded / 1e6:.1f} MB), {report.kept} unchanged, {report.deleted_objects} removed, "
            f"{report.seconds:.1f} s"
        )
