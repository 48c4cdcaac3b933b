"""The ``cim`` command line: help, JSON reports, exit codes and one-line failures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import psycopg

from tests.conftest import CliResult

RunCim = Callable[..., CliResult]


def test_help_lists_every_command_group() -> None:
    result = subprocess.run([sys.executable, "-m", "cim", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "db" in result.stdout and "demo" in result.stdout


def test_db_status_json_reports_postgis_and_the_head_revision(run_cim: RunCim) -> None:
    result = run_cim("db", "status", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["running"] is True
    assert tuple(int(p) for p in report["postgis_version"].split(".")[:2]) >= (3, 3)
    assert report["at_head"] is True and report["schema_revision"] == report["head_revision"]
    assert report["row_counts"]["building"] == 0


def test_db_url_is_accepted_by_libpq(run_cim: RunCim) -> None:
    result = run_cim("db", "url")
    assert result.exit_code == 0
    with psycopg.connect(result.stdout.strip()) as conn:
        assert conn.execute("SELECT postgis_lib_version()").fetchone()


def test_db_up_on_an_external_database_migrates_it(run_cim: RunCim) -> None:
    result = run_cim("db", "up", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["running"] is True and "***" in report["url"]


def test_stopping_an_external_database_fails_with_one_line_and_no_traceback(run_cim: RunCim) -> None:
    result = run_cim("db", "down")
    assert result.exit_code == 11
    assert "not managed by cim" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_command_is_a_usage_error(run_cim: RunCim) -> None:
    assert run_cim("frobnicate").exit_code == 2
