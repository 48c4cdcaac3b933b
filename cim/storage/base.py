"""The storage interface: keys are ``/``-separated relative paths; values are byte streams.

Every backend writes atomically: a reader sees a key's whole new value or its old value (or nothing),
never a partial one, even when the writer is killed half way.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from cim.errors import CimError, NotFoundError

CHUNK = 1024 * 1024
"""Default chunk size of streamed reads, bytes."""


class Readable(Protocol):
    """Anything with ``read(size) -> bytes`` (files, upload streams, hashing readers)."""

    def read(self, size: int = -1, /) -> bytes:
        """At most ``size`` bytes; ``b""`` at the end."""
        ...


class StorageError(CimError, exit_code=19):
    """A storage backend could not read or write (disk full, bucket unreachable, bad key)."""


class MissingObjectError(StorageError, NotFoundError, exit_code=17):
    """The key does not exist in the storage backend."""


def check_key(key: str) -> str:
    """``key`` if it is a safe relative key (no ``..``, no absolute path, no backslash or NUL); else raise.

    >>> check_key("archive/v1/content/model.ifc")
    'archive/v1/content/model.ifc'
    """
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StorageError(f"invalid storage key {key!r}: keys are relative paths with '/' separators")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise StorageError(f"invalid storage key {key!r}: empty, '.' or '..' segments are not allowed")
    return key


class Storage(abc.ABC):
    """A flat namespace of keys holding bytes, with streaming reads and byte ranges."""

    name: str = "storage"

    @abc.abstractmethod
    def put(self, key: str, data: Readable | bytes, *, overwrite: bool = True) -> int:
        """Store ``data`` (bytes or a readable binary stream, read in chunks) under ``key``; returns bytes written.

        Atomic: a crash leaves the old value or nothing. With ``overwrite=False`` an existing key is refused.
        """

    @abc.abstractmethod
    def stream(self, key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of ``key`` (``end=None``: to the end) as chunks of at most ``chunk_size``."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with ``prefix`` (a folder is ``"a/b/"``), in lexical order."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it does not exist)."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The size of ``key`` in bytes; :class:`MissingObjectError` when it does not exist."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where this backend stores, for messages and logs (never credentials)."""

    def temporaries(self, prefix: str = "") -> builtins.list[str]:
        """Keys under ``prefix`` of writes that were interrupted (a killed process); none by default."""
        return []

    def remove_temporary(self, key: str) -> int:
        """Discard the interrupted writes of ``key`` that :meth:`temporaries` lists; how many were discarded."""
        return 0

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        try:
            self.size(key)
        except MissingObjectError:
            return False
        return True

    def local_file(self, key: str) -> Path | None:
        """The file that holds ``key`` when this backend keeps it on a local disk (``None`` otherwise).

        Lets a reader copy it in the kernel (``copy_file_range``) instead of streaming it through Python.
        """
        return None

    def get(self, key: str) -> bytes:
        """The whole value of ``key`` (small objects only; stream large ones)."""
        return b"".join(self.stream(key))

    def range(self, key: str, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of ``key``."""
        return b"".join(self.stream(key, start, end))

    def put_chunks(self, key: str, chunks: Iterable[bytes], *, overwrite: bool = True) -> int:
        """Store an iterable of byte chunks under ``key`` (streamed, atomic)."""
        return self.put(key, _ChunkReader(iter(chunks)), overwrite=overwrite)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class _ChunkReader:
    """A minimal non-seekable binary reader over an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out
