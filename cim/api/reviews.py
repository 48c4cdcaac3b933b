"""``/reviews``: BIM pre-review. A designer uploads an IFC model (with IDS files and a parcel id) and gets a
report; a reviewer approves (the model is ingested into the city, the tilesets rebuilt incrementally) or
rejects it. Every step is written to the audit log.

The reviewed file is kept at ``<data_dir>/reviews/<review_id>/<file_name>``. An upload that fails any check
before the review starts (not an IFC, over the limit, a zip bomb, an invalid IDS, an unknown parcel) leaves
no file and no row. Reviews run on a small thread pool of this module (one per app).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from cim.api.errors import STATUS_CODES, BadRequestError
from cim.api.security import Principal, audit, read_access, require_role
from cim.api.uploads import copy_upload, file_part, multipart_body, read_form, safe_name
from cim.db.reviews import insert_review, review_by_id, set_review
from cim.errors import CimError, NotFoundError, ReviewError
from cim.review import files
from cim.review.settings import ReviewSettings
from cim.settings import Settings

log = logging.getLogger("cim.api.reviews")
MAX_IDS_FILES = 10


class ReviewNotReadyError(CimError):
    """The review is not in a state that allows this (still running, already decided…)."""


STATUS_CODES[ReviewNotReadyError] = 409

router = APIRouter(tags=["reviews"])

REVIEW_FORM = multipart_body(
    {
        "file": {"type": "string", "format": "binary", "description": "IFC model (.ifc or .ifczip)."},
        "ids": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "IDS 1.0 files to check the model against.",
        },
        "parcel": {"type": "string", "description": "Parcel id or code the model is planned on."},
        "checks": {"type": "string", "description": "Comma-separated checks (default all)."},
        "replaces": {"type": "string", "description": "Comma-separated ids of buildings it replaces."},
    }
)


class Decision(BaseModel):
    """Body of ``POST /reviews/{id}/decision``."""

    decision: Literal["approve", "reject"]
    comment: str = Field(
        default="", max_length=4000, description="Why; required to reject or to approve a failed review."
    )


class ReviewRunner:
    """One background thread per app that runs reviews and approvals (state lives in the ``review`` table)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cim-review")

    @staticmethod
    def of(request: Request) -> ReviewRunner:
        """The app's runner, created on first use."""
        runner = getattr(request.app.state, "review_runner", None)
        if runner is None:
            runner = ReviewRunner()
            request.app.state.review_runner = runner
        return runner


def _stage(
    engine: Engine,
    settings: Settings,
    rs: ReviewSettings,
    model: UploadFile,
    ids: list[UploadFile],
    parcel_ref: str | None,
) -> dict[str, Any]:
    """Copy and check everything into a staging folder; raises before anything is stored for good."""
    from cim.review.ids_standard import open_ids
    from cim.review.run import find_parcel

    root = settings.data_path / "reviews"
    staging = root / f".staging-{uuid.uuid4().hex}"
    (staging / "ids").mkdir(parents=True)
    try:
        probe = staging / "upload.bin"
        size = copy_upload(model.file, probe, limit=rs.upload_limit_bytes, name=model.filename, limit_name="review")
        kind = files.kind_of(probe)
        name = safe_name(model.filename, ".ifczip" if kind == "ifczip" else ".ifc", "model")
        target = staging / name
        probe.rename(target)
        if kind == "ifczip":
            unpacked = files.unpack_ifczip(target, staging, rs)
            if unpacked.name == name:
                raise ReviewError("the .ifc inside the ifczip must not have the archive's own name")
        ids_names: list[str] = []
        for item in ids:
            ids_name = f"{len(ids_names) + 1:02d}-{safe_name(item.filename, '.ids', 'model')}"
            path = staging / "ids" / ids_name
            copy_upload(item.file, path, limit=rs.upload_limit_bytes, name=item.filename, limit_name="review")
            open_ids(path)
            ids_names.append(ids_name)
        parcel = find_parcel(engine, parcel_ref)
        return {
            "staging": staging,
            "file_name": name,
            "size": size,
            "sha256": files.sha256_of(target),
            "kind": kind,
            "ids": ids_names,
            "parcel": parcel,
        }
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _store(
    engine: Engine, settings: Settings, staged: dict[str, Any], inputs: dict[str, Any], key_id: int | None
) -> int:
    """Insert the review row and move the staged folder to ``reviews/<id>/`` in one step (both or neither)."""
    staging: Path = staged["staging"]
    try:
        with engine.begin() as conn:
            parcel = staged["parcel"]
            review_id = insert_review(
                conn,
                file_name=staged["file_name"],
                sha256=staged["sha256"],
                size_bytes=staged["size"],
                parcel_id=int(parcel["id"]) if parcel else None,
                parcel_ref=inputs.get("parcel"),
                inputs=inputs,
                api_key_id=key_id,
            )
            folder = settings.data_path / "reviews" / str(review_id)
            set_review(conn, review_id, path=str(folder / staged["file_name"]))
            if folder.exists():  # a leftover of a database that was reset: never mix files of two reviews
                shutil.rmtree(folder)
            staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return review_id


