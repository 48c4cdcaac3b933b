"""File uploads of every endpoint that receives one (``/jobs/ingest``, ``/reviews``, ``/archive``).

One implementation of the parts they share: the multipart body (content type, parse errors, the file
part), its OpenAPI description, safe file names, and streaming an upload to disk in chunks with a size
limit (a refused or failed copy leaves no file). Source files to ingest are also recognised by the
source-format registry and copied under ``data_path/uploads/<uuid>/``; :func:`remove_upload` deletes such
a folder again (a refused or failed ingest leaves no file behind).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from cim.api.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaError
from cim.errors import CimError
from ingest.formats import HEAD_BYTES, FileType, SourceFormat, identify, registered

CHUNK = 1 << 20


def multipart_body(properties: dict[str, Any], required: Iterable[str] = ("file",)) -> dict[str, Any]:
    """The ``openapi_extra`` of an endpoint whose body is a multipart form with these ``properties``."""
    schema = {"type": "object", "required": list(required), "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


async def read_form(request: Request, *, what: str, max_files: int, max_fields: int) -> FormData:
    """The multipart form of an upload request (``what`` is sent: "the file", "the model"…).

    Raises :class:`BadRequestError` for another content type or a malformed body; the body-size limit
    (:class:`~cim.api.middleware.BodyLimitMiddleware`) applies while the form is read.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequestError(f"send {what} as multipart/form-data with a 'file' part")
    try:
        return await request.form(max_files=max_files, max_fields=max_fields)
    except CimError:
        raise
    except Exception as exc:
        raise BadRequestError(f"malformed multipart body: {exc}") from exc


def file_part(form: FormData, what: str, *, name: str = "file", need_name: bool = False) -> UploadFile:
    """The uploaded file of part ``name``; :class:`BadRequestError` when it is missing (or has no file name)."""
    upload = form.get(name)
    if not isinstance(upload, UploadFile) or (need_name and not upload.filename):
        raise BadRequestError(f"the multipart body needs a '{name}' part with {what}")
    return upload


def copy_upload(
    source: BinaryIO, target: Path, *, limit: int | None = None, name: str | None = None, limit_name: str = "upload"
) -> int:
    """Stream ``source`` (from its start) to a new file ``target`` in chunks; the bytes copied.

    Over ``limit`` bytes raises :class:`PayloadTooLargeError` (naming the upload ``name`` and the
    ``limit_name``); any failure removes ``target``.
    """
    written = 0
    source.seek(0)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # before the try: never remove another's file
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if limit is not None and written > limit:
                    raise PayloadTooLargeError(
                        f"{name or 'the upload'} is over the {limit_name} limit of {limit / 2**20:.0f} MiB"
                    )
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return written


def sniff(head: bytes, filename: str | None = None) -> str | None:
    """The file type (``ifc``, ``gpkg``, ``geojson``, ``zip``, ``geotiff``…) of an upload; ``None`` if unknown."""
    found = identify(head, filename)
    return found[1].name if found is not None else None


def safe_name(filename: str | None, suffix: str, default: str = "upload") -> str:
    """A harmless file name (letters, digits, ``._-``) with the ``suffix`` its content calls for."""
    base = Path(filename or default).name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(base).stem).strip("._") or default
    return stem[:80] + suffix


def _accepted() -> str:
    titles = [t.title for fmt in registered() for t in fmt.file_types]
    return ", ".join(titles[:-1]) + " or " + titles[-1] if len(titles) > 1 else "".join(titles)


def identify_upload(source: BinaryIO, filename: str | None, expected_kind: str | None) -> tuple[SourceFormat, FileType]:
    """The registered format and file type of an upload, from its first bytes and name (nothing is stored).

    Raises :class:`UnsupportedMediaError` when no registered format reads it, or when it does not fit
    ``expected_kind`` (a format name: ifc | vector | raster …).
    """
    source.seek(0)
    head = source.read(HEAD_BYTES)
    source.seek(0)
    found = identify(head, filename)
    if found is None:
        raise UnsupportedMediaError(f"unrecognised upload: send one of {_accepted()}")
    fmt, file_type = found
    if expected_kind is not None and expected_kind != fmt.name:
        raise UnsupportedMediaError(
            f"the upload is a {file_type.name} file, which cannot be ingested as {expected_kind}"
        )
    return fmt, file_type


def store_upload(source: BinaryIO, filename: str | None, uploads_dir: Path, file_type: FileType) -> Path:
    """Copy an identified upload to a fresh folder under ``uploads_dir``; returns the stored file's path."""
    folder = uploads_dir / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / safe_name(filename, file_type.suffix)
    try:
        copy_upload(source, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return path


def remove_upload(path: Path, uploads_dir: Path) -> bool:
    """Delete a stored upload's folder (only a folder directly under ``uploads_dir``); True when it was there."""
    folder = Path(path).resolve().parent
    if folder.parent != Path(uploads_dir).resolve() or not folder.is_dir():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True
