"""``cim keys``: API keys for writers (roles viewer, planner, designer, reviewer, archivist, admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from cim.cli.common import JsonOption, emit_json, emit_outcome, state, stderr
from cim.db.models import ROLES

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help=f"Role of the key: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key (shown in the audit log).")],
    json_: JsonOption = False,
) -> None:
    """Create a key and print it once (only its Argon2 hash is stored)."""
    from cim.api.security import new_api_key

    key_id, key = new_api_key(state(ctx).engine(), name=name, role=role)
    if json_:
        emit_json({"id": key_id, "name": name, "role": role, "key": key})
        return
    typer.echo(key)
    stderr.print(f"key {key_id} ({role}, {name}) created; it is shown only now: store it safely")


@app.command("list")
def list_keys(ctx: typer.Context, json_: JsonOption = False) -> None:
    """List keys (never the keys themselves)."""
    from cim.db.api_keys import list_api_keys

    with state(ctx).engine().connect() as conn:
        rows = [r.to_dict() for r in list_api_keys(conn)]
    if json_:
        emit_json(rows)
        return
    for r in rows:
        status = "revoked" if r["revoked_at"] else "active"
        typer.echo(f"{r['id']}\t{r['role']}\t{r['name']}\t{r['prefix']}\t{status}\tlast used {r['last_used_at']}")


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[int, typer.Argument(help="Id of the key (see `cim keys list`).")],
    json_: JsonOption = False,
) -> None:
    """Revoke a key; it stays listed for the audit trail."""
    from cim.db.api_keys import insert_audit, revoke_api_key

    with state(ctx).engine().begin() as conn:
        revoke_api_key(conn, key_id)
        insert_audit(conn, action="keys.revoke", outcome="ok", actor="cli", target=f"api_key:{key_id}")
    emit_outcome({"id": key_id, "revoked": True}, f"key {key_id} revoked", as_json=json_)