def _run_review(request: Request, principal: Principal, review_id: int) -> None:
    from cim.api.review_tiles import write_review_tileset
    from cim.review.run import review_file

    engine: Engine = request.app.state.engine
    settings: Settings = request.app.state.settings
    with engine.begin() as conn:
        row = review_by_id(conn, review_id, with_report=False)
        set_review(conn, review_id, status="running", started_at="now")
    assert row is not None
    folder = Path(row["path"]).parent
    inputs = row["inputs"] or {}
    try:
        report = review_file(
            Path(row["path"]),
            settings,
            review_settings=ReviewSettings(),
            engine=engine,
            ids_files=[folder / "ids" / n for n in inputs.get("ids", [])],
            parcel=row["parcel_ref"],
            checks=inputs.get("checks"),
            replaces=inputs.get("replaces", []),
            file_name=row["file_name"],
            on_model=lambda model: write_review_tileset(model, settings, review_id),
        )
    except Exception as exc:
        message = str(exc) if isinstance(exc, CimError) else f"internal error ({type(exc).__name__}); see the log"
        if not isinstance(exc, CimError):
            log.exception("review %s failed", review_id)
        with engine.begin() as conn:
            set_review(conn, review_id, status="error", error=message, finished_at="now")
        audit(request, principal, "review.run", "failed", target=f"review:{review_id}", detail={"error": message})
        return
    data = report.to_dict()
    with engine.begin() as conn:
        set_review(
            conn,
            review_id,
            status="reviewed",
            report=data,
            verdict=report.verdict,
            passed=report.verdict == "pass",
            finished_at="now",
        )
    audit(request, principal, "review.run", "ok", target=f"review:{review_id}", detail={"verdict": report.verdict})


def archive_approved_review(
    engine: Engine, settings: Settings, review: dict[str, Any], principal: Principal
) -> dict[str, Any]:
    """Archive an approved model as the as-built version of its review (model key ``review-<id>``).

    Runs after the approval is stored, so the archived version names the building the ingest created; the
    archive records the ``put`` and the decision in its ledger. Returns the model key and version.
    """
    from cim.archive import archive_review

    info = archive_review(
        engine, settings, int(review["id"]), author=principal.name, note=f"approved as built (review {review['id']})"
    )
    return {"model_key": info.model_key, "version": info.version}


