"""Every command's ``--help`` prints its option texts as written (no rich markup eats "[local_crs]")."""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.testing import CliRunner

from cim.cli import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (sub)command below a click group (Typer ships its own copy of click: no isinstance)."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for name, command in group.commands.items():
        out.append(((*path, name), command))
        if hasattr(command, "commands"):
            out.extend(_commands(command, (*path, name)))
    return out


def test_ingest_vector_help_names_the_config_sections() -> None:
    result = CliRunner().invoke(app, ["ingest", "vector", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[local_crs], [mapping], [buildings], [uses]" in result.output


def test_every_bracketed_word_of_every_option_help_is_printed() -> None:
    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        for param in command.params:
            words = re.findall(r"\[[^\]]+\]", getattr(param, "help", None) or "")
            if not words:
                continue
            result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
            flat = " ".join(result.output.split())
            for word in words:
                assert word in flat, (path, param.name, word)
                checked += 1
    assert checked >= 4
