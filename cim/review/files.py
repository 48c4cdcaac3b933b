"""The reviewed file itself: IFC-SPF or ifczip, recognised by its first bytes, unpacked with limits.

An ifczip is a zip archive holding one ``.ifc``; the member is unpacked in chunks and refused as soon as it
grows past :attr:`ReviewSettings.ifczip_max_bytes` or past ``ifczip_max_ratio`` × its packed size (a zip
bomb), whatever its header claims.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from cim.errors import ReviewError
from cim.review.settings import ReviewSettings

CHUNK = 1 << 20


def kind_of(path: Path) -> str:
    """``ifc`` or ``ifczip`` from the file's first bytes; :class:`ReviewError` for anything else."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise ReviewError(f"cannot read {path}: {exc.strerror or exc}") from exc
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"ISO-10303-21"):
        return "ifc"
    if head.startswith(b"PK\x03\x04"):
        return "ifczip"
    raise ReviewError(f"{path.name} is not an IFC model: send an IFC-SPF file (.ifc, ISO-10303-21) or an .ifczip")


def check_size(path: Path, settings: ReviewSettings) -> int:
    """The file's size in bytes; :class:`ReviewError` when it is above the upload limit."""
    size = path.stat().st_size
    if size > settings.upload_limit_bytes:
        raise ReviewError(
            f"{path.name} is {size / 2**20:.1f} MiB, over the review limit of {settings.upload_limit_bytes / 2**20:.0f} MiB"  # noqa: E501
        )
    return size


def unpack_ifczip(path: Path, folder: Path, settings: ReviewSettings) -> Path:
    """Unpack the single ``.ifc`` of an ifczip into ``folder``; refuses zip bombs and archives without one."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ReviewError(f"{path.name} is not a readable zip archive ({exc})") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".ifc")]
        if len(members) != 1:
            raise ReviewError(f"{path.name} must hold exactly one .ifc file (it holds {len(members)})")
        member = members[0]
        limit = min(settings.ifczip_max_bytes, int(max(member.compress_size, 1) * settings.ifczip_max_ratio))
        if member.file_size > limit:
            raise ReviewError(
                f"{path.name} unpacks to {member.file_size} bytes, over the limit of {limit} bytes "
                f"(at most {settings.ifczip_max_ratio:g}× the packed size and {settings.ifczip_max_bytes} bytes)"
            )
        target = folder / (Path(member.filename).name or "model.ifc")
        written = 0
        try:
            with archive.open(member) as source, open(target, "wb") as out:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > limit:  # the header lied about the size: stop before the disk fills
                        raise ReviewError(f"{path.name} unpacks to more than {limit} bytes (a zip bomb); refused")
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            target.unlink(missing_ok=True)
            raise ReviewError(f"{path.name} could not be unpacked: {exc}") from exc
        except ReviewError:
            target.unlink(missing_ok=True)
            raise
    if kind_of(target) != "ifc":
        target.unlink(missing_ok=True)
        raise ReviewError(f"the .ifc inside {path.name} is not an IFC-SPF file")
    return target


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
