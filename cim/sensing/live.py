"""Live observation feed for the viewer: one LISTEN connection per process, fanned out to asyncio queues.

Stored observations are announced by the database (``NOTIFY cim_sensing`` at commit, see
:func:`cim.db.sensing.notify_latest`), whichever process stored them (HTTP worker, MQTT subscriber), so every
worker's server-sent-event clients see every observation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

import psycopg

from cim.db.engine import connect_url
from cim.db.sensing import LIVE_CHANNEL

log = logging.getLogger("cim.sensing.live")


class LiveHub:
    """Listens on the database's sensing channel and hands each announcement to the registered queues."""

    def __init__(self, database_url: str) -> None:
        self.url = connect_url(database_url)
        self._queues: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[list[dict[str, Any]]]]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self) -> asyncio.Queue[list[dict[str, Any]]]:
        """A queue receiving lists of ``{d: datastream id, o: observation id, t, r, n}`` (call in the loop)."""
        q: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._queues.add((asyncio.get_running_loop(), q))
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="cim-live", daemon=True)
                self._thread.start()
        return q

    def unsubscribe(self, q: asyncio.Queue[list[dict[str, Any]]]) -> None:
        """Stop delivering to ``q``."""
        with self._lock:
            self._queues = {(lp, x) for lp, x in self._queues if x is not q}

    def stop(self) -> None:
        """Stop listening (the thread ends within a second) and end the event streams."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called (event streams end)."""
        return self._stop.is_set()

    def _deliver(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            targets = list(self._queues)
        for loop, q in targets:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_put, q, items)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {LIVE_CHANNEL}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=100):
                            try:
                                self._deliver(json.loads(note.payload))
                            except ValueError:
                                log.warning("unreadable sensing notification")
            except psycopg.Error as exc:
                log.warning("live feed lost the database (%s); reconnecting", type(exc).__name__)
                self._stop.wait(1.0)


def _put(q: asyncio.Queue[list[dict[str, Any]]], items: list[dict[str, Any]]) -> None:
    if q.full():  # a slow client loses old updates, never blocks the others
        with contextlib.suppress(asyncio.QueueEmpty):
            q.get_nowait()
    q.put_nowait(items)
