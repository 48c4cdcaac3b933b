"""``/archive``: the as-built archive over HTTP (upload versions, history, audited downloads with ranges).

Writes need the archivist role (deletion: admin); metadata reads need a valid key of any role; file
downloads need a key whose role may see model files, are streamed with byte ranges and are written to
the audit log and the archive ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cim.api.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaError, error_response
from cim.api.security import Principal, audit, client_of, require_role
from cim.api.tiles import _parse_range
from cim.api.uploads import file_part, multipart_body, read_form
from cim.archive import Archive, VersionInfo, day_root, diff_versions, seal, verify
from cim.archive.formats import ArchiveInputError, TooLargeError, UnsupportedFormatError
from cim.db import archive as q
from cim.db.models import ROLES
from cim.errors import CimError, NotFoundError
from cim.storage import StorageError

WRITE_ROLES = ("archivist",)
DOWNLOAD_ROLES = ("planner", "designer", "reviewer", "archivist")
"""Roles that may download archived files (admin always may); ``viewer`` keys see metadata only."""

KeyPath = Annotated[str, Path(min_length=1, max_length=128, description="Model key.")]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number (1, 2, …).")]
AnyKey = Annotated[Principal, Depends(require_role(*ROLES))]

router = APIRouter(prefix="/archive", tags=["archive"])


def _archive(request: Request) -> Archive:
    archive: Archive | None = getattr(request.app.state, "archive", None)
    if archive is None:
        archive = Archive.open(request.app.state.engine, request.app.state.settings)
        request.app.state.archive = archive
    return archive


def _http_error(exc: Exception) -> Exception:
    """Input errors of the archive as their HTTP kinds (415, 413, 400); others unchanged."""
    if isinstance(exc, UnsupportedFormatError):
        return UnsupportedMediaError(str(exc))
    if isinstance(exc, TooLargeError):
        return PayloadTooLargeError(str(exc))
    if isinstance(exc, ArchiveInputError):
        return BadRequestError(str(exc))
    return exc


def _with_links(request: Request, info: VersionInfo, may_download: bool) -> dict[str, Any]:
    data = info.to_dict()
    data.pop("storage_key", None)
    data["download"] = (
        str(request.url_for("download_version", model_key=info.model_key, version=info.version))
        if may_download and info.kind == "version"
        else None
    )
    return data


def _may_download(principal: Principal) -> bool:
    return principal.role in (*DOWNLOAD_ROLES, "admin")


def _storage_failure(request: Request, principal: Principal, action: str, exc: StorageError) -> JSONResponse:
    audit(request, principal, action, "failed", detail={"error": str(exc)})
    return error_response(507, str(exc), "insufficient-storage")


@router.post(
    "/models/{model_key}/versions",
    summary="Archive a file as the next version of a model (role archivist)",
    status_code=201,
    responses={
        413: {"description": "Larger than the limit."},
        415: {"description": "Not an accepted format (.ifc, .ifczip)."},
        507: {"description": "The storage backend failed (disk full…); nothing was stored."},
    },
    openapi_extra=multipart_body(
        {
            "file": {"type": "string", "format": "binary"},
            "note": {"type": "string"},
            "review": {"type": "integer"},
            "building": {"type": "integer"},
        }
    ),
)
async def post_version(
    request: Request,
    model_key: KeyPath,
    principal: Annotated[Principal, Depends(require_role(*WRITE_ROLES))],
) -> Any:
    """Store the uploaded file (multipart part ``file``; optional ``note``, ``review``, ``building``)."""
    action = "archive.put"
    try:
        form = await read_form(request, what="the file", max_files=1, max_fields=4)
        upload = file_part(form, "a file name", need_name=True)
        numbers: dict[str, int | None] = {}
        for name in ("review", "building"):
            value = form.get(name)
            try:
                numbers[name] = int(value) if isinstance(value, str) and value.strip() else None
            except ValueError as exc:
                raise BadRequestError(f"{name} must be an integer id") from exc
        note = form.get("note")
        archive = _archive(request)
        try:
            info = await run_in_threadpool(
                archive.put,
                upload.file,
                model_key=model_key,
                file_name=upload.filename,
                author=principal.name,
                note=note if isinstance(note, str) and note.strip() else None,
                review_id=numbers["review"],
                building_id=numbers["building"],
                client=client_of(request),
            )
        except StorageError as exc:
            return await run_in_threadpool(_storage_failure, request, principal, action, exc)
        except CimError as exc:
            raise _http_error(exc) from exc
        finally:
            await upload.close()
    except CimError as exc:
        await run_in_threadpool(audit, request, principal, action, "failed", detail={"error": str(exc)})
        raise
    target = f"model:{model_key}:v{info.version}"
    await run_in_threadpool(audit, request, principal, action, "ok", target=target, detail={"sm3": info.sm3})
    await run_in_threadpool(seal, request.app.state.engine)
    body = _with_links(request, info, True)
    return JSONResponse(
        body,
        status_code=201,
        headers={"Location": str(request.url_for("get_version", model_key=model_key, version=info.version))},
    )


@router.get("/models", summary="Every archived model")
def get_models(request: Request, _: AnyKey) -> list[dict[str, Any]]:
    """Keys, head versions and deletion state."""
    return _archive(request).models()


@router.get("/models/{model_key}/versions", summary="The version history of a model")
def get_versions(request: Request, model_key: KeyPath, principal: AnyKey) -> list[dict[str, Any]]:
    """Who archived what and when, with notes, reviews, digests (SHA-512, SHA-256, SM3) and tombstones."""
    may = _may_download(principal)
    return [_with_links(request, v, may) for v in _archive(request).versions(model_key)]


@router.get("/models/{model_key}/versions/{version}", summary="One version's metadata", name="get_version")
def get_version(request: Request, model_key: KeyPath, version: VersionPath, principal: AnyKey) -> dict[str, Any]:
    """Metadata of one version (404 for an unknown key or number)."""
    for v in _archive(request).versions(model_key):
        if v.version == version:
            return _with_links(request, v, _may_download(principal))
    raise NotFoundError(f"model {model_key!r} has no version {version}")


@router.head("/models/{model_key}/versions/{version}/file", include_in_schema=False, name="head_version_file")
@router.get(
    "/models/{model_key}/versions/{version}/file",
    summary="Download a version's file (audited; byte ranges)",
    name="download_version",
    responses={
        200: {"description": "The byte-identical archived file."},
        206: {"description": "A byte range of the file."},
        416: {"description": "Range not satisfiable."},
    },
)
def download_version(
    request: Request,
    model_key: KeyPath,
    version: VersionPath,
    principal: Annotated[Principal, Depends(require_role(*DOWNLOAD_ROLES))],
) -> Response:
    """Stream the file; ``Range: bytes=a-b`` answers 206; every GET is audited and chained in the ledger."""
    archive = _archive(request)
    info = archive.version(model_key, version)
    size = int(info.size_bytes or 0)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{info.sha256}"',
        "Content-Disposition": f'attachment; filename="{info.file_name}"',
        "Digest": f"sha-256={_b64(info.sha256)}",
        "X-Content-SM3": str(info.sm3),
    }
    status = 200
    start, end = 0, size
    range_header = request.headers.get("range")
    if range_header is not None and size > 0:
        parsed = _parse_range(range_header, size)
        if parsed is False:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        if isinstance(parsed, tuple):
            start, end = parsed[0], parsed[1] + 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=info.media_type)
    byte_range = (start, end) if status == 206 else None
    audit(
        request,
        principal,
        "archive.download",
        "ok",
        target=f"model:{model_key}:v{version}",
        detail={"range": list(byte_range) if byte_range else None},
    )
    archive.record_get(info, actor=principal.actor, client=client_of(request), byte_range=byte_range)
    chunks: Iterator[bytes] = archive.open_version(info, start, end)
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type=info.media_type)


def _b64(hex_digest: str | None) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_digest or "")).decode()


@router.get("/models/{model_key}/diff", summary="Elements added, removed and changed between two versions")
def get_diff(
    request: Request,
    model_key: KeyPath,
    _: AnyKey,
    v1: Annotated[int, Query(alias="from", ge=1, description="Older version.")],
    v2: Annotated[int, Query(alias="to", ge=1, description="Newer version.")],
) -> dict[str, Any]:
    """By IFC GlobalId: attributes, property sets and geometry (ifcdiff)."""
    return diff_versions(_archive(request), model_key, v1, v2)


@router.delete("/models/{model_key}", summary="Withdraw a model (role admin): a tombstone version")
def delete_model(
    request: Request,
    model_key: KeyPath,
    principal: Annotated[Principal, Depends(require_role("admin"))],
    reason: Annotated[str, Query(min_length=3, max_length=2000, description="Why the model is withdrawn.")],
) -> dict[str, Any]:
    """Appends a tombstone with the reason; earlier versions stay readable by number."""
    try:
        info = _archive(request).delete(model_key, reason=reason, author=principal.name, client=client_of(request))
    except CimError as exc:
        audit(request, principal, "archive.delete", "failed", target=f"model:{model_key}", detail={"error": str(exc)})
        raise
    audit(request, principal, "archive.delete", "ok", target=f"model:{model_key}", detail={"reason": reason})
    seal(request.app.state.engine)
    return _with_links(request, info, False)


@router.get("/verify", summary="Verify the archive (role archivist)")
def get_verify(
    request: Request,
    _: Annotated[Principal, Depends(require_role(*WRITE_ROLES))],
    model: Annotated[str | None, Query(max_length=128, description="Only this model.")] = None,
) -> dict[str, Any]:
    """Re-hash every file, walk the ledger, compare rows; ``ok`` false with named problems otherwise."""
    return verify(_archive(request), model).to_dict()


@router.get("/ledger/roots/{day}", summary="The SM3 Merkle root of a day's ledger entries")
def get_root(request: Request, day: dt.date, _: AnyKey) -> dict[str, Any]:
    """Copy the root elsewhere: it proves later that no entry of that day changed."""
    return day_root(request.app.state.engine, day).to_dict()


@router.get("/by-building/{building_id}", summary="Archived versions of a building's models")
def get_by_building(
    request: Request, building_id: Annotated[int, Path(ge=1, le=2**62)], principal: AnyKey
) -> dict[str, Any]:
    """For the viewer's attribute panel: every model linked to the building, newest version first."""
    archive = _archive(request)
    with request.app.state.engine.connect() as conn:
        objects = q.objects_of_building(conn, building_id)
    may = _may_download(principal)
    models = []
    for obj in objects:
        versions = [_with_links(request, v, may) for v in reversed(archive.versions(obj.model_key))]
        models.append({"model_key": obj.model_key, "deleted": obj.deleted_at is not None, "versions": versions})
    return {"building_id": building_id, "can_download": may, "models": models}
