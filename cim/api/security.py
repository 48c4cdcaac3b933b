"""API keys and roles: ``require_role(*roles)`` guards writes; every write and every refusal is audited.

A key looks like ``cim_<prefix>_<secret>``; the database keeps the prefix (to find the row) and an
Argon2id hash of the whole key. Only the slow hash check is cached in memory (for a minute): the key's row
(``revoked_at``, role) is read on every request, so a revocation takes effect on the next request in every
worker process. Failed verifications are counted per key prefix and per client; over the limit, further
attempts are refused with 429 and ``Retry-After`` before any hash is computed.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cim.api.errors import TooManyRequestsError
from cim.db.api_keys import api_key_by_prefix, insert_api_key, insert_audit, touch_api_key
from cim.db.models import ROLES
from cim.errors import AuthError, PermissionDeniedError

KEY_PREFIX = "cim"
AUDITED = "cim_audited"
"""Request-state flag: this request's write (or refusal) is in the audit log."""
BODY_TOO_LARGE = "cim_body_too_large"
"""Request-state entry set by the body-limit middleware: why the body was cut off."""
PRINCIPAL = "cim_principal"
"""Request-state entry: the principal ``require_role`` admitted."""
_HASHER = PasswordHasher()
_CACHE_SECONDS = 60.0

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (`cim keys create`).")
bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")
# Declared as security dependencies so the OpenAPI document shows how to authenticate; the key itself is
# read from the request by :func:`authenticate`.
api_key_header_dep: Any = Security(api_key_header)
bearer_dep: Any = Security(bearer)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role (``anonymous`` callers have no key)."""

    key_id: int | None
    name: str
    role: str

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"key:{self.key_id}:{self.name}" if self.key_id is not None else "anonymous"


ANONYMOUS = Principal(None, "anonymous", "anonymous")


def new_api_key(engine: Engine, *, name: str, role: str) -> tuple[int, str]:
    """Create a key with ``role`` and return ``(id, key)``; the key is shown once and only its hash is stored."""
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with engine.begin() as conn:
        key_id = insert_api_key(conn, name=name, role=role, prefix=prefix, key_hash=_HASHER.hash(key))
        insert_audit(
            conn,
            action="keys.create",
            outcome="ok",
            actor="cli",
            target=f"api_key:{key_id}",
            detail={"name": name, "role": role},
        )
    return key_id, key


class FailureLimiter:
    """Counts failures per key (a client address, a key prefix) in a sliding window; over ``limit`` → 429.

    Per process: with several workers the effective limit is ``limit`` × workers (docs/security.md).
    """

    MAX_TRACKED = 100_000

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def check(self, *keys: str) -> None:
        """Raise :class:`TooManyRequestsError` (with seconds to wait) when any of ``keys`` is over the limit."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is not None and len(times) >= self.limit:
                    wait = max(1, math.ceil(times[-self.limit] + self.window - now))
                    raise TooManyRequestsError(
                        f"too many failed API key verifications; try again in {wait} s", retry_after=wait
                    )

    def record(self, *keys: str) -> None:
        """Count one failure for each of ``keys``."""
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > self.MAX_TRACKED:  # forget stale entries (bounded memory)
                for stale in [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window]:
                    del self._failures[stale]
            for key in keys:
                self._failures.setdefault(key, deque(maxlen=self.limit * 2)).append(now)


class KeyVerifier:
    """Checks presented keys against the database on every call; only the Argon2 check is cached."""

    def __init__(self, engine: Engine, *, failure_limit: int = 10, failure_window_seconds: float = 60.0) -> None:
        self.engine = engine
        self._verified: dict[str, tuple[float, int]] = {}  # sha256(key) -> (expiry, key id)
        self._lock = threading.Lock()
        self.failures = FailureLimiter(failure_limit, failure_window_seconds)

    def verify(self, key: str, client: str | None = None) -> Principal:
        """The principal of a valid, unrevoked key; :class:`AuthError` otherwise.

        ``client`` (the caller's address) is counted, with the key's prefix, when verification fails;
        :class:`TooManyRequestsError` once either is over the failure limit.
        """
        client_key = f"client:{client or '?'}"
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[1].isascii():
            self.failures.check(client_key)
            self.failures.record(client_key)
            raise AuthError("malformed API key; keys look like cim_<prefix>_<secret> (see `cim keys create`)")
        prefix_key = f"prefix:{parts[1]}"
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        with self.engine.begin() as conn:
            row = api_key_by_prefix(conn, parts[1])
            with self._lock:
                hit = self._verified.get(digest)
            if row is not None and row.revoked_at is None and hit is not None and hit[0] > now and hit[1] == row.id:
                return Principal(row.id, row.name, row.role)
            self.failures.check(client_key, prefix_key)
            if row is None or row.revoked_at is not None:
                self.failures.record(client_key, prefix_key)
                raise AuthError("unknown or revoked API key")
            try:
                _HASHER.verify(row.key_hash, key)
            except (VerificationError, InvalidHashError) as exc:
                self.failures.record(client_key, prefix_key)
                raise AuthError("unknown or revoked API key") from exc
            touch_api_key(conn, row.id)
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest] = (now + _CACHE_SECONDS, row.id)
        return Principal(row.id, row.name, row.role)


