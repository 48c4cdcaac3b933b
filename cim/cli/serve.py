"""``cim serve``: the HTTP service (tiles, OGC API – Features, details, jobs, analyses, viewer)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cim.cli.common import state, stderr


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (tile throughput scales with them).")
    ] = 1,
    server: Annotated[
        str, typer.Option(help="HTTP server: granian (default, faster tile serving) or uvicorn.")
    ] = "granian",
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
    read_replica: Annotated[
        str | None, typer.Option(help="postgresql://… of a hot standby (`cim db replica url`): reads go there.")
    ] = None,
    front: Annotated[
        str,
        typer.Option(
            help="none (default): the app serves everything; nginx: a private nginx on --host/--port serves the "
            "tile files (same headers, key checks through the app) and proxies the rest to the app on loopback."
        ),
    ] = "none",
) -> None:
    """Serve the API and the viewer; settings from CIM_* / CIM_API_* / CIM_VIEWER_* and DATABASE_URL."""
    from cim.api.server import run_server

    if read_replica:  # workers build their settings from the environment
        os.environ["CIM_READ_REPLICA_URL"] = read_replica
    if server not in ("granian", "uvicorn"):
        raise typer.BadParameter("--server must be granian or uvicorn")
    if front not in ("none", "nginx"):
        raise typer.BadParameter("--front must be none or nginx")
    if not state(ctx).quiet:
        behind = ", tiles served by nginx" if front == "nginx" else ""
        stderr.print(
            f"serving on http://{host}:{port}/ (viewer: /viewer/, API docs: /docs), {workers} {server} worker(s)"
            + behind
        )
    run_server(
        state(ctx).settings,
        host=host,
        port=port,
        workers=workers,
        server=server,  # type: ignore[arg-type]
        log_level=log_level,
        front=front,  # type: ignore[arg-type]
    )
