"""Runs API jobs in background threads; the job table holds their state (so any worker can answer polls).

The ingest and tile functions are imported inside the runner: ``cim`` imports ``ingest``/``tiles`` only here
and in the command line (DESIGN.md).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cim.db.api_keys import insert_audit
from cim.db.jobs import mark_finished, mark_running
from cim.errors import CimError
from cim.settings import Settings

log = logging.getLogger("cim.api.jobs")


def _report_dict(report: Any) -> dict[str, Any]:
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    return dict(data)


def run_ingest(engine: Engine, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """Ingest an uploaded file (``params``: path, kind, and the ingestor's options); returns its report."""
    path = Path(params["path"])
    kind = params["kind"]
    if kind == "ifc":
        from ingest.ifc import ingest_ifc

        return _report_dict(ingest_ifc(engine, path, settings, name=params.get("name"), crs=params.get("crs")))
    if kind == "vector":
        from ingest.vector import ingest_vector

        return _report_dict(
            ingest_vector(
                engine,
                path,
                settings,
                layer=params["layer"],
                kind=params.get("facility_kind"),
                crs=params.get("crs"),
                encoding=params.get("encoding"),
                source_layer=params.get("source_layer"),
            )
        )
    if kind == "raster":
        from ingest.raster import ingest_raster

        return _report_dict(
            ingest_raster(engine, path, settings, kind=params.get("raster_kind") or "dem", crs=params.get("crs"))
        )
    raise CimError(f"unknown ingest kind {kind!r}")


def run_tiles(engine: Engine, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """Build or rebuild a tileset (``params``: name, layers, bbox); returns its report."""
    from tiles.build import build_tileset

    options: dict[str, Any] = {}
    if params.get("layers"):
        options["layers"] = tuple(params["layers"])
    if params.get("bbox"):
        options["bbox"] = tuple(params["bbox"])
    return _report_dict(build_tileset(engine, settings, params["name"], **options))


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


class JobRunner:
    """A small thread pool that runs jobs and records their outcome in ``job`` and ``audit_log``."""

    def __init__(self, engine: Engine, settings: Settings, workers: int = 1) -> None:
        self.engine = engine
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cim-job")

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
