"""The archive ledger: an append-only SM3 hash chain over archive events and audit-log entries.

Entry ``n`` stores ``entry_hash = SM3(bytes.fromhex(prev_hash) ‖ canonical_json(body))`` where ``body`` is
``{"seq", "at", "kind", "model_key", "version", "audit_id", "payload"}`` and ``prev_hash`` is entry
``n-1``'s hash (64 zeros for the first). Canonical JSON: UTF-8, keys sorted, no insignificant whitespace.
Each UTC day gets a Merkle root over its entry hashes (RFC 6962 tree shape, SM3, leaf prefix 0x00, node
prefix 0x01), so a root copied elsewhere later proves that no entry of that day changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection, Engine

from cim.db import archive as q

GENESIS = "0" * 64
KINDS = ("put", "get", "delete", "decision", "audit")


def sm3(data: bytes) -> str:
    """SM3 (GB/T 32905-2016) hex digest of ``data``."""
    return hashlib.new("sm3", data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (sorted keys, compact, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class VersionRef(TypedDict, total=False):
    """The model version an archive event is about."""

    model_key: str | None
    version: int | None


class EntryRefs(VersionRef, total=False):
    """What a ledger entry points at besides its payload: a model version, or the audit-log row it chains."""

    audit_id: int | None


def entry_body(*, seq: int, at: str, kind: str, payload: Any, **refs: Unpack[EntryRefs]) -> dict[str, Any]:
    """The hashed body of a ledger entry (a reference not given is null)."""
    or_null = {key: refs.get(key) for key in ("model_key", "version", "audit_id")}
    return {"seq": seq, "at": at, "kind": kind, **or_null, "payload": payload}


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """``SM3(prev_hash bytes ‖ canonical JSON of body)`` as hex."""
    return sm3(bytes.fromhex(prev_hash) + canonical_json(body))


def merkle_root(leaves: list[str]) -> str:
    """The SM3 Merkle tree hash (RFC 6962 shape) of hex leaf hashes; ``SM3("")`` for none."""
    if not leaves:
        return sm3(b"")

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return hashlib.new("sm3", b"\x00" + items[0]).digest()
        k = 1
        while k * 2 < len(items):
            k *= 2
        return hashlib.new("sm3", b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    return mth([bytes.fromhex(h) for h in leaves]).hex()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _append_locked(conn: Connection, kind: str, payload: dict[str, Any], **refs: Unpack[EntryRefs]) -> int:
    payload = json.loads(canonical_json(payload))  # hash exactly what JSONB will give back
    last = q.last_ledger_entry(conn)
    seq = 1 if last is None else int(last.seq) + 1
    prev = GENESIS if last is None else str(last.entry_hash)
    at = _now()
    if last is not None and at < last.at:  # keep the chain's clock monotonic across hosts
        at = last.at
    at_text = at.isoformat(timespec="microseconds")
    body = entry_body(seq=seq, at=at_text, kind=kind, payload=payload, **refs)
    day = at.astimezone(dt.UTC).date()
    entry = {"seq": seq, "at": at, "day": day, "kind": kind, "payload": payload, **refs}
    q.insert_ledger_entry(conn, **entry, prev_hash=prev, entry_hash=chain_hash(prev, body))
    return seq


def audit_payload(row: Any, prefix: str = "") -> dict[str, Any]:
    """The ledger payload of one audit-log row (every column, timestamps as ISO text)."""

    def col(name: str) -> Any:
        return getattr(row, prefix + name)

    at = col("at")
    return {
        "id": int(col("id")),
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds") if at is not None else None,
        "api_key_id": col("api_key_id"),
        "actor": col("actor"),
        "action": col("action"),
        "target": col("target"),
        "outcome": col("outcome"),
        "client": col("client"),
        "detail": col("detail"),
    }


def _seal_locked(conn: Connection) -> int:
    sealed = 0
    while True:
        rows = q.queued_audit_rows(conn)
        if not rows:
            return sealed
        for r in rows:
            if r.a_id is None:  # deleted before it was chained: chained as missing so the gap stays visible
                payload: dict[str, Any] = {"id": int(r.audit_id), "missing": True}
            else:
                payload = audit_payload(r, "a_")
            _append_locked(conn, "audit", payload, audit_id=int(r.audit_id))
        q.dequeue_audit(conn, [int(r.audit_id) for r in rows])
        sealed += len(rows)


def append(conn: Connection, kind: str, payload: dict[str, Any], **about: Unpack[VersionRef]) -> int:
    """Append one archive event (after chaining any queued audit-log rows) in ``conn``'s transaction; its seq."""
    if kind not in KINDS or kind == "audit":
        raise ValueError(f"unknown ledger event kind {kind!r}")
    q.lock_ledger(conn)
    _seal_locked(conn)
    return _append_locked(conn, kind, payload, **about)


