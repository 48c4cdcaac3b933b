"""A bounded disk cache of rendered one-map answers (base-map tiles, the overview), kept per data stamp.

Like a tile cache in front of a map server (MapProxy, TileCache): an entry is a file under
``root/<stamp>/``, written to a temporary file in the same folder and renamed into place, so a reader sees
a whole entry or none and concurrent writers of one key (threads or server processes) never mix their
bytes. Entries of an older data stamp are never read again (the stamp is part of the key) and their folders
are removed once another stamp is written. The total size is kept under ``max_bytes``: when a write passes it,
the least recently used entries (by modification time, refreshed on every hit) are removed down to
:data:`LOW_WATER` of the bound. Any file-system error is a miss, never a failed request.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

LOW_WATER = 0.8
"""Share of ``max_bytes`` the cache is pruned down to once it is full."""
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_CREATING = threading.Lock()


class StampedCache:
    """Bytes under string keys, kept per data stamp in the folder ``root`` and bounded to ``max_bytes``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        """Cache under ``root`` (created on the first write) holding at most ``max_bytes`` of entries."""
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._size: int | None = None  # bytes on disk, counted on the first write of this process
        self._current: str | None = None  # the stamp whose older siblings were last removed

    def path_of(self, stamp: str, key: str) -> Path:
        """File of the entry ``key`` of data stamp ``stamp`` (two levels of hashed folders keep folders small)."""
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.root / _SAFE.sub("_", stamp) / digest[:2] / digest[2:]

    def get(self, stamp: str, key: str) -> bytes | None:
        """The bytes stored under ``key`` for ``stamp``, or None."""
        path = self.path_of(stamp, key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently *used*: a hit keeps the entry
        return data

    def put(self, stamp: str, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` for ``stamp`` atomically; prune older stamps and, when full, old entries."""
        if len(data) > self.max_bytes:
            return
        self._drop_other_stamps(stamp)
        path = self.path_of(stamp, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                previous = path.stat().st_size
            except OSError:
                previous = 0
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return
        with self._lock:
            if self._size is None:
                self._size = self._disk_size()
            else:
                self._size += len(data) - previous
            full = self._size > self.max_bytes
        if full:
            self._prune()

    def size(self) -> int:
        """Bytes of the entries on disk now."""
        return self._disk_size()

    def _entries(self) -> list[tuple[float, int, Path]]:
        out: list[tuple[float, int, Path]] = []
        if not self.root.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):  # a write in flight
                    continue
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, path))
        return out

    def _disk_size(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _prune(self) -> None:
        with self._lock:
            entries = sorted(self._entries())
            total = sum(size for _, size, _ in entries)
            target = int(self.max_bytes * LOW_WATER)
            for _, size, path in entries:
                if total <= target:
                    break
                try:
                    path.unlink()
                except OSError:
                    continue
                total -= size
            self._size = total

    def _drop_other_stamps(self, stamp: str) -> None:
        folder = _SAFE.sub("_", stamp)
        with self._lock:
            if self._current == folder:
                return
            self._current = folder
            self._size = None
        if not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if child.name != folder and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)


def app_cache(state: Any, attribute: str, folder: str, max_bytes: int) -> StampedCache:
    """The app's cache kept as ``state.<attribute>``: ``<data directory>/cache/<folder>``, at most ``max_bytes``.

    ``state`` is an app's state (``app.state``) whose ``settings`` name the data directory. The cache object
    is made on the first call and kept, so every thread of the app shares its size count and locks.
    """
    cache: StampedCache | None = getattr(state, attribute, None)
    if cache is None:
        with _CREATING:  # two first calls at once must not each make (and count) their own
            cache = getattr(state, attribute, None)
            if cache is None:
                cache = StampedCache(state.settings.data_path / "cache" / folder, max_bytes)
                setattr(state, attribute, cache)
    return cache
