"""What the archive accepts: IFC-SPF (``.ifc``) and IFC-ZIP (``.ifczip``), checked before anything is stored.

Checks read the head of the file (ISO 10303-21 header naming an IFC schema); an ``.ifczip`` is
decompressed in a counting stream with limits on total size, ratio and member count (zip bombs).
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import IO

from cim.archive.settings import ArchiveSettings
from cim.errors import ArchiveError

HEAD_BYTES = 64 * 1024
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SCHEMA = re.compile(rb"FILE_SCHEMA\s*\(\s*\(\s*'(IFC[0-9A-Z_]*)'", re.IGNORECASE)


class ArchiveInputError(ArchiveError):
    """The input was refused before anything was stored (format, name, size)."""


class UnsupportedFormatError(ArchiveInputError):
    """The file is not in a format the archive accepts."""


class TooLargeError(ArchiveInputError):
    """The file exceeds a size limit."""


@dataclass(frozen=True)
class Format:
    """An accepted format: file suffix and media type."""

    suffix: str
    media_type: str
    description: str


FORMATS = {
    ".ifc": Format(".ifc", "application/x-step", "IFC-SPF (ISO 10303-21)"),
    ".ifczip": Format(".ifczip", "application/zip", "IFC-ZIP (one IFC-SPF file in a ZIP archive)"),
}
"""Accepted formats by lower-case suffix."""


def check_model_key(key: str) -> str:
    """``key`` if it is a valid model key (letters, digits, ``._-``, ≤ 128, no ``..``); else raise."""
    if not _KEY.fullmatch(key) or ".." in key:
        raise ArchiveInputError(
            f"invalid model key {key!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, and no '..'"
        )
    return key


def check_file_name(name: str) -> str:
    """``name`` if it is a safe single file name (no folders, no ``..``, no control characters); else raise."""
    if (
        not name
        or len(name.encode()) > 200
        or "/" in name
        or "\\" in name
        or ".." in name
        or name.startswith(".")
        or any(unicodedata.category(c).startswith("C") for c in name)
    ):
        raise ArchiveInputError(
            f"invalid file name {name!r}: a plain file name without '/', '\\', '..', a leading dot or control "
            "characters is needed"
        )
    return name


def format_of(name: str) -> Format:
    """The accepted format of a file name by its suffix; :class:`UnsupportedFormatError` otherwise."""
    lower = name.lower()
    for suffix, fmt in FORMATS.items():
        if lower.endswith(suffix):
            return fmt
    raise UnsupportedFormatError(
        f"{name!r} is not an accepted format; the archive accepts {', '.join(FORMATS)} "
        f"({'; '.join(f.description for f in FORMATS.values())})"
    )


def check_spf_head(head: bytes, name: str) -> str:
    """The IFC schema named by an ISO 10303-21 header; :class:`UnsupportedFormatError` when it is not IFC."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"ISO-10303-21;"):
        raise UnsupportedFormatError(f"{name!r} is not an IFC file: it does not start with 'ISO-10303-21;'")
    match = _SCHEMA.search(text)
    if match is None:
        raise UnsupportedFormatError(f"{name!r} is not an IFC file: its header names no IFC schema (FILE_SCHEMA)")
    return match.group(1).decode().upper()


def check_ifczip(fh: IO[bytes], name: str, settings: ArchiveSettings) -> str:
    """Check a seekable ``.ifczip`` stream (left at offset 0); returns the IFC schema of its model."""
    try:
        archive = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsupportedFormatError(f"{name!r} is not a ZIP archive ({exc})") from exc
    try:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > settings.max_zip_members:
            raise TooLargeError(f"{name!r} has {len(members)} members; at most {settings.max_zip_members} allowed")
        models = [m for m in members if m.filename.lower().endswith(".ifc")]
        if len(models) != 1:
            raise UnsupportedFormatError(f"{name!r} must hold exactly one .ifc model, found {len(models)}")
        total = 0
        schema = ""
        for member in members:
            done = 0
            head = b""
            try:
                with archive.open(member) as stream:
                    while chunk := stream.read(1024 * 1024):
                        done += len(chunk)
                        total += len(chunk)
                        if len(head) < HEAD_BYTES:
                            head += chunk[: HEAD_BYTES - len(head)]
                        if total > settings.max_unzipped_bytes:
                            raise TooLargeError(
                                f"{name!r} expands beyond {settings.max_unzipped_bytes} bytes: refused as a zip bomb"
                            )
                        if done > 1024 * 1024 and done > settings.max_zip_ratio * max(member.compress_size, 1):
                            raise TooLargeError(
                                f"{name!r}: member {member.filename!r} expands more than "
                                f"{settings.max_zip_ratio:g}× its compressed size: refused as a zip bomb"
                            )
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise UnsupportedFormatError(f"{name!r}: member {member.filename!r} cannot be read ({exc})") from exc
            if member is models[0]:
                schema = check_spf_head(head, f"{name}:{member.filename}")
        return schema
    finally:
        archive.close()
        fh.seek(0)
