"""Queries on ``api_key`` and ``audit_log``: key rows (only slow hashes stored) and the write audit trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection, func, insert, select, update

from cim.db.models import ROLES, ApiKey, AuditLog
from cim.errors import AuthError, NotFoundError


@dataclass(frozen=True)
class ApiKeyRow:
    """One API key as stored (never the key itself)."""

    id: int
    name: str
    role: str
    prefix: str
    key_hash: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The public fields (no hash), times as ISO 8601 text."""
        public = {k: v for k, v in asdict(self).items() if k != "key_hash"}
        return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in public.items()}


def _row(r: Any) -> ApiKeyRow:
    return ApiKeyRow(r.id, r.name, r.role, r.prefix, r.key_hash, r.created_at, r.last_used_at, r.revoked_at)


def insert_api_key(conn: Connection, *, name: str, role: str, prefix: str, key_hash: str) -> int:
    """Store a new key's prefix and hash; returns its id."""
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    stmt = insert(ApiKey).values(name=name, role=role, prefix=prefix, key_hash=key_hash).returning(ApiKey.id)
    return int(conn.execute(stmt).scalar_one())


def api_key_by_prefix(conn: Connection, prefix: str) -> ApiKeyRow | None:
    """The key row with this lookup prefix (revoked or not), if any."""
    r = conn.execute(select(*ApiKey.__table__.c).where(ApiKey.prefix == prefix)).first()
    return _row(r) if r is not None else None


def list_api_keys(conn: Connection) -> list[ApiKeyRow]:
    """Every key row, oldest first."""
    return [_row(r) for r in conn.execute(select(*ApiKey.__table__.c).order_by(ApiKey.id))]


def revoke_api_key(conn: Connection, key_id: int) -> None:
    """Mark a key revoked (it stays for the audit trail)."""
    result = conn.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=func.now())
    )
    if result.rowcount == 0:
        raise NotFoundError(f"no active API key with id {key_id}; see `cim keys list`")


def touch_api_key(conn: Connection, key_id: int) -> None:
    """Record that a key was just used."""
    conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=func.now()))


class AuditColumns(TypedDict, total=False):
    """The optional columns of an audit-log row: who (key id, actor name, client address), on what, details."""

    api_key_id: int | None
    actor: str | None
    target: str | None
    client: str | None
    detail: dict[str, Any] | None


def insert_audit(conn: Connection, *, action: str, outcome: str, **columns: Unpack[AuditColumns]) -> int:
    """Append one audit-log row (``outcome``: ok | denied | failed); returns its id."""
    values = {**columns, "action": action[:64], "outcome": outcome, "detail": columns.get("detail") or {}}
    return int(conn.execute(insert(AuditLog).values(**values).returning(AuditLog.id)).scalar_one())
