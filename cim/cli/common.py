"""What every command shares: settings in the context, JSON output, progress bars, exit codes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy import Engine

from cim.settings import Settings
from cim.values import BBox

stderr = Console(stderr=True)
"""Logs, progress and human messages go to stderr; data (and ``--json`` documents) to stdout."""


class ExitCode(enum.IntEnum):
    """Exit codes of the ``cim`` command; data problems start at 10 (see :mod:`cim.errors`)."""

    OK = 0
    RUNTIME_ERROR = 1
    USAGE = 2
    INTERRUPTED = 130


@dataclasses.dataclass
class CliState:
    """Per-invocation state stored in the Typer context."""

    settings: Settings
    debug: bool = False
    quiet: bool = False
    _engine: Engine | None = None

    def engine(self) -> Engine:
        """An engine on the platform database (starts and migrates the private cluster when needed)."""
        if self._engine is None:
            from cim.db import database_url, make_engine

            self._engine = make_engine(database_url(self.settings))
        return self._engine


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of this invocation."""
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, CliState):
        raise RuntimeError("cim command run without the root callback")
    return obj


def parse_bbox_option(value: str) -> BBox:
    """``--bbox W,S,E,N`` (CGCS2000 degrees) as a :class:`~cim.values.BBox`; a usage error otherwise."""
    try:
        return BBox.parse(value, west_of_east=True)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# Options shared by several commands, defined once (rasterio's rio/options.py).
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
CrsOption = Annotated[
    str | None,
    typer.Option(
        "--crs",
        help="Source CRS when the file has none or a wrong one: EPSG:4547, 4547, an OGC URI, WKT or a PROJ string.",
    ),
]
BBoxOption = Annotated[
    BBox | None,
    typer.Option("--bbox", parser=parse_bbox_option, metavar="W,S,E,N", help="Bounding box in CGCS2000 degrees."),
]


def ingest_with_progress(
    ctx: typer.Context, description: str, ingest: Callable[..., Any], source: Path, **options: Any
) -> Any:
    """``ingest(engine, source, settings, progress=…, **options)`` under a progress bar; returns its report."""
    st = state(ctx)
    with progress_task(ctx, description) as advance:
        return ingest(st.engine(), source, st.settings, progress=advance, **options)


def emit_ingest_report(
    ctx: typer.Context, report: Any, as_json: bool, source: Path, summary: Callable[[], str]
) -> None:
    """An ingest's outcome: its ``--json`` document, or one line on stderr (none with ``-q``).

    ``report`` has ``to_dict()``, ``skipped`` and ``dataset_id``; ``summary`` words what a load stored.
    """
    if as_json:
        emit_json(report.to_dict())
    elif not state(ctx).quiet:
        if report.skipped:
            stderr.print(f"{source.name}: unchanged, already loaded as dataset {report.dataset_id}")
        else:
            stderr.print(summary())


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(value: Any) -> str:
    """Serialise a report (dicts, dataclasses, dates, NumPy scalars) as JSON text."""
    return json.dumps(value, default=_default, ensure_ascii=False, indent=2)


def emit_json(value: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(to_json(value) + "\n")
    sys.stdout.flush()


def emit_outcome(document: Any, message: str, *, as_json: bool) -> None:
    """A command's outcome: its ``--json`` ``document`` on stdout, else the one-line ``message`` on stderr."""
    if as_json:
        emit_json(document)
    else:
        stderr.print(message)


def listing_done(rows: list[Any], document: Any, *, as_json: bool, empty: str) -> bool:
    """Emit a listing's ``--json`` ``document``, or say ``empty`` on stderr when there are no ``rows``.

    True when that was the whole answer; False when the caller prints the rows as a table.
    """
    if as_json:
        emit_json(document)
        return True
    if not rows:
        stderr.print(empty)
        return True
    return False


def moment_text(iso: str | None) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS`` for a table column ("" when there is none)."""
    return (iso or "")[:19].replace("T", " ")


@contextmanager
def progress_bar(ctx: typer.Context | None = None, *, transient: bool = True) -> Iterator[Progress]:
    """A rich progress bar on stderr (hidden with ``-q``); add tasks with ``progress.add_task``."""
    quiet = bool(ctx is not None and state(ctx).quiet)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
        disable=quiet or not stderr.is_terminal,
    ) as progress:
        yield progress


@contextmanager
def progress_task(ctx: typer.Context | None, description: str) -> Iterator[Callable[[int, int | None], None]]:
    """A one-task progress bar; yields the ``(done, total)`` callback that long operations accept."""
    with progress_bar(ctx) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
