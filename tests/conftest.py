"""Shared fixtures: a real PostGIS server, a migrated template database, one fresh database per test.

The server is ``DATABASE_URL`` when set (its role needs CREATEDB), otherwise the private cluster of the
repository's data directory (``CIM_DATA_DIR``, default ``./.cim``). Every test that touches the database
gets its own database cloned from a migrated template, so tests are isolated and may commit.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cim.db.cluster import PrivateCluster
from cim.db.engine import make_engine
from cim.db.scratch import create_database, database_on, drop_database
from cim.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
IFC_DIR = SHARED_DATA / "ifc"
TILES_SCHEMA_DIR = SHARED_DATA / "3d-tiles-schema"


@pytest.fixture(scope="session", autouse=True)
def no_cache_warmup() -> Iterator[None]:
    """Apps made by tests skip the start-up cache warm-up (``CIM_API_WARM_CACHES``) unless a test asks for it.

    Its background queries would race the tests that count the statements a request runs, and every app of
    the suite would pay for it; ``tests/api/test_warmup.py`` turns it on.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIM_API_WARM_CACHES", "false")
        yield


@pytest.fixture(scope="session", autouse=True)
def brokers_on_ports_the_os_picks() -> Iterator[None]:
    """New MQTT brokers of the suite listen on a port the OS picks, not the first free one from 18830.

    A broker restarted by a test frees its port for a moment; a broker another test worker starts just then
    would take 18830 from it, and the restarted broker's clients would reach the wrong one ("Not
    authorized"). The OS does not hand out a port it released a moment ago.
    """
    from cim import localservice
    from cim.sensing import broker

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(broker, "free_port", lambda preferred=None: localservice.free_port(None))
        yield


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """A libpq URL of the PostGIS server the tests use (to its maintenance database)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        return database_on(external, "postgres")
    data_dir = Path(os.environ.get("CIM_DATA_DIR", ROOT / ".cim"))
    return database_on(PrivateCluster(data_dir).up(), "postgres")


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> Iterator[str]:
    """A database with PostGIS and the head migration applied, used as the template of per-test databases."""
    name = f"cim_tpl_{secrets.token_hex(4)}"
    create_database(pg_server_url, name)
    yield name
    drop_database(pg_server_url, name)


def _fresh_database(pg_server_url: str, template_database: str) -> Iterator[str]:
    name = f"cim_t_{secrets.token_hex(6)}"
    yield create_database(pg_server_url, name, template=template_database)
    drop_database(pg_server_url, name)


@pytest.fixture
def db_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    """A libpq URL of a fresh, migrated database that only this test uses."""
    yield from _fresh_database(pg_server_url, template_database)


@pytest.fixture(scope="module")
def module_db_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    """A libpq URL of a fresh, migrated database shared by one test module (when its setup is costly)."""
    yield from _fresh_database(pg_server_url, template_database)


@pytest.fixture(scope="module")
def module_engine(module_db_url: str) -> Iterator[Engine]:
    """A SQLAlchemy engine on the module's database."""
    eng = make_engine(module_db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A SQLAlchemy engine on this test's own database."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings pointing at this test's database and a temporary data directory."""
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@dataclass
class CliResult:
    """What one ``cim`` invocation returned and printed."""

    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cim(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings
) -> Iterator[object]:
    """Run ``cim ARGS…`` in-process against this test's database and data directory."""
    from cim.cli import main

    monkeypatch.setenv("DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("CIM_DATA_DIR", str(settings.data_dir))

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    yield _run
