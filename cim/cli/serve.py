"""``cim serve``: the HTTP service (tiles, OGC API – Features, details, jobs, analyses, viewer)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
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
    settings = state(ctx).settings
    with broker_while_serving(settings.data_path):
        run_server(
            settings,
            host=host,
            port=port,
            workers=workers,
            server=server,  # type: ignore[arg-type]
            log_level=log_level,
            front=front,  # type: ignore[arg-type]
        )


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def broker_while_serving(data_path: Path) -> Iterator[None]:
    """With MQTT on (``CIM_SENSING_MQTT``, default true under ``cim serve``): the private broker runs while the
    service does. One this command started is stopped when it ends (normal exit, SIGTERM, SIGINT); one it
    found running is left alone. The workers find it running and only connect."""
    os.environ.setdefault("CIM_SENSING_MQTT", "true")
    from cim.sensing.runtime import SensingSettings

    if not SensingSettings().mqtt:
        yield
        return
    from cim.sensing.broker import PrivateBroker

    # Until the HTTP server installs its own handlers (it then exits with SystemExit on SIGTERM/SIGINT),
    # SIGTERM must also unwind through the ``finally`` that stops the broker.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with PrivateBroker(data_path).running():
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)