def _approve(request: Request, principal: Principal, review_id: int) -> None:
    from ingest.ifc import ingest_ifc
    from tiles.build import build_tileset
    from tiles.classes import layers as tile_layers

    engine: Engine = request.app.state.engine
    settings: Settings = request.app.state.settings
    target = f"review:{review_id}"
    with engine.connect() as conn:
        row = review_by_id(conn, review_id, with_report=False)
    assert row is not None
    path = Path(row["path"])
    if path.suffix == ".ifczip":
        path = next(p for p in path.parent.glob("*.ifc"))
    approval: dict[str, Any] = {}
    try:
        report = ingest_ifc(engine, path, settings, name=row["file_name"])
        approval["ingest"] = {k: v for k, v in report.to_dict().items() if k != "path"}
        audit(request, principal, "review.ingest", "ok", target=target, detail={"dataset_id": report.dataset_id})
        with engine.connect() as conn:
            tilesets = [
                dict(r._mapping) for r in conn.execute(text("SELECT name, layers, options FROM tileset ORDER BY name"))
            ]
        approval["tiles"] = []
        for ts in tilesets:
            layers = [layer for layer in ts["layers"] or [] if layer in tile_layers()]
            if not {"buildings", "elements"} & set(layers):
                continue
            options = ts["options"] or {}
            built = build_tileset(
                engine,
                settings,
                ts["name"],
                layers=layers,
                compress=options.get("compress", "none"),
                implicit=bool(options.get("implicit", False)),
            )
            summary = {"name": built.name, "written": built.written, "kept": built.kept, "deleted": built.deleted}
            approval["tiles"].append(summary)
            audit(request, principal, "review.tiles", "ok", target=target, detail=summary)
        building = report.buildings[0]["id"] if report.buildings else None
        with engine.begin() as conn:  # the archived version names the building the ingest created
            set_review(conn, review_id, dataset_id=report.dataset_id, building_id=building)
        approval["archive"] = archive_approved_review(engine, settings, row, principal)
        with engine.begin() as conn:
            set_review(conn, review_id, status="approved", approval=approval)
    except Exception as exc:
        message = str(exc) if isinstance(exc, CimError) else f"internal error ({type(exc).__name__}); see the log"
        if not isinstance(exc, CimError):
            log.exception("approval of review %s failed", review_id)
        approval["error"] = message
        with engine.begin() as conn:
            set_review(conn, review_id, status="approval_failed", approval=approval)
        audit(request, principal, "review.approve", "failed", target=target, detail={"error": message})
        return
    audit(request, principal, "review.approve", "ok", target=target, detail={"dataset_id": report.dataset_id})


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@router.post(
    "/reviews",
    summary="Start a BIM pre-review of an uploaded IFC model (roles designer, admin)",
    status_code=202,
    openapi_extra=REVIEW_FORM,
    responses={413: {"description": "Upload larger than the limit."}},
)
async def post_review(
    request: Request, principal: Annotated[Principal, Depends(require_role("designer"))]
) -> JSONResponse:
    """Check the upload, store it under ``reviews/<id>/`` and start the review; answers 202 with its URL."""
    from cim.review.registry import resolve_checks

    action = "POST /reviews"
    try:
        form = await read_form(request, what="the model", max_files=1 + MAX_IDS_FILES, max_fields=10)
        upload = file_part(form, "the IFC model")
        ids = [item for item in form.getlist("ids") if isinstance(item, UploadFile)]
        fields = {k: v.strip() for k in ("parcel", "checks", "replaces") if isinstance(v := form.get(k), str)}
        checks = _split(fields.get("checks")) or None
        if checks is not None:
            resolve_checks(checks)
        try:
            replaces = [int(v) for v in _split(fields.get("replaces"))]
        except ValueError as exc:
            raise BadRequestError("replaces must be comma-separated building ids") from exc
        engine = request.app.state.engine
        settings = request.app.state.settings
        rs = ReviewSettings()
        staged = await run_in_threadpool(_stage, engine, settings, rs, upload, ids, fields.get("parcel") or None)
        inputs = {
            "ids": staged["ids"],
            "checks": checks,
            "replaces": replaces,
            "parcel": fields.get("parcel") or None,
            "kind": staged["kind"],
        }
        review_id = await run_in_threadpool(_store, engine, settings, staged, inputs, principal.key_id)
    except CimError as exc:
        await run_in_threadpool(audit, request, principal, action, "failed", detail={"error": str(exc)})
        raise
    await run_in_threadpool(
        audit,
        request,
        principal,
        action,
        "ok",
        target=f"review:{review_id}",
        detail={"file_name": staged["file_name"], "sha256": staged["sha256"], **inputs},
    )
    ReviewRunner.of(request).pool.submit(_run_review, request, principal, review_id)
    url = str(request.url_for("get_review", review_id=review_id))
    return JSONResponse({"id": review_id, "status": "queued", "url": url}, status_code=202, headers={"Location": url})


def _load(request: Request, review_id: int, *, with_report: bool = True) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        row = review_by_id(conn, review_id, with_report=with_report)
    if row is None:
        raise NotFoundError(f"no review {review_id}")
    return row


def _report(request: Request, review_id: int) -> Any:
    from cim.review.findings import report_from_dict

    row = _load(request, review_id)
    if not row.get("report"):
        raise ReviewNotReadyError(
            f"review {review_id} has no report yet (status {row['status']}); poll GET /reviews/{review_id}"
        )
    return report_from_dict(row["report"])


ReviewId = Annotated[int, PathParam(description="Review id returned by POST /reviews.", ge=1)]
Lang = Annotated[Literal["zh", "en"], Query(description="Language of the report (the HTML has a switch).")]


