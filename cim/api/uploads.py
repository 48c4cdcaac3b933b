"""Uploaded source files: checked by their first bytes, copied in chunks under ``data_path/uploads``."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from cim.api.errors import UnsupportedMediaError

CHUNK = 1 << 20


def sniff(head: bytes) -> str | None:
    """The file type from its first bytes: ifc, gpkg, geojson, zip, geotiff; ``None`` when unknown."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"ISO-10303-21"):
        return "ifc"
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "geotiff"
    if text.startswith(b"{"):
        return "geojson"
    return None


KIND_OF_TYPE = {"ifc": "ifc", "gpkg": "vector", "zip": "vector", "geojson": "vector", "geotiff": "raster"}
SUFFIX_OF_TYPE = {"ifc": ".ifc", "gpkg": ".gpkg", "zip": ".zip", "geojson": ".geojson", "geotiff": ".tif"}


def safe_name(filename: str | None, file_type: str) -> str:
    """A harmless file name (letters, digits, ``._-``) with the suffix its content calls for."""
    base = Path(filename or "upload").name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(base).stem).strip("._") or "upload"
    return stem[:80] + SUFFIX_OF_TYPE[file_type]


def store_upload(
    source: BinaryIO, filename: str | None, uploads_dir: Path, expected_kind: str | None
) -> tuple[Path, str]:
    """Check the upload's type and copy it to a fresh folder under ``uploads_dir``; returns (path, kind).

    Raises :class:`UnsupportedMediaError` when the content is none of IFC (STEP), GeoPackage, GeoJSON, zipped
    shapefile or GeoTIFF, or does not fit ``expected_kind`` (ifc | vector | raster).
    """
    source.seek(0)
    head = source.read(64)
    file_type = sniff(head)
    if file_type is None:
        raise UnsupportedMediaError(
            "unrecognised upload: send an IFC (STEP) file, a GeoPackage, GeoJSON, a zipped shapefile or a GeoTIFF"
        )
    kind = KIND_OF_TYPE[file_type]
    if expected_kind is not None and expected_kind != kind:
        raise UnsupportedMediaError(f"the upload is a {file_type} file, which cannot be ingested as {expected_kind}")
    folder = uploads_dir / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / safe_name(filename, file_type)
    source.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)
    return path, kind
