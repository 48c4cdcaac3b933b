"""Uploaded source files: recognised by the source-format registry, copied in chunks under ``data_path/uploads``.

Each upload gets its own folder ``uploads/<uuid>/``; :func:`remove_upload` deletes it again (a refused or
failed ingest leaves no file behind).
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from cim.api.errors import UnsupportedMediaError
from ingest.formats import HEAD_BYTES, FileType, SourceFormat, identify, registered

CHUNK = 1 << 20


def sniff(head: bytes, filename: str | None = None) -> str | None:
    """The file type (``ifc``, ``gpkg``, ``geojson``, ``zip``, ``geotiff``…) of an upload; ``None`` if unknown."""
    found = identify(head, filename)
    return found[1].name if found is not None else None


def safe_name(filename: str | None, file_type: FileType) -> str:
    """A harmless file name (letters, digits, ``._-``) with the suffix its content calls for."""
    base = Path(filename or "upload").name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(base).stem).strip("._") or "upload"
    return stem[:80] + file_type.suffix


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
    path = folder / safe_name(filename, file_type)
    source.seek(0)
    try:
        with open(path, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
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
