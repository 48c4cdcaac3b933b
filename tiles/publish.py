"""Publishing a built tileset to a storage backend (S3-compatible object storage), incrementally.

Layout under the backend (key prefix ``tiles/<name>/``):

- ``.objects/<sha256>``: each distinct file content once, named by its SHA-256 (never overwritten);
- ``.cim-index.json``: the tileset's files, ``{"version": 1, "files": {path: {"sha256", "size", "modified"}}}``.

A publish uploads only the contents whose hash the published index does not hold yet (in parallel), then
replaces the index with one PUT (atomic in every backend), then deletes the objects no path refers to any
more. A reader therefore sees the whole old tileset or the whole new one, never a mix, and a publish that
fails half way leaves the published tileset as it was (the objects it had uploaded are removed by the next
publish). The app serves published tilesets from the index (:class:`cim.api.tiles.StorageTiles`), with an
ETag made from the content hash and ``modified`` (when the content last changed) as ``Last-Modified``.

Publishing from the built folder rather than writing the tiles to the backend during the build keeps the
builder's incremental rebuild (``tiles/output.py``: it compares with the files on disk) and its speed (local
writes from worker processes), and makes the switch atomic: a build written object by object straight to a
bucket would be visible half-built.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cim.errors import TilesError
from cim.storage import Storage
from cim.storage.published import index_key, object_key, objects_prefix, read_index
from cim.values import check_tileset_name

UPLOAD_THREADS = 8
_SKIPPED_SUFFIXES = (".tmp",)


@dataclass(frozen=True)
class PublishReport:
    """What one publish did (``cim tiles publish --json``)."""

    tileset: str
    destination: str
    files: int
    uploaded: int
    kept: int
    deleted_objects: int
    bytes_uploaded: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


def _local_files(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.endswith(_SKIPPED_SUFFIXES):
            yield path.relative_to(folder).as_posix(), path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def publish_tileset(folder: Path, storage: Storage, name: str) -> PublishReport:
    """Publish the tileset built in ``folder`` as ``name`` to ``storage``; upload only new contents.

    Raises :class:`TilesError` when ``folder`` holds no ``tileset.json`` (nothing is uploaded then).
    """
    t0 = time.perf_counter()
    check_tileset_name(name)
    if not (folder / "tileset.json").is_file():
        raise TilesError(f"{folder} holds no tileset.json: build the tileset first (`cim tiles build {name}`)")
    local = list(_local_files(folder))
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        digests = list(pool.map(lambda item: _sha256(item[1]), local))
    previous = read_index(storage, name)
    published = {record["sha256"] for record in previous.values()}
    now = int(time.time())
    files: dict[str, dict[str, Any]] = {}
    to_upload: dict[str, Path] = {}
    for (rel, path), digest in zip(local, digests, strict=True):
        old = previous.get(rel)
        modified = old["modified"] if old is not None and old["sha256"] == digest else now
        files[rel] = {"sha256": digest, "size": path.stat().st_size, "modified": modified}
        if digest not in published and digest not in to_upload:
            to_upload[digest] = path

    def upload(item: tuple[str, Path]) -> int:
        digest, path = item
        with path.open("rb") as handle:
            return storage.put(object_key(name, digest), handle)

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        sent = sum(pool.map(upload, to_upload.items()))
    index = {"version": 1, "tileset": name, "published": now, "files": dict(sorted(files.items()))}
    storage.put(index_key(name), json.dumps(index, separators=(",", ":")).encode())
    referenced = {record["sha256"] for record in files.values()}
    stale = [key for key in storage.list(objects_prefix(name)) if key.rsplit("/", 1)[-1] not in referenced]
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(pool.map(storage.delete, stale))
    return PublishReport(
        tileset=name,
        destination=storage.describe(),
        files=len(files),
        uploaded=len(to_upload),
        kept=len(files) - sum(1 for r in files.values() if r["sha256"] in to_upload),
        deleted_objects=len(stale),
        bytes_uploaded=sent,
        seconds=time.perf_counter() - t0,
    )
