"""``cim demo``: generate the samples, ingest them, build the tiles, run the health check, serve."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from cim.cli.common import JsonOption, emit_json, state, stderr
from cim.cli.db import redact
from cim.db import database_url

DEMO_TILESET = "city"


def demo(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server worker processes.")] = 2,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve viewer + API at the end.")] = True,
    json_output: JsonOption = False,
) -> None:
    """Start the database, load the sample city, build its 3D Tiles, run the health check, serve viewer + API."""
    from cim.analysis.health_check import run_health_check
    from sample_models.city import load_sample_city
    from tiles.build import build_tileset

    cli = state(ctx)
    settings = cli.settings
    started = time.perf_counter()

    def step(message: str) -> None:
        if not cli.quiet:
            stderr.print(f"[bold cyan]demo[/bold cyan] {message}")

    step(f"database: {redact(database_url(settings))}")
    engine = cli.engine()
    city = load_sample_city(engine, settings, step=step)
    step("building the 3D Tiles (buildings, BIM elements, facilities, terrain)")
    tiles = build_tileset(engine, settings, DEMO_TILESET, jobs=2)
    step("running the urban health check")
    health = run_health_check(engine)
    summary: dict[str, Any] = {
        "sample_city": city.to_dict(),
        "tileset": tiles.to_dict(),
        "health_check": health.to_dict(),
        "viewer": f"http://{host}:{port}/viewer/",
        "seconds": round(time.perf_counter() - started, 2),
    }
    if json_output:
        emit_json(summary)
    step(f"sample city ready in {summary['seconds']} s")
    if serve:
        from cim.api.server import run_server
        from cim.cli.serve import broker_while_serving
        from cim.sensing.simulate import start_demo_simulation

        with broker_while_serving(settings.data_path):  # a broker started here stops with the service
            start_demo_simulation(engine, settings.data_path, step=step)
            step(f"viewer: http://{host}:{port}/viewer/   API: http://{host}:{port}/   docs: http://{host}:{port}/docs")
            run_server(settings, host=host, port=port, workers=workers, log_level="warning")
