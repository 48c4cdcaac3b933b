"""API keys and roles: ``require_role(*roles)`` guards writes; every write and every refusal is audited.

A key looks like ``cim_<prefix>_<secret>``; the database keeps the prefix (to find the row) and an
Argon2id hash of the whole key. Verified keys are cached in memory for a minute so reads that require a
key do not pay the slow hash on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cim.db.api_keys import api_key_by_prefix, insert_api_key, insert_audit, touch_api_key
from cim.db.models import ROLES
from cim.errors import AuthError, PermissionDeniedError

KEY_PREFIX = "cim"
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


class KeyVerifier:
    """Checks presented keys against the database, with a short in-memory cache of successes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def verify(self, key: str) -> Principal:
        """The principal of a valid, unrevoked key; :class:`AuthError` otherwise."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise AuthError("malformed API key; keys look like cim_<prefix>_<secret> (see `cim keys create`)")
        with self.engine.begin() as conn:
            row = api_key_by_prefix(conn, parts[1])
            if row is None or row.revoked_at is not None:
                raise AuthError("unknown or revoked API key")
            try:
                _HASHER.verify(row.key_hash, key)
            except (VerificationError, InvalidHashError) as exc:
                raise AuthError("unknown or revoked API key") from exc
            touch_api_key(conn, row.id)
        principal = Principal(row.id, row.name, row.role)
        with self._lock:
            self._cache[digest] = (now + _CACHE_SECONDS, principal)
        return principal


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
    action: str,
    outcome: str,
    *,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one write (or refused write) in ``audit_log``."""
    engine: Engine = request.app.state.engine
    with engine.begin() as conn:
        insert_audit(
            conn,
            action=action,
            outcome=outcome,
            api_key_id=principal.key_id,
            actor=principal.actor,
            target=target,
            client=client_of(request),
            detail=detail,
        )


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
    return verifier.verify(key)


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
