"""The local-disk backend: keys are files under a root folder, written to a temporary name and renamed."""

from __future__ import annotations

import builtins
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cim.settings import Settings
from cim.storage.base import CHUNK, MissingObjectError, Readable, Storage, StorageError, check_key
from cim.storage.registry import register_backend
from cim.storage.settings import StorageSettings

TEMP_MARK = ".tmp-"
"""Temporary files are ``.<name>.tmp-<random>`` next to their target; a crash may leave one behind."""

WRITE_CHUNK = 8 * 1024 * 1024
"""Bytes read from the source and written at a time."""
WRITEBACK_EVERY = 64 * 1024 * 1024
"""While a large file is written, the kernel is asked every this many bytes to start writing the dirty pages
back (``POSIX_FADV_DONTNEED`` starts an asynchronous writeback of the range), so the final ``fsync``
overlaps the write instead of flushing the whole file after it."""


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's data (a folder: its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


class LocalStorage(Storage):
    """Files under ``root``; ``put`` writes ``.name.tmp-…``, fsyncs, renames and fsyncs the folder."""

    name = "local"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root.expanduser().resolve()
        self.fsync = fsync

    def describe(self) -> str:
        """``local:<root>``."""
        return f"local:{self.root}"

    def path_of(self, key: str) -> Path:
        """The file that holds ``key`` (checked to stay inside the root)."""
        path = (self.root / check_key(key)).resolve()
        if path != self.root and self.root not in path.parents:
            raise StorageError(f"invalid storage key {key!r}: it leaves the storage root")
        return path

    def local_file(self, key: str) -> Path | None:
        """The file of ``key`` (:class:`MissingObjectError` when there is none)."""
        path = self.path_of(key)
        if not path.is_file():
            raise MissingObjectError(f"{key!r} does not exist in {self.describe()}")
        return path

    def put(self, key: str, data: Readable | bytes, *, overwrite: bool = True) -> int:
        """Write ``data`` to ``key`` atomically; a failure (disk full…) removes the temporary file."""
        target = self.path_of(key)
        if not overwrite and target.exists():
            raise StorageError(f"{key!r} already exists in {self.describe()} and may not be overwritten")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of {key!r} in {self.describe()}: {exc.strerror}") from exc
        temp = target.with_name(f".{target.name}{TEMP_MARK}{secrets.token_hex(6)}")
        written = 0
        try:
            for attempt in range(3):
                try:
                    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    break
                except FileNotFoundError:  # a concurrent delete pruned the (then empty) folder
                    if attempt == 2:
                        raise
                    target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if isinstance(data, bytes | bytearray | memoryview):
                    view = memoryview(data)
                    while written < len(view):
                        written += os.write(fd, view[written : written + WRITE_CHUNK])
                else:
                    kicked = 0
                    while True:
                        chunk = data.read(WRITE_CHUNK)
                        if not chunk:
                            break
                        view = memoryview(chunk)
                        done = 0
                        while done < len(view):
                            done += os.write(fd, view[done:])
                        written += done
                        if self.fsync and written - kicked >= WRITEBACK_EVERY:
                            _start_writeback(fd, kicked, written - kicked)
                            kicked = written
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
            if self.fsync:
                fsync_path(target.parent)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise StorageError(f"writing {key!r} to {self.describe()} failed: {reason}; nothing was stored") from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return written

    def stream(self, key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Chunks of ``[start, end)`` read from the file."""
        path = self.path_of(key)
        try:
            fh = path.open("rb")
        except FileNotFoundError as exc:
            raise MissingObjectError(f"{key!r} does not exist in {self.describe()}") from exc
        except OSError as exc:
            raise StorageError(f"reading {key!r} from {self.describe()} failed: {exc.strerror}") from exc
        return self._chunks(fh, start, end, chunk_size)

    @staticmethod
    def _chunks(fh: BinaryIO, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
        with fh:
            fh.seek(start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                chunk = fh.read(chunk_size if remaining is None else min(chunk_size, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def list(self, prefix: str = "") -> Iterator[str]:
        """Committed keys under ``prefix`` (temporary files are skipped), sorted."""
        yield from (k for k in self._walk(prefix) if TEMP_MARK not in k.rsplit("/", 1)[-1])

    def temporaries(self, prefix: str = "") -> builtins.list[str]:
        """Temporary files left by interrupted writes under ``prefix``."""
        return [k for k in self._walk(prefix) if TEMP_MARK in k.rsplit("/", 1)[-1]]

    def remove_temporary(self, key: str) -> int:
        """Delete the temporary file ``key`` (as :meth:`temporaries` names it); 1 if it was there."""
        if TEMP_MARK not in key.rsplit("/", 1)[-1]:
            raise StorageError(f"{key!r} is not a temporary file of an interrupted write")
        existed = self.path_of(key).exists()
        self.delete(key)
        return int(existed)

    def _walk(self, prefix: str) -> Iterator[str]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.path_of(folder) if folder else self.root
        if not base.is_dir():
            return
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def delete(self, key: str) -> None:
        """Remove the file (and nothing else)."""
        path = self.path_of(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"deleting {key!r} from {self.describe()} failed: {exc.strerror}") from exc
        # Folders exist only while they hold keys (as in an object store): prune the empty ones.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def size(self, key: str) -> int:
        """The file's size in bytes."""
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError as exc:
            raise MissingObjectError(f"{key!r} does not exist in {self.describe()}") from exc


@register_backend("local")
def _local(storage_settings: StorageSettings, settings: Settings) -> Storage:
    root = storage_settings.root or settings.data_path / "storage"
    return LocalStorage(root)