@router.get("/reviews/{review_id}", summary="State and JSON report of a review", name="get_review")
def get_review(request: Request, review_id: ReviewId, _: Annotated[Principal, Depends(read_access)]) -> dict[str, Any]:
    """The review row with its report (schema in docs/review.md) once it has run."""
    row = _load(request, review_id)
    row.pop("path", None)
    row["links"] = {
        kind: str(request.url_for(f"review_report_{kind}", review_id=review_id)) for kind in ("html", "pdf", "bcf")
    }
    settings: Settings = request.app.state.settings
    if (settings.data_path / "tiles" / f"review-{review_id}" / "tileset.json").exists():
        row["links"]["tileset"] = f"/tiles/review-{review_id}/tileset.json"

    return row


def _file(media_type: str) -> dict[str, Any]:
    """Route options of an endpoint that answers a file of ``media_type`` (so OpenAPI names it)."""
    return {"response_class": Response, "responses": {200: {"content": {media_type: {}}}}}


@router.get(
    "/reviews/{review_id}/report.html",
    response_class=HTMLResponse,
    name="review_report_html",
    summary="The report as HTML (Chinese, English switch)",
)
def get_report_html(
    request: Request, review_id: ReviewId, _: Annotated[Principal, Depends(read_access)], lang: Lang = "zh"
) -> HTMLResponse:
    """Self-contained HTML page of the report."""
    from cim.review.reports import render_html

    return HTMLResponse(render_html(_report(request, review_id), lang=lang))


@router.get(
    "/reviews/{review_id}/report.pdf", name="review_report_pdf", summary="The report as PDF", **_file("application/pdf")
)
def get_report_pdf(
    request: Request, review_id: ReviewId, _: Annotated[Principal, Depends(read_access)], lang: Lang = "zh"
) -> Response:
    """PDF of the report (WenQuanYi Zen Hei for Chinese)."""
    from cim.review.reports import render_pdf

    body = render_pdf(_report(request, review_id), lang=lang)
    headers = {"Content-Disposition": f'inline; filename="review-{review_id}.pdf"'}
    return Response(body, media_type="application/pdf", headers=headers)


@router.get(
    "/reviews/{review_id}/report.bcf",
    name="review_report_bcf",
    summary="The findings as BCF 2.1",
    **_file("application/octet-stream"),
)
def get_report_bcf(request: Request, review_id: ReviewId, _: Annotated[Principal, Depends(read_access)]) -> Response:
    """BCF 2.1 zip: one topic per error or warning, GlobalIds as components, a viewpoint per topic."""
    from cim.review.reports import render_bcf

    headers = {"Content-Disposition": f'attachment; filename="review-{review_id}.bcfzip"'}
    return Response(render_bcf(_report(request, review_id)), media_type="application/octet-stream", headers=headers)


@router.post(
    "/reviews/{review_id}/decision",
    status_code=202,
    summary="Approve or reject a reviewed model (roles reviewer, admin)",
)
def post_decision(
    request: Request,
    review_id: ReviewId,
    body: Decision,
    principal: Annotated[Principal, Depends(require_role("reviewer"))],
) -> JSONResponse:
    """Record the decision; an approval ingests the model and rebuilds the tilesets in the background."""
    engine: Engine = request.app.state.engine
    target = f"review:{review_id}"
    try:
        with engine.begin() as conn:
            row = review_by_id(conn, review_id, with_report=False, lock=True)
            if row is None:
                raise NotFoundError(f"no review {review_id}")
            if row["status"] != "reviewed":
                raise ReviewNotReadyError(
                    f"review {review_id} is {row['status']}; only a finished, undecided review can be decided"
                )
            comment = body.comment.strip()
            if not comment and (body.decision == "reject" or row["verdict"] != "pass"):
                raise BadRequestError("give a comment: it is required to reject, or to approve a review that failed")
            set_review(
                conn,
                review_id,
                decision=body.decision,
                decision_comment=comment or None,
                decided_by=principal.key_id,
                decided_at="now",
                status="approving" if body.decision == "approve" else "rejected",
            )
    except CimError as exc:
        audit(request, principal, "review.decision", "failed", target=target, detail={"error": str(exc)})
        raise
    audit(
        request,
        principal,
        "review.decision",
        "ok",
        target=target,
        detail={"decision": body.decision, "comment": body.comment.strip()},
    )
    if body.decision == "approve":
        ReviewRunner.of(request).pool.submit(_approve, request, principal, review_id)
    url = str(request.url_for("get_review", review_id=review_id))
    status = "approving" if body.decision == "approve" else "rejected"
    return JSONResponse({"id": review_id, "status": status, "url": url}, status_code=202, headers={"Location": url})
