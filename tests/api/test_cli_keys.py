"""``cim keys create|list|revoke`` and the ``cim serve`` command's help."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from cim.api.security import KeyVerifier
from cim.db.engine import make_engine


def test_keys_create_prints_the_key_once_and_list_never_shows_it(run_cim, settings) -> None:
    created = run_cim("keys", "create", "--role", "planner", "--name", "planning office", "--json")
    assert created.exit_code == 0, created.stderr
    doc = json.loads(created.stdout)
    assert doc["role"] == "planner" and doc["key"].startswith("cim_")
    engine = make_engine(str(settings.database_url))
    assert KeyVerifier(engine).verify(doc["key"]).name == "planning office"
    listed = run_cim("keys", "list", "--json")
    assert listed.exit_code == 0
    assert doc["key"] not in listed.stdout
    assert json.loads(listed.stdout)[0]["prefix"] == doc["key"].split("_")[1]
    assert run_cim("keys", "revoke", str(doc["id"])).exit_code == 0
    assert json.loads(run_cim("keys", "list", "--json").stdout)[0]["revoked_at"] is not None
    bad = run_cim("keys", "create", "--role", "root", "--name", "x")
    assert bad.exit_code != 0 and "unknown role" in bad.stderr
    engine.dispose()
    with create_engine(engine.url).connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
    assert actions == ["keys.create", "keys.revoke"]


def test_serve_command_is_registered(run_cim) -> None:
    r = run_cim("serve", "--help")
    assert r.exit_code == 0
    assert "--workers" in r.stdout