def presented_key(request: Request) -> str | None:
    """The key in ``X-API-Key`` or ``Authorization: Bearer …``, if any."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def client_of(request: Request) -> str | None:
    """The caller's address for the audit log."""
    return request.client.host if request.client else None


def audit(
    request: Request,
    principal: Principal,
    action: str | None,
    outcome: str,
    *,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one write (or refused write) in ``audit_log``; ``action`` defaults to ``METHOD /route``.

    Marks the request as audited, so the error handlers do not record the same refusal twice. A request
    whose body went over the upload limit is recorded as that refusal (413, outcome ``denied``), whatever
    error the handler saw when its body stream was cut.
    """
    state = request.scope.setdefault("state", {})
    too_large = state.get(BODY_TOO_LARGE)
    if too_large and outcome != "ok":
        outcome, detail = "denied", {"status": 413, "reason": too_large}
    engine: Engine = request.app.state.engine
    with engine.begin() as conn:
        insert_audit(
            conn,
            action=action or _action_of(request),
            outcome=outcome,
            api_key_id=principal.key_id,
            actor=principal.actor,
            target=target,
            client=client_of(request),
            detail=detail,
        )
    state[AUDITED] = True


def _action_of(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return f"{request.method} {path}"


def authenticate(request: Request) -> Principal:
    """The caller's principal: verified key, or :data:`ANONYMOUS` when no key was presented."""
    key = presented_key(request)
    if key is None:
        return ANONYMOUS
    verifier: KeyVerifier = request.app.state.key_verifier
    return verifier.verify(key, client_of(request))


def require_role(*roles: str) -> Callable[..., Principal]:
    """A FastAPI dependency that admits keys with one of ``roles`` (``admin`` always) and returns the principal.

    Refusals (no key → 401, wrong role → 403) are written to the audit log with outcome ``denied``.
    Use: ``principal: Annotated[Principal, Depends(require_role("planner"))]``.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles: {ROLES}")
    allowed = frozenset(roles) | {"admin"}

    def dependency(
        request: Request,
        _key: str | None = api_key_header_dep,
        _bearer: HTTPAuthorizationCredentials | None = bearer_dep,
    ) -> Principal:
        try:
            principal = authenticate(request)
        except AuthError as exc:
            audit(request, ANONYMOUS, _action_of(request), "denied", detail={"reason": str(exc)})
            raise
        if principal.key_id is None:
            audit(request, principal, _action_of(request), "denied", detail={"reason": "no API key"})
            raise AuthError("this endpoint needs an API key (X-API-Key header or Authorization: Bearer)")
        if principal.role not in allowed:
            audit(request, principal, _action_of(request), "denied", detail={"reason": f"role {principal.role}"})
            raise PermissionDeniedError(
                f"role {principal.role!r} may not do this; allowed roles: {', '.join(sorted(allowed))}"
            )
        request.scope.setdefault("state", {})[PRINCIPAL] = principal
        return principal

    return dependency


async def read_access(request: Request) -> Principal:
    """Dependency of read endpoints: open by default; with ``reads_require_key`` any valid key is needed."""
    if presented_key(request) is None:
        principal = ANONYMOUS
    else:
        principal = await run_in_threadpool(authenticate, request)
    if request.app.state.api_settings.reads_require_key and principal.key_id is None:
        raise AuthError("this deployment requires an API key for reads (X-API-Key header)")
    return principal


async def require_key(request: Request) -> Principal:
    """Dependency of reads that belong to one key (job details): any valid key, 401 without one."""
    if presented_key(request) is None:
        raise AuthError("this endpoint needs the API key that made the request (X-API-Key header)")
    return await run_in_threadpool(authenticate, request)
