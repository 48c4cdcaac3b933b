"""A toy source format: a text list of survey points (``TOYPOINTS`` then ``lon lat name`` lines, CGCS2000).

It is what a new format looks like: one class (recognise, check the form, ingest) and one command function,
registered with :func:`ingest.formats.register`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from sqlalchemy import Engine

from cim.cli.common import JsonOption, emit_json, state
from cim.db.datasets import file_sha256, insert_dataset
from cim.errors import IngestError
from cim.settings import Settings
from ingest.formats import FileType, FormField, SourceFormat


def ingest_points(engine: Engine, path: Path, survey: str | None) -> dict[str, Any]:
    """Count the points of a toy file and register it as one dataset (kind ``toypoints``)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    points = []
    for number, line in enumerate(lines, start=2):
        parts = line.split(maxsplit=2)
        try:
            lon, lat = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise IngestError(f"{path.name} line {number}: expected 'lon lat name'") from None
        points.append((lon, lat))
    with engine.begin() as conn:
        dataset_id = insert_dataset(
            conn,
            name=survey or path.stem,
            kind=ToyPointsFormat.name,
            path=str(path),
            sha256=file_sha256(path),
            size_bytes=path.stat().st_size,
            crs_in="EPSG:4490",
            status="loaded",
            counts={"points": len(points)},
        )
    return {"dataset_id": dataset_id, "points": len(points)}


class ToyPointsFormat(SourceFormat):
    """Survey points as text."""

    name = "toypoints"
    title = "toy survey points"
    file_types = (FileType("toypoints", ".txt", "toy point list"),)
    form_fields: ClassVar[Mapping[str, FormField]] = {"survey": FormField("Name of the survey.")}
    command = "tests.plugins.toy_format:command"

    def sniff(self, head: bytes, filename: str | None) -> FileType | None:
        """Files that start with the line ``TOYPOINTS``."""
        return self.file_types[0] if head.startswith(b"TOYPOINTS\n") else None

    def check_form(self, fields: Mapping[str, str]) -> str | None:
        """A survey name is required."""
        return None if fields.get("survey") else "a toy point upload needs a survey name"

    def run(self, engine: Engine, settings: Settings, path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
        """Ingest the stored file."""
        return ingest_points(engine, path, params.get("survey"))


def command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="TOYPOINTS file.")],
    survey: Annotated[str | None, typer.Option("--survey", help="Name of the survey.")] = None,
    json_: JsonOption = False,
) -> None:
    """Load a toy point list."""
    report = ingest_points(state(ctx).engine(), file, survey)
    if json_:
        emit_json(report)
