"""Writing a tileset directory incrementally: a manifest of SHA-256 content hashes per file, so a rebuild
writes only the files whose bytes changed, and removes the files no longer part of the tileset.

Tile servers (the app and the nginx front) derive a file's ETag from its mtime in whole seconds and its
size, so a rewritten file of the same size gets an mtime at least one second after the old one's."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MANIFEST = "manifest.json"


class IncrementalWriter:
    """Write files under ``root`` only when their content hash differs from the previous build's."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.previous: dict[str, str] = {}
        path = root / MANIFEST
        if path.exists():
            try:
                self.previous = dict(json.loads(path.read_text(encoding="utf-8")).get("files", {}))
            except (OSError, ValueError):
                self.previous = {}
        self.files: dict[str, str] = {}
        self.written = 0
        self.kept = 0
        self.bytes = 0

    def put(self, rel: str, data: bytes, sha256: str | None = None) -> None:
        """Record ``rel`` (a POSIX path relative to the root) with ``data``; write it when changed or missing."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        self.files[rel] = digest
        self.bytes += len(data)
        target = self.root / rel
        if self.previous.get(rel) == digest and target.exists() and target.stat().st_size == len(data):
            self.kept += 1
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            old = target.stat()
        except FileNotFoundError:
            old = None
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        if old is not None and old.st_size == len(data):
            new_mtime = tmp.stat().st_mtime
            if int(new_mtime) <= int(old.st_mtime):  # same size, same second: the ETag would not change
                bumped = int(old.st_mtime) + 1
                os.utime(tmp, (bumped, bumped))
        os.replace(tmp, target)
        self.written += 1

    def finish(self) -> int:
        """Delete files of the previous build that are gone, write the manifest; return how many were deleted."""
        deleted = 0
        for rel in self.previous.keys() - self.files.keys():
            path = self.root / rel
            if path.exists():
                path.unlink()
                deleted += 1
        (self.root / MANIFEST).write_text(
            json.dumps({"version": 1, "files": dict(sorted(self.files.items()))}, indent=0), encoding="utf-8"
        )
        return deleted
