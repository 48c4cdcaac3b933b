"""Read-replica routing of HTTP requests, and ``GET /status/database`` (the standby's lag).

:class:`ReadRoutingMiddleware` gives every request a :class:`~cim.db.routing.ReadRoute`: GET and HEAD may
read from the standby, every other method reads and writes on the primary. Consistency for one client:

- a request that committed on the primary answers with ``CIM-Write-LSN: X/Y`` (the primary's WAL position
  after it) and the cookie ``cim_write_lsn`` (browsers send it back by themselves); a later read that
  carries either is served by the standby only once the standby has replayed that far, otherwise by the
  primary. So a client always reads its own writes;
- without a token, reads may be up to ``read_replica_max_lag_seconds`` behind (the standby is left out of
  reads while it lags more);
- a GET whose statements the standby refuses (a temporary table of an analysis preview, a query cancelled
  by a recovery conflict) is run again on the primary before anything was sent.

Routes that must see background writes at once (job and review progress) are included with
:data:`~cim.api.dependencies.ReadsFromPrimary`.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cim.api.security import Principal, read_access
from cim.db.replica import lsn_value
from cim.db.routing import CURRENT_ROUTE, WRITE_LSN, ReadRoute, RoutingEngine

log = logging.getLogger("cim.api")

COOKIE = WRITE_LSN.lower().replace("-", "_")
SAFE_METHODS = frozenset({"GET", "HEAD"})
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


def after_lsn(headers: Headers) -> int | None:
    """The client's last write position from the ``CIM-Write-LSN`` header or cookie (None if absent or malformed)."""
    value = headers.get(WRITE_LSN)
    if value is None:
        for part in headers.get("cookie", "").split(";"):
            name, _, cookie = part.strip().partition("=")
            if name == COOKIE:
                value = cookie
    if value is None or not _LSN.match(value.strip()):
        return None
    return lsn_value(value.strip())


class ReadRoutingMiddleware:
    """Sets the request's read route; retries a refused GET on the primary; stamps writes with their LSN."""

    def __init__(self, app: ASGIApp, engine: RoutingEngine) -> None:
        self.app = app
        self.engine = engine
        self.cookie_max_age = math.ceil(engine.max_lag_seconds) + 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        after = after_lsn(Headers(scope=scope))
        if scope["method"] not in SAFE_METHODS:
            await self._attempt(scope, receive, send, ReadRoute(replica_allowed=False, after_lsn=after))
            return
        received: list[Message] = []

        async def recording_receive() -> Message:
            message = await receive()
            received.append(message)
            return message

        first = ReadRoute(replica_allowed=True, after_lsn=after)
        trial = {**scope, "state": dict(scope.get("state", {}))}  # what the first attempt adds is dropped
        if await self._attempt(trial, recording_receive, send, first, may_retry=True):
            return
        log.info("%s %s: the standby refused a statement; answered from the primary", scope["method"], scope["path"])

        async def replaying_receive() -> Message:
            return received.pop(0) if received else await receive()

        await self._attempt(scope, replaying_receive, send, ReadRoute(replica_allowed=False, after_lsn=after))

    async def _attempt(
        self, scope: Scope, receive: Receive, send: Send, route: ReadRoute, *, may_retry: bool = False
    ) -> bool:
        """Run the app under ``route``; False when it must run again on the primary (nothing was sent)."""
        started = False

        async def routed_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if may_retry and route.retry_on_primary:
                    return
                started = True
                if route.wrote:
                    message = await self._stamped(message)
            elif not started:
                return
            await send(message)

        token = CURRENT_ROUTE.set(route)
        try:
            await self.app(scope, receive, routed_send)
        except Exception:
            if not (may_retry and route.retry_on_primary and not started):
                raise
        finally:
            CURRENT_ROUTE.reset(token)
        return started or not (may_retry and route.retry_on_primary)

    async def _stamped(self, message: Message) -> Message:
        try:
            lsn = await run_in_threadpool(self.engine.primary_lsn)
        except Exception as exc:  # the write committed; a missing token only costs read-your-writes
            log.warning("could not read the primary's WAL position: %s", exc)
            return message
        headers = list(message.get("headers", []))
        headers.append((WRITE_LSN.lower().encode(), lsn.encode()))
        cookie = f"{COOKIE}={lsn}; Path=/; Max-Age={self.cookie_max_age}; SameSite=Lax; HttpOnly"
        headers.append((b"set-cookie", cookie.encode()))
        return {**message, "headers": headers}


router = APIRouter(tags=["status"])


@router.get("/status/database", summary="The primary and the read replica: reachable, replication lag")
def database_status(request: Request, _: Annotated[Principal, Depends(read_access)]) -> dict[str, Any]:
    """Whether the primary and the standby answer, the standby's replay position and lag (bytes, seconds),
    whether replay is paused and whether reads currently use the standby. Without a read replica only
    ``read_replica: null`` is reported."""
    engine = request.app.state.engine
    if not isinstance(engine, RoutingEngine):
        return {"read_replica": None}
    health = engine.monitor.check()
    used = engine.serves_reads(health)
    return {
        "primary": {"reachable": health.primary_reachable, "lsn": health.primary_lsn},
        "read_replica": {**health.to_dict(), "max_lag_seconds": engine.max_lag_seconds, "used_for_reads": used},
    }
