"""Digests computed while a file streams through: sha512 (OCFL), sha256 (fixity) and SM3 (national).

One pass over the bytes: each algorithm has its own worker thread that takes the chunks in order
(hashlib releases the GIL on large buffers), so the three digests and the writer run side by side and a
put takes about as long as its slowest digest (SM3 on one core), not the sum of them. At most
``depth`` chunks are in flight, which bounds the memory.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cim.archive.formats import TooLargeError
from cim.storage.base import Readable

ALGORITHMS = ("sha512", "sha256", "sm3")
CHUNK = 8 * 1024 * 1024
"""Bytes read from a source at a time when hashing (large reads: few system calls, GIL released)."""
DEPTH = 4
"""Chunks that may wait for the slowest digest (memory ≈ DEPTH × chunk size)."""


@dataclass(frozen=True)
class Digests:
    """Hex digests and size of one file."""

    sha512: str
    sha256: str
    sm3: str
    size: int


class ParallelHasher:
    """Digests of a stream of chunks, one worker thread per algorithm, chunks taken in order."""

    def __init__(self, algorithms: Iterable[str] = ALGORITHMS, *, depth: int = DEPTH) -> None:
        self._hashers = {a: hashlib.new(a) for a in algorithms}
        self._workers = {a: ThreadPoolExecutor(1, thread_name_prefix=f"digest-{a}") for a in self._hashers}
        self._inflight: deque[list[Future[None]]] = deque()
        self.depth = depth
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Hash ``chunk`` after the earlier ones (returns at once unless ``depth`` chunks are waiting)."""
        while len(self._inflight) >= self.depth:
            for f in self._inflight.popleft():
                f.result()
        self.size += len(chunk)
        self._inflight.append([self._workers[a].submit(h.update, chunk) for a, h in self._hashers.items()])

    def hexdigests(self) -> dict[str, str]:
        """Every algorithm's hex digest of all chunks (waits for the workers and stops them)."""
        while self._inflight:
            for f in self._inflight.popleft():
                f.result()
        self.close()
        return {a: h.hexdigest() for a, h in self._hashers.items()}

    def digests(self) -> Digests:
        """The three archive digests (for a hasher of :data:`ALGORITHMS`)."""
        hexes = self.hexdigests()
        return Digests(hexes["sha512"], hexes["sha256"], hexes["sm3"], self.size)

    def close(self) -> None:
        """Stop the worker threads (pending chunks are dropped)."""
        for worker in self._workers.values():
            worker.shutdown(wait=True, cancel_futures=True)


class HashingReader:
    """Wraps a stream: every chunk read is hashed (three algorithms on worker threads) and counted.

    Raises :class:`TooLargeError` as soon as more than ``limit`` bytes have been read, so a writer
    consuming this reader aborts and stores nothing. Not seekable on purpose (one ordered pass).
    ``on_read`` (fault injection of the crash tests) is called with the bytes read so far before each read.
    """

    def __init__(
        self,
        raw: Readable,
        *,
        limit: int,
        name: str,
        head: bytes = b"",
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self._raw = raw
        self._head = head
        self.limit = limit
        self.name = name
        self._hasher = ParallelHasher()
        self._on_read = on_read

    @property
    def size(self) -> int:
        """Bytes read so far."""
        return self._hasher.size

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (hashed)."""
        if self._on_read is not None:
            self._on_read(self.size)
        if self._head:
            if size < 0 or size >= len(self._head):
                chunk, self._head = self._head, b""
            else:
                chunk, self._head = self._head[:size], self._head[size:]
        else:
            chunk = self._raw.read(size)
        if not chunk:
            return b""
        chunk = bytes(chunk)  # immutable: the workers hash it while the caller writes it
        if self.size + len(chunk) > self.limit:
            raise TooLargeError(f"{self.name!r} is larger than the archive's limit of {self.limit} bytes")
        self._hasher.update(chunk)
        return chunk

    def digests(self) -> Digests:
        """The digests of everything read so far (call once, at the end)."""
        return self._hasher.digests()

    def close(self) -> None:
        """Stop the worker threads."""
        self._hasher.close()


def digests_of_stream(chunks: Iterable[bytes]) -> Digests:
    """Digests of an iterable of byte chunks (used by verify)."""
    hasher = ParallelHasher()
    try:
        for chunk in chunks:
            hasher.update(chunk)
    except BaseException:
        hasher.close()
        raise
    return hasher.digests()


def copy_and_hash(source: Path, out: IO[bytes], algorithm: str = "sha256") -> tuple[str, int]:
    """Copy ``source`` into ``out`` in the kernel while another thread hashes it; (hex digest, bytes copied).

    ``copy_file_range`` moves the bytes without bringing them into Python, and the digest is taken by
    a thread that reads the same (page-cached) file, so the copy runs at about ``cp``'s speed and the
    check costs one core beside it. The caller compares the digest with the one stored at put time.
    """
    hasher = hashlib.new(algorithm)
    failure: list[BaseException] = []

    def digest() -> None:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        try:
            with source.open("rb", buffering=0) as fh:
                while n := fh.readinto(buffer):
                    hasher.update(view[:n])
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=digest, name=f"digest-{algorithm}", daemon=True)
    worker.start()
    try:
        out.flush()
        with source.open("rb") as src:
            in_fd, out_fd = src.fileno(), out.fileno()
            copied = _kernel_copy(in_fd, out_fd)
    finally:
        worker.join()
    if failure:
        raise failure[0]
    return hasher.hexdigest(), copied


def _kernel_copy(in_fd: int, out_fd: int) -> int:
    """Copy all of ``in_fd`` to ``out_fd`` in the kernel: ``copy_file_range``, or ``sendfile`` across filesystems."""
    copied = 0
    try:
        while n := os.copy_file_range(in_fd, out_fd, 1 << 30):
            copied += n
        return copied
    except OSError as exc:
        if copied or exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    while n := os.sendfile(out_fd, in_fd, None, 1 << 30):
        copied += n
    return copied
