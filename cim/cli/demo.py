"""``cim demo``: generate the samples, ingest them, build the tiles and serve viewer + API."""

from __future__ import annotations

from typing import Annotated

import typer

from cim.cli.common import state, stderr
from cim.cli.db import redact
from cim.db import database_url


def demo(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
) -> None:
    """Start the database, load the sample city, build its 3D Tiles and serve viewer + API."""
    settings = state(ctx).settings
    url = database_url(settings)
    stderr.print(f"[green]database ready[/green]: {redact(url)}")
    stderr.print("not built yet: sample generation, ingest, 3D Tiles and the server land with the issues that add them")
    _ = (host, port)