def seal(engine: Engine) -> int:
    """Chain every queued audit-log row into the ledger (in id order); the number chained."""
    with engine.begin() as conn:
        q.lock_ledger(conn)
        return _seal_locked(conn)


@dataclass
class DayRoot:
    """The Merkle root of one UTC day's ledger entries."""

    day: dt.date
    root: str
    entries: int
    first_seq: int | None
    last_seq: int | None
    kept: bool = False
    kept_root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "day": self.day.isoformat(),
            "root": self.root,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "algorithm": "SM3 Merkle tree (RFC 6962 shape; leaf 0x00, node 0x01) over entry hashes",
            "final": self.kept,
            "kept_root": self.kept_root,
        }


def day_root(engine: Engine, day: dt.date) -> DayRoot:
    """The root of ``day`` (UTC), computed from the entries; kept in the database once the day is over."""
    seal(engine)
    with engine.begin() as conn:
        rows = q.ledger_hashes_of_day(conn, day)
        root = merkle_root([r.entry_hash for r in rows])
        first = int(rows[0].seq) if rows else None
        last = int(rows[-1].seq) if rows else None
        result = DayRoot(day, root, len(rows), first, last)
        if rows and day < _now().date():
            kept = q.stored_root(conn, day)
            if kept is None:
                q.insert_root(conn, day=day, root=root, entries=len(rows), first_seq=first, last_seq=last)
                kept_root = root
            else:
                kept_root = kept.root
            result.kept, result.kept_root = True, kept_root
    return result


@dataclass
class ChainReport:
    """What walking the chain found."""

    entries: int = 0
    head: str = GENESIS
    problems: list[dict[str, Any]] = field(default_factory=list)


def walk_chain(conn: Connection) -> ChainReport:
    """Recompute every entry's hash in order; name edited, missing and re-ordered entries and changed roots."""
    report = ChainReport()
    expected_seq = 1
    prev = GENESIS
    day_hashes: dict[dt.date, list[str]] = {}
    for r in q.ledger_entries(conn):
        report.entries += 1
        if r.seq != expected_seq:
            report.problems.append(
                {
                    "kind": "ledger-entry-missing",
                    "what": f"ledger entries #{expected_seq}..#{r.seq - 1}",
                    "detail": f"ledger entries #{expected_seq} to #{r.seq - 1} are missing (deleted rows)",
                }
            )
        body = entry_body(
            seq=int(r.seq),
            at=r.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            kind=r.kind,
            model_key=r.model_key,
            version=r.version,
            audit_id=r.audit_id,
            payload=r.payload,
        )
        recomputed = chain_hash(r.prev_hash, body)
        if recomputed != r.entry_hash:
            report.problems.append(
                {
                    "kind": "ledger-entry-edited",
                    "what": f"ledger entry #{r.seq}",
                    "detail": f"ledger entry #{r.seq} ({r.kind}) was edited: its content no longer gives entry_hash",
                }
            )
        if r.prev_hash != prev and r.seq == expected_seq:
            report.problems.append(
                {
                    "kind": "ledger-chain-broken",
                    "what": f"ledger entry #{r.seq}",
                    "detail": f"ledger entry #{r.seq} does not link to entry #{r.seq - 1} (prev_hash differs)",
                }
            )
        prev = r.entry_hash
        expected_seq = int(r.seq) + 1
        day_hashes.setdefault(r.day, []).append(r.entry_hash)
    report.head = prev
    for kept in q.stored_roots(conn):
        root = merkle_root(day_hashes.get(kept.day, []))
        if root != kept.root:
            report.problems.append(
                {
                    "kind": "ledger-day-changed",
                    "what": f"ledger day {kept.day.isoformat()}",
                    "detail": f"the entries of {kept.day.isoformat()} no longer give the kept Merkle root {kept.root}",
                }
            )
    return report
