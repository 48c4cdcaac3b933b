"""``cim broker``: the private MQTT broker (Mosquitto) of the data directory."""

from __future__ import annotations

import typer

from cim.cli.common import JsonOption, emit_json, state, stderr

app = typer.Typer(help="Start, stop and inspect the private MQTT broker (Mosquitto).", no_args_is_help=True)


@app.command("up")
def up(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Start the broker (configured on first use: free loopback port, passwords, ACL) and the platform's session."""
    from cim.sensing.broker import PLATFORM_USER, PrivateBroker
    from cim.sensing.runtime import subscriber_client_id
    from cim.sensing.subscriber import ensure_session

    data = state(ctx).settings.data_path
    broker = PrivateBroker(data)
    s = broker.up()
    ensure_session(s.host, s.port, PLATFORM_USER, s.platform_password, subscriber_client_id(data))
    status = broker.status()
    if json_output:
        emit_json(status.to_dict())
    else:
        stderr.print(f"broker up: mqtt://{status.host}:{status.port} (pid {status.pid})")


@app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Whether the broker runs: host, port, pid, and a publisher's user name and password for local tools."""
    from cim.sensing.broker import PrivateBroker

    report = PrivateBroker(state(ctx).settings.data_path).status()
    if json_output:
        emit_json(report.to_dict())
    elif report.running:
        stderr.print(
            f"broker running: mqtt://{report.host}:{report.port} (pid {report.pid}); "
            f"publisher {report.publisher_user} (password: cim broker status --json)"
        )
    else:
        stderr.print("broker not running (cim broker up)")


@app.command("down")
def down(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Stop the broker; it saves queued messages first and delivers them after the next ``up``."""
    from cim.sensing.broker import PrivateBroker

    stopped = PrivateBroker(state(ctx).settings.data_path).down()
    if json_output:
        emit_json({"stopped": stopped})
    else:
        stderr.print("broker stopped" if stopped else "broker was not running")
