"""``cim sensors``: simulate sensors of the sample city, apply retention, check for silent sensors, flood
from the active waterlogging points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from cim.cli.common import JsonOption, emit_json, state, stderr

app = typer.Typer(help="IoT sensing: simulator, retention, no-data alarms.", no_args_is_help=True)


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    things: Annotated[int, typer.Option(min=1, max=100_000, help="How many simulated Things (sensors).")] = 20,
    rate: Annotated[float, typer.Option(min=0.1, max=100_000, help="Observations per second, all together.")] = 10,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Seconds to run (default: until Ctrl-C).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Publish plausible water-level, gas, strain, tilt and lamp-power observations over MQTT (QoS 1)."""
    from cim.sensing.broker import PLATFORM_USER, PrivateBroker
    from cim.sensing.runtime import subscriber_client_id
    from cim.sensing.simulate import Simulator, provision
    from cim.sensing.subscriber import ensure_session

    cli = state(ctx)
    streams = provision(cli.engine(), things)
    data = cli.settings.data_path
    broker_state = PrivateBroker(data).up()
    ensure_session(
        broker_state.host, broker_state.port, PLATFORM_USER, broker_state.platform_password, subscriber_client_id(data)
    )
    sim = Simulator(broker_state, streams, rate)
    if not cli.quiet:
        stderr.print(
            f"simulating {len(streams)} sensors at {rate:g} observations/s to mqtt://{broker_state.host}:"
            f"{broker_state.port} (stored by `cim serve`)"
        )
    sim.start(duration)
    try:
        sim.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    kinds: dict[str, int] = {}
    for s in streams:
        kinds[s.kind.key] = kinds.get(s.kind.key, 0) + 1
    if json_output:
        emit_json(
            {
                "things": len(streams),
                "kinds": kinds,
                "published": sim.published,
                "acknowledged": sim.acknowledged,
                "rate": rate,
            }
        )
    elif not cli.quiet:
        stderr.print(f"published {sim.published} observations, {sim.acknowledged} acknowledged by the broker")


def _maintain(
    ctx: typer.Context, json_output: bool, task: Callable[[Any], Any], key: str, say: Callable[[Any], str]
) -> None:
    """Run a maintenance ``task`` in one transaction; print ``{key: result}`` as JSON or ``say(result)``."""
    with state(ctx).engine().begin() as conn:
        result = task(conn)
    if json_output:
        emit_json({key: result})
    else:
        stderr.print(say(result))


@app.command("retention")
def retention(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Delete observations older than their datastream's retention (``properties`` of the datastream table)."""
    from cim.db.sensing import apply_retention

    _maintain(ctx, json_output, apply_retention, "deleted", lambda n: f"deleted {n} observations past their retention")


@app.command("check")
def check(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Raise no-data alarms for sensors silent longer than their rules allow."""
    from cim.sensing.alarms import check_no_data

    _maintain(ctx, json_output, check_no_data, "raised", lambda ids: f"{len(ids)} no-data alarm(s) raised")


@app.command("flood")
def flood(
    ctx: typer.Context,
    level: Annotated[float | None, typer.Option(help="Water level, metres (normal height, 1985 datum).")] = None,
    volume: Annotated[float | None, typer.Option(help="Water volume, m³ (the level is solved for).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Flood analysis seeded from the active waterlogging points (manholes whose water-level alarm is raised)."""
    from cim.analysis.flood import SEED_ACTIVE_ALARMS, run_flood

    cli = state(ctx)
    report = run_flood(cli.engine(), level=level, volume=volume, seed=SEED_ACTIVE_ALARMS)
    if json_output:
        data = report.to_dict()
        data["polygons"] = [{k: v for k, v in p.items() if k != "geometry"} for p in report.polygons]
        emit_json(data)
    elif not cli.quiet:
        stderr.print(
            f"from {report.seeds}: level {report.level:.2f} m, {report.flooded_area_km2:.4f} km² flooded, "
            f"{len(report.affected_building_ids)} buildings affected (run {report.run_id})"
        )
