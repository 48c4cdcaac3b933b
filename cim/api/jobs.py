"""``/jobs``: asynchronous writes (ingest an uploaded file, rebuild a tileset) with status polling.

Uploads are size-limited before parsing (:class:`~cim.api.middleware.BodyLimitMiddleware`), authorised
before the body is read, identified by their first bytes and copied in chunks under ``data_path/uploads``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from cim.api.errors import BadRequestError
from cim.api.factory import BaseFactory
from cim.api.job_runner import JobRunner, runner_identity, runner_is_gone
from cim.api.security import Principal, audit, require_key, require_role
from cim.api.uploads import file_part, identify_upload, multipart_body, read_form, remove_upload, store_upload
from cim.db.jobs import insert_job, job_by_id, mark_finished, public_params, user_facing
from cim.errors import CimError, NotFoundError
from cim.values import TILESET_NAME, TILESET_NAME_RULE, BBox
from ingest import formats
from tiles import classes as tile_classes

INGEST_ROLES = ("planner", "designer")
TILES_ROLES = ("planner", "designer")


def ingest_form() -> dict[str, Any]:
    """The OpenAPI request body of ``POST /jobs/ingest``, from the registered source formats."""
    types = ", ".join(t.title for fmt in formats.registered() for t in fmt.file_types)
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": f"{types}."},
        "kind": {
            "type": "string",
            "enum": list(formats.names()),
            "description": "What to ingest it as (default: from the file's content).",
        },
    }
    properties.update({k: f.schema() for k, f in formats.form_fields().items()})
    return multipart_body(properties)


class TilesJobRequest(BaseModel):
    """Body of ``POST /jobs/tiles``."""

    name: str = Field(pattern=TILESET_NAME.pattern, description=f"Tileset name: {TILESET_NAME_RULE}.")
    layers: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Layers to include: tile content classes and terrain (default: all).",
        json_schema_extra={"items": {"type": "string", "enum": list(tile_classes.layers())}},
    )
    bbox: list[float] | None = Field(
        default=None, min_length=4, max_length=4, description="west, south, east, north (degrees, CGCS2000)."
    )

    @field_validator("layers")
    @classmethod
    def _layers(cls, value: list[str] | None) -> list[str] | None:
        known = tile_classes.layers()
        unknown = sorted(set(value or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown layers {unknown}; choose among {', '.join(known)}")
        return value

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else list(BBox.parse(value, west_of_east=True))


class JobAccepted(BaseModel):
    """Answer to a job submission (HTTP 202)."""

    id: str
    status: str
    url: str


def _accepted(request: Request, job_id: uuid.UUID) -> JSONResponse:
    url = str(request.url_for("get_job", job_id=str(job_id)))
    return JSONResponse({"id": str(job_id), "status": "queued", "url": url}, status_code=202, headers={"Location": url})


@dataclass
class JobsFactory(BaseFactory):
    """Job submission and polling."""

    def register_routes(self) -> None:
        """``POST /jobs/ingest``, ``POST /jobs/tiles``, ``GET /jobs/{job_id}``."""

        accepted: dict[str, Any] = {"tags": ["jobs"], "status_code": 202, "response_model": JobAccepted}

        @self.router.post(
            "/jobs/ingest",
            summary="Ingest an uploaded file (roles planner, designer, admin)",
            openapi_extra=ingest_form(),
            **accepted,
            responses={
                413: {"description": "Upload larger than the limit."},
                415: {"description": "Not an accepted file type."},
            },
        )
        async def post_ingest_job(
            request: Request, principal: Annotated[Principal, Depends(require_role(*INGEST_ROLES))]
        ) -> JSONResponse:
            action = "POST /jobs/ingest"
            try:
                field_names = ("kind", *formats.form_fields())
                form = await read_form(request, what="the file", max_files=1, max_fields=len(field_names) + 1)
                upload = file_part(form, "the file to ingest")
                fields = {k: v for k in field_names if isinstance(v := form.get(k), str) and v.strip()}
                kind = fields.get("kind")
                if kind is not None and formats.format_named(kind) is None:
                    raise BadRequestError(f"kind must be one of {', '.join(formats.names())}")
                fmt, file_type = await run_in_threadpool(identify_upload, upload.file, upload.filename, kind)
                problem = fmt.check_form(fields)
                if problem is not None:
                    raise BadRequestError(problem)
                uploads_dir = request.app.state.settings.data_path / "uploads"
                path = await run_in_threadpool(store_upload, upload.file, upload.filename, uploads_dir, file_type)
                await upload.close()
                params: dict[str, Any] = {**fields, "kind": fmt.name, "path": str(path), "file_name": upload.filename}
                try:
                    job_id = await run_in_threadpool(self._create, request, "ingest", params, principal)
                except BaseException:
                    await run_in_threadpool(remove_upload, path, uploads_dir)
                    raise
            except CimError as exc:
                await run_in_threadpool(audit, request, principal, action, "failed", detail={"error": str(exc)})
                raise
            return _accepted(request, job_id)

        @self.router.post(
            "/jobs/tiles", summary="Build or rebuild a tileset (roles planner, designer, admin)", **accepted
        )
        def post_tiles_job(
            request: Request,
            body: TilesJobRequest,
            principal: Annotated[Principal, Depends(require_role(*TILES_ROLES))],
        ) -> JSONResponse:
            job_id = self._create(request, "tiles", body.model_dump(exclude_none=True), principal)
            return _accepted(request, job_id)

        @self.router.get(
            "/jobs/{job_id}", tags=["jobs"], summary="State of a job (its own key, or admin)", name="get_job"
        )
        def get_job(
            request: Request,
            job_id: Annotated[uuid.UUID, Path(description="Job id returned by the submission.")],
            principal: Annotated[Principal, Depends(require_key)],
        ) -> dict[str, Any]:
            engine = request.app.state.engine
            with engine.connect() as conn:
                job = job_by_id(conn, job_id)
            if job is None or (principal.role != "admin" and job["api_key_id"] != principal.key_id):
                raise NotFoundError(f"no job {job_id} submitted with this API key")
            if job["status"] in ("queued", "running") and runner_is_gone(job["params"].get("runner")):
                with engine.begin() as conn:  # the process that ran it stopped (restart, crash): say so
                    mark_finished(conn, job_id, error="the service process running this job stopped; submit it again")
                    job = job_by_id(conn, job_id)
                assert job is not None
            job.pop("api_key_id")
            job["error"] = user_facing(job["error"], job["params"])  # also for rows stored before scrubbing
            job["result"] = user_facing(job["result"], job["params"])
            job["params"] = public_params(job["params"])
            return job

    @staticmethod
    def _create(request: Request, kind: str, params: dict[str, Any], principal: Principal) -> uuid.UUID:
        engine = request.app.state.engine
        with engine.begin() as conn:
            job_id = insert_job(conn, kind, {**params, "runner": runner_identity()}, principal.key_id)
        audit(request, principal, f"POST /jobs/{kind}", "ok", target=f"job:{job_id}", detail=params)
        runner: JobRunner = request.app.state.jobs
        runner.submit(job_id, kind, params, principal.actor, principal.key_id)
        return job_id
