"""Reads on a streaming-replication standby, writes on the primary: one engine that routes connections.

:class:`RoutingEngine` *is* the primary's engine (same pool, URL and dialect; ``engine.begin()`` always
runs on the primary) with one difference: ``engine.connect()`` made inside a **read route** (a
:class:`ReadRoute` set in :data:`CURRENT_ROUTE` by the HTTP layer for GET/HEAD requests) returns a
connection to the standby when the standby can serve it:

- it is reachable, still in recovery (not promoted) and, while the primary is reachable, its replay lag is
  at most ``max_lag_seconds`` (bounded staleness; a standby further behind is left out until it catches up);
- when the route carries ``after_lsn`` (the WAL position of the client's own last write, see
  :data:`WRITE_LSN`), the standby has replayed at least that far: read-your-writes. Otherwise the read goes
  to the primary.

Everything else (``begin()``, connections outside a read route: jobs, the MQTT subscriber, the command
line) uses the primary. When the primary is down, reads in a read route go to the standby whatever its lag
(the freshest data there is), and a write raises :class:`~cim.errors.DatabaseError` ("the primary is not
reachable", HTTP 503). A statement the standby refuses (a write or a temporary table in a GET: SQLSTATE
25006, or a query cancelled by a recovery conflict: 40001) marks the route ``retry_on_primary``; the HTTP
layer then runs the request again on the primary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, OperationalError

from cim.db.replica import lsn_value
from cim.errors import DatabaseError

log = logging.getLogger("cim.db.routing")

WRITE_LSN = "CIM-Write-LSN"
"""Header (and, lower-cased with ``_``, cookie) carrying the primary's WAL position after a client's write."""
_RETRY_STATES = frozenset({"25006", "40001"})
"""read_only_sql_transaction (a write reached the standby); serialization_failure (recovery conflict)."""


@dataclass
class ReadRoute:
    """Where one request's reads may go, and what happened (mutable: shared with the request's threads)."""

    replica_allowed: bool
    """True for reads that may use the standby (GET/HEAD outside the primary-only routes)."""
    after_lsn: int | None = None
    """The client's last write position: the standby must have replayed this far to serve the read."""
    retry_on_primary: bool = False
    """The standby refused a statement of this request; run it again with ``replica_allowed=False``."""
    wrote: bool = False
    """A transaction of this request committed on the primary (the response then carries its LSN)."""
    served_by: set[str] = field(default_factory=set)
    """``"primary"`` and/or ``"replica"``: which servers this request's connections went to."""


CURRENT_ROUTE: ContextVar[ReadRoute | None] = ContextVar("cim_read_route", default=None)
"""The route of the request being handled (None outside requests: everything on the primary)."""


@dataclass(frozen=True)
class ReplicaHealth:
    """The standby as the monitor last saw it."""

    reachable: bool
    in_recovery: bool
    replay_paused: bool
    replay_lsn: str | None
    primary_reachable: bool
    primary_lsn: str | None
    lag_bytes: int | None
    lag_seconds: float | None
    """Seconds since the monitor first saw a primary WAL position the standby has not replayed yet (0 when
    caught up); low by at most one check interval, and never inflated by the primary's idle time."""
    last_replay_at: str | None
    checked_at: float
    """Unix time of the check."""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


