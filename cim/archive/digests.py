"""Digests computed while a file streams through: sha512 (OCFL), sha256 (fixity) and SM3 (national)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from cim.archive.formats import TooLargeError
from cim.storage.base import Readable

ALGORITHMS = ("sha512", "sha256", "sm3")


@dataclass(frozen=True)
class Digests:
    """Hex digests and size of one file."""

    sha512: str
    sha256: str
    sm3: str
    size: int


class HashingReader:
    """Wraps a stream: every chunk read is hashed (three algorithms on worker threads) and counted.

    Raises :class:`TooLargeError` as soon as more than ``limit`` bytes have been read, so a writer
    consuming this reader aborts and stores nothing. Not seekable on purpose (one ordered pass).
    """

    def __init__(self, raw: Readable, *, limit: int, name: str, head: bytes = b"") -> None:
        self._raw = raw
        self._head = head
        self.limit = limit
        self.name = name
        self.size = 0
        self._hashers = {a: hashlib.new(a) for a in ALGORITHMS}
        self._pool = ThreadPoolExecutor(len(ALGORITHMS), thread_name_prefix="digest")
        self._pending: list[Future[None]] = []

    def _wait(self) -> None:
        for f in self._pending:
            f.result()
        self._pending = []

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (hashed)."""
        if self._head:
            chunk, self._head = (
                (self._head, b"")
                if size < 0 or size >= len(self._head)
                else (
                    self._head[:size],
                    self._head[size:],
                )
            )
        else:
            chunk = self._raw.read(size)
        if not chunk:
            return b""
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLargeError(f"{self.name!r} is larger than the archive's limit of {self.limit} bytes")
        self._wait()
        data = bytes(chunk)
        self._pending = [self._pool.submit(h.update, data) for h in self._hashers.values()]
        return data

    def digests(self) -> Digests:
        """The digests of everything read so far (call once, at the end)."""
        self._wait()
        self._pool.shutdown()
        h = self._hashers
        return Digests(h["sha512"].hexdigest(), h["sha256"].hexdigest(), h["sm3"].hexdigest(), self.size)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True)


def digests_of_stream(chunks: Iterable[bytes]) -> Digests:
    """Digests of an iterable of byte chunks (used by verify and get)."""
    hashers = {a: hashlib.new(a) for a in ALGORITHMS}
    size = 0
    with ThreadPoolExecutor(len(ALGORITHMS), thread_name_prefix="digest") as pool:
        pending: list[Future[None]] = []
        for chunk in chunks:
            for f in pending:
                f.result()
            size += len(chunk)
            pending = [pool.submit(h.update, chunk) for h in hashers.values()]
        for f in pending:
            f.result()
    return Digests(hashers["sha512"].hexdigest(), hashers["sha256"].hexdigest(), hashers["sm3"].hexdigest(), size)
