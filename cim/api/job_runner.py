"""Runs API jobs in background threads; the job table holds their state (so any worker can answer polls).

Ingest jobs run through the source-format registry (:mod:`ingest.formats`); the readers and the tile builder
are imported inside the runner: ``cim`` imports ``ingest``/``tiles`` only from the job routes and the command
line (``docs/architecture.md``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cim.api.uploads import remove_upload
from cim.db.api_keys import insert_audit
from cim.db.jobs import mark_finished, mark_running, upload_paths_in_use
from cim.errors import CimError
from cim.settings import Settings
from cim.values import BBox

log = logging.getLogger("cim.api.jobs")


def _report_dict(report: Any) -> dict[str, Any]:
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    return dict(data)


def run_ingest(engine: Engine, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """Ingest an uploaded file with its registered format (``params``: path, kind and the form's fields).

    The upload is removed when the ingest fails: a failed job leaves no file behind.
    """
    from ingest.formats import format_named

    fmt = format_named(params["kind"])
    if fmt is None:
        raise CimError(f"unknown ingest kind {params['kind']!r}")
    path = Path(params["path"])
    try:
        return fmt.run(engine, settings, path, params)
    except BaseException:
        remove_upload(path, settings.data_path / "uploads")
        raise


def run_tiles(engine: Engine, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """Build or rebuild a tileset (``params``: name, layers, bbox); returns its report."""
    from tiles.build import build_tileset
    from tiles.options import TilingOptions

    layers = tuple(params["layers"]) if params.get("layers") else None
    bbox = BBox.parse(params["bbox"], west_of_east=True) if params.get("bbox") else None
    return _report_dict(build_tileset(engine, settings, params["name"], TilingOptions(layers=layers, bbox=bbox)))


RUNNERS = {"ingest": run_ingest, "tiles": run_tiles}


def runner_identity() -> dict[str, Any]:
    """Which process runs a job (stored with the job, so a poll can tell when that process is gone)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def runner_is_gone(runner: dict[str, Any] | None) -> bool:
    """True when ``runner`` was a process on this host that no longer exists."""
    if not runner or runner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(runner["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError, ValueError, KeyError):
        return False
    return False


ORPHAN_UPLOAD_AGE_S = 3600.0
"""Upload folders older than this that no dataset and no queued or running job refers to are removed at start-up
(left by a process that stopped during a job); younger ones may belong to a request another worker is serving."""


def prune_uploads(engine: Engine, uploads_dir: Path, *, min_age_s: float = ORPHAN_UPLOAD_AGE_S) -> list[Path]:
    """Remove orphaned upload folders under ``uploads_dir``; returns the folders removed."""
    if not uploads_dir.is_dir():
        return []
    with engine.connect() as conn:
        in_use = {Path(p).resolve().parent for p in upload_paths_in_use(conn)}
    removed = []
    now = time.time()
    for folder in sorted(uploads_dir.iterdir()):
        if folder.is_dir() and folder.resolve() not in in_use and now - folder.stat().st_mtime >= min_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("removed %d orphaned upload folder(s) under %s", len(removed), uploads_dir)
    return removed


class JobRunner:
    """A small thread pool that runs jobs and records their outcome in ``job`` and ``audit_log``.

    On start it removes orphaned uploads (:func:`prune_uploads`).
    """

    def __init__(self, engine: Engine, settings: Settings, workers: int = 1) -> None:
        self.engine = engine
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cim-job")
        try:
            prune_uploads(engine, settings.data_path / "uploads")
        except (OSError, SQLAlchemyError) as exc:  # a clean-up must not keep the service from starting
            log.warning("orphaned uploads not pruned: %s", exc)

    def submit(
        self, job_id: uuid.UUID, kind: str, params: dict[str, Any], actor: str, key_id: int | None
    ) -> Future[None]:
        """Queue a job already inserted in the ``job`` table."""
        return self.pool.submit(self._run, job_id, kind, params, actor, key_id)

    def _run(self, job_id: uuid.UUID, kind: str, params: dict[str, Any], actor: str, key_id: int | None) -> None:
        with self.engine.begin() as conn:
            mark_running(conn, job_id)
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            result = RUNNERS[kind](self.engine, self.settings, params)
        except CimError as exc:
            error = str(exc)
        except ImportError as exc:
            error = f"this installation cannot run {kind} jobs yet ({exc})"
        except Exception as exc:  # recorded as a failed job; the details go to the log only
            log.exception("job %s (%s) failed", job_id, kind)
            error = f"internal error ({type(exc).__name__}); see the service log"
        with self.engine.begin() as conn:
            mark_finished(conn, job_id, result=result, error=error)
            insert_audit(
                conn,
                action=f"job.{kind}",
                outcome="failed" if error else "ok",
                api_key_id=key_id,
                actor=actor,
                target=f"job:{job_id}",
                detail={"error": error} if error else {},
            )

    def shutdown(self) -> None:
        """Stop accepting jobs; running ones finish."""
        self.pool.shutdown(wait=False, cancel_futures=False)
