"""Thread pipelines of the ingestors: run a generator ahead in a worker thread, map batches over a thread pool.

Shapely, pyproj and Arrow release the GIL, so preparing batches in threads overlaps with the server's COPY.
Both helpers keep their source order, bound how far they run ahead, and pass exceptions to the consumer.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


def prefetch(items: Iterator[_T], depth: int = 2, *, name: str = "ingest-prefetch") -> Generator[_T, None, None]:
    """Run a generator in a worker thread, ``depth`` items ahead; its exceptions re-raise here."""
    done = object()
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as exc:  # handed over to the consumer
            box.put(exc)

        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (e.g. its thread pool) runs in this thread

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.1)


def ordered_map(
    function: Callable[[_T], _R], items: Iterable[_T], workers: int, *, name: str = "ingest-worker"
) -> Generator[_R, None, None]:
    """``function`` over ``items`` in ``workers`` threads, results in source order, at most ``workers`` + 1 in flight.

    Closing the generator cancels what has not started.
    """
    pending: collections.deque[Future[_R]] = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                while len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