class ReplicaMonitor:
    """Polls the primary's WAL position and the standby's replay position every ``interval`` seconds."""

    def __init__(self, primary: Engine, replica: Engine, *, interval: float = 0.5) -> None:
        self.primary = primary
        self.replica = replica
        self.interval = interval
        self._samples: deque[tuple[float, int]] = deque(maxlen=10_000)  # (time, primary LSN) when it moved
        self._health: ReplicaHealth | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def health(self) -> ReplicaHealth:
        """The latest check (made now when none was made yet)."""
        with self._lock:
            current = self._health
        return current if current is not None else self.check()

    def start(self) -> None:
        """Start polling in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cim-replica-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def mark_unreachable(self, error: str) -> None:
        """Record that a connection to the standby just failed (reads leave it until the next good check)."""
        with self._lock:
            old = self._health
            self._health = _unreachable(time.time(), error, primary_reachable=old.primary_reachable if old else True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # never let the monitor die: the next check retries
                log.exception("replica check failed")

    def check(self) -> ReplicaHealth:
        """Query both servers now, update the lag estimate and return the result."""
        now = time.time()
        primary_lsn: int | None = None
        primary_error = None
        try:
            with Engine.connect(self.primary) as conn:
                primary_lsn = lsn_value(str(conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()))
        except DBAPIError as exc:
            primary_error = _first_line(exc)
        try:
            with self.replica.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(),"
                        " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END"
                    )
                ).one()
        except DBAPIError as exc:
            health = replace(
                _unreachable(now, _first_line(exc), primary_reachable=primary_error is None),
                primary_lsn=_lsn_text(primary_lsn),
            )
        else:
            in_recovery, replay, replay_at, paused = row
            replay_lsn = lsn_value(replay) if replay else None
            lag_bytes, lag_seconds = self._lag(now, primary_lsn, replay_lsn)
            health = ReplicaHealth(
                reachable=True,
                in_recovery=bool(in_recovery),
                replay_paused=bool(paused),
                replay_lsn=replay,
                primary_reachable=primary_error is None,
                primary_lsn=_lsn_text(primary_lsn),
                lag_bytes=lag_bytes,
                lag_seconds=lag_seconds,
                last_replay_at=None if replay_at is None else replay_at.isoformat(),
                checked_at=now,
                error=None if in_recovery else "the standby was promoted: it no longer follows the primary",
            )
        with self._lock:
            self._health = health
        return health

    def _lag(self, now: float, primary_lsn: int | None, replay_lsn: int | None) -> tuple[int | None, float | None]:
        if primary_lsn is None or replay_lsn is None:
            return None, None
        with self._lock:
            if not self._samples or self._samples[-1][1] != primary_lsn:
                self._samples.append((now, primary_lsn))
            while len(self._samples) > 1 and self._samples[1][1] <= replay_lsn:
                self._samples.popleft()  # keep the oldest position the standby has not reached yet
            if replay_lsn >= primary_lsn:
                return 0, 0.0
            oldest = next((t for t, lsn in self._samples if lsn > replay_lsn), now)
        return primary_lsn - replay_lsn, round(now - oldest, 3)


class RoutingEngine(Engine):
    """The primary's engine whose ``connect()`` inside a read route may return a standby connection."""

    def __init__(self, primary: Engine, replica: Engine, *, max_lag_seconds: float = 30.0, interval: float = 0.5):
        super().__init__(
            primary.pool,
            primary.dialect,
            primary.url,
            logging_name=getattr(primary, "logging_name", None),
            echo=primary.echo,
            hide_parameters=primary.hide_parameters,
        )
        self.primary = primary
        self.replica = replica
        self.max_lag_seconds = max_lag_seconds
        self.monitor = ReplicaMonitor(self, replica, interval=interval)
        event.listen(self, "commit", _record_commit)
        event.listen(replica, "handle_error", self._replica_error)
        self.monitor.start()

    def connect(self) -> Connection:
        """A standby connection for a read route the standby can serve; a primary connection otherwise."""
        route = CURRENT_ROUTE.get()
        if route is None or not route.replica_allowed or route.retry_on_primary:
            return self._primary_connection(route)
        health = self.monitor.health
        if self.serves_reads(health):
            conn = self._replica_connection(route)
            if conn is not None:
                return conn
        try:
            return self._primary_connection(route)
        except DatabaseError:
            if health.reachable and health.in_recovery:  # the primary is down: serve what the standby has
                route.served_by.add("replica")
                return self.replica.connect()
            raise

    def serves_reads(self, health: ReplicaHealth) -> bool:
        """Whether the standby in ``health`` takes reads: reachable, not promoted, lag within the bound.

        While the primary is unreachable the lag is unknown and the standby serves reads whatever it is.
        """
        if not (health.reachable and health.in_recovery):
            return False
        return not health.primary_reachable or (health.lag_seconds or 0.0) <= self.max_lag_seconds

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction on the primary (committed at the end of the block), whatever the route."""
        with self._primary_connection(CURRENT_ROUTE.get()) as conn, conn.begin():
            yield conn

    def dispose(self, close: bool = True) -> None:
        """Stop the monitor and dispose of both pools."""
        self.monitor.stop()
        self.replica.dispose(close)
        super().dispose(close)

    def primary_lsn(self) -> str:
        """The primary's WAL insert position now (at or after every transaction committed so far)."""
        with Engine.connect(self) as conn:
            return str(conn.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one())

    # -- internals ---------------------------------------------------------------------------------

    def _primary_connection(self, route: ReadRoute | None) -> Connection:
        try:
            conn = Engine.connect(self)
        except OperationalError as exc:
            raise DatabaseError(
                "the primary database is not reachable: writes are unavailable until it is back "
                f"(reads are served by the read replica); {_first_line(exc)}"
            ) from exc
        if route is not None:
            route.served_by.add("primary")
        return conn

    def _replica_connection(self, route: ReadRoute) -> Connection | None:
        try:
            conn = self.replica.connect()
        except OperationalError as exc:
            self.monitor.mark_unreachable(_first_line(exc))
            return None
        if route.after_lsn is not None:
            health = self.monitor.health
            cached = lsn_value(health.replay_lsn) if health.replay_lsn else -1
            if cached < route.after_lsn:
                replayed = conn.execute(
                    text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": _lsn_text(route.after_lsn)}
                ).scalar()
                conn.rollback()  # end the implicit transaction: the caller may begin its own
                if not replayed:
                    conn.close()
                    return None
        route.served_by.add("replica")
        return conn

    def _replica_error(self, context: ExceptionContext) -> None:
        route = CURRENT_ROUTE.get()
        state = getattr(context.original_exception, "sqlstate", None)
        if route is not None and (state in _RETRY_STATES or context.is_disconnect):
            route.retry_on_primary = True
        if context.is_disconnect:
            self.monitor.mark_unreachable(str(context.original_exception).strip().splitlines()[0])


def _unreachable(now: float, error: str, *, primary_reachable: bool) -> ReplicaHealth:
    return ReplicaHealth(
        reachable=False,
        in_recovery=False,
        replay_paused=False,
        replay_lsn=None,
        primary_reachable=primary_reachable,
        primary_lsn=None,
        lag_bytes=None,
        lag_seconds=None,
        last_replay_at=None,
        checked_at=now,
        error=error,
    )


def _record_commit(conn: Connection) -> None:
    route = CURRENT_ROUTE.get()
    if route is not None:
        route.wrote = True


def _lsn_text(value: int | None) -> str | None:
    return None if value is None else f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__
