"""Opening an IFC file safely: what it is, which schema, and the refusals for what cannot be ingested."""

from __future__ import annotations

import re
from pathlib import Path

import ifcopenshell

from cim.errors import IngestError

SUPPORTED_SCHEMAS = ("IFC2X3", "IFC4", "IFC4X3_ADD2")
RC_SCHEMAS = ("IFC4X3", "IFC4X3_RC1", "IFC4X3_RC2", "IFC4X3_RC3", "IFC4X3_RC4", "IFC4X3_TC1", "IFC4X3_ADD1")
"""Pre-release and earlier IFC 4.3 headers; their files are read with the IFC4X3_ADD2 schema."""

_SCHEMA_RE = re.compile(rb"FILE_SCHEMA\s*\(\s*\(\s*'([^']+)'", re.IGNORECASE)
_HEAD_BYTES = 64 * 1024
_TAIL_BYTES = 4096


def header_schema(path: Path) -> str:
    """The schema named in a STEP file's header (upper case); refuses what is not an IFC-SPF file."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
        size = handle.seek(0, 2)
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
    if head.startswith(b"PK"):
        raise IngestError(f"{path.name} is a zip archive (.ifczip); unzip it and ingest the .ifc inside")
    if not head.lstrip().startswith(b"ISO-10303-21"):
        raise IngestError(
            f"{path.name} is not an IFC file (IFC-SPF, STEP physical file starting with ISO-10303-21;); "
            "IFC-XML and IFC-JSON are not supported"
        )
    match = _SCHEMA_RE.search(head)
    if match is None:
        raise IngestError(f"{path.name} names no FILE_SCHEMA in its header; it is not a valid IFC file")
    if b"END-ISO-10303-21" not in tail.upper():
        raise IngestError(f"{path.name} is truncated (no END-ISO-10303-21; at its end); copy the complete file again")
    return match.group(1).decode("ascii", "replace").upper()


def open_model(path: Path) -> tuple[ifcopenshell.file, str]:
    """Open an IFC file; returns the model and the schema named in its header.

    IFC 4.3 release-candidate headers are read with the IFC4X3_ADD2 schema (their entities are a subset
    in practice); other unknown schemas are refused.
    """
    schema = header_schema(path)
    try:
        if schema in SUPPORTED_SCHEMAS:
            return ifcopenshell.open(str(path)), schema
        if schema in RC_SCHEMAS:
            text = path.read_text(encoding="utf-8", errors="replace")
            text = _SCHEMA_RE.sub(lambda m: m.group(0).replace(m.group(1), b"IFC4X3_ADD2"), text.encode()).decode()
            return ifcopenshell.file.from_string(text), schema
    except IngestError:
        raise
    except Exception as exc:  # ifcopenshell raises plain RuntimeError/SchemaError on malformed input
        raise IngestError(f"{path.name} could not be parsed as {schema}: {exc}") from exc
    raise IngestError(
        f"{path.name} uses schema {schema!r}, which is not supported; supported: IFC2X3, IFC4, IFC4X3 "
        "(ADD2 and release candidates); export the model again in one of them"
    )
