"""Verification: re-hash every stored file, walk the ledger, compare the metadata rows with the ledger.

Each problem names what is wrong: ``file-damaged`` (bytes changed), ``file-swapped`` (the bytes of
another archived file), ``file-missing``, ``metadata-row-edited`` / ``-deleted`` / ``-unledgered``,
``audit-row-edited`` / ``-deleted`` / ``-unchained``, ``ledger-entry-edited`` / ``-missing``,
``ledger-chain-broken``, ``ledger-day-changed``, ``orphan``, ``inventory-…``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from cim.archive import ledger, ocfl
from cim.archive.digests import CHUNK, digests_of_stream
from cim.archive.service import Archive
from cim.db import archive as q
from cim.errors import NotFoundError
from cim.storage import StorageError

_ROW_FIELDS = {
    "kind": "kind",
    "object_id": "object_id",
    "file_name": "file_name",
    "storage_key": "storage_key",
    "size_bytes": "size_bytes",
    "sha512": "sha512",
    "sha256": "sha256",
    "sm3": "sm3",
    "media_type": "media_type",
    "author": "author",
    "note": "message",
    "review_id": "review_id",
    "reason": "reason",
}


@dataclass
class VerifyReport:
    """The outcome of ``verify``: counts, timing and every problem found."""

    ok: bool = True
    objects: int = 0
    versions: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    ledger_entries: int = 0
    ledger_head: str = ""
    audit_chained: int = 0
    busy: list[str] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, what: str, detail: str) -> None:
        """Record one problem."""
        self.problems.append({"kind": kind, "what": what, "detail": detail})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "ok": not self.problems,
            "objects": self.objects,
            "versions": self.versions,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.bytes / 1e6 / self.seconds, 1) if self.seconds > 0 else None,
            "ledger_entries": self.ledger_entries,
            "ledger_head": self.ledger_head,
            "audit_chained": self.audit_chained,
            "busy": self.busy,
            "problems": self.problems,
        }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def verify(archive: Archive, model_key: str | None = None, *, repair: bool = False) -> VerifyReport:
    """Check the archive (or one model): files, inventories, metadata rows, audit rows and the ledger."""
    started = time.perf_counter()
    report = VerifyReport()
    report.audit_chained = ledger.seal(archive.engine)
    with archive.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        objects = q.list_objects(conn)
        if model_key is not None:
            objects = [o for o in objects if o.model_key == model_key]
            if not objects:
                raise NotFoundError(f"no archived model {model_key!r}; see `cim archive log`")
        rows = {(r.model_key, int(r.version)): r for r in q.versions_of(conn, model_key)}
        chain = ledger.walk_chain(conn)
        report.ledger_entries, report.ledger_head = chain.entries, chain.head
        report.problems += chain.problems
        _check_rows_against_ledger(conn, rows, model_key, report)
        if model_key is None:
            _check_audit_log(conn, report)
    for obj in objects:
        report.objects += 1
        obj_rows = {v: r for (k, v), r in rows.items() if k == obj.model_key}
        report.versions += len(obj_rows)
        _check_object(archive, obj, obj_rows, report, repair=repair)
    if model_key is None:
        _check_unknown_objects(archive, {o.object_path for o in objects}, report, repair=repair)
    report.seconds = time.perf_counter() - started
    report.ok = not report.problems
    return report


def _check_rows_against_ledger(
    conn: Any, rows: dict[tuple[str, int], Any], model_key: str | None, report: VerifyReport
) -> None:
    seen: set[tuple[str, int]] = set()
    for entry in q.ledger_entries(conn, model_key=model_key):
        if entry.kind not in ("put", "delete"):
            continue
        key = (entry.model_key, int(entry.version))
        seen.add(key)
        what = f"model_version {entry.model_key} v{entry.version}"
        row = rows.get(key)
        if row is None:
            report.add("metadata-row-deleted", what, f"{what} was deleted: ledger entry #{entry.seq} records it")
            continue
        payload = entry.payload
        changed = [name for name, column in _ROW_FIELDS.items() if payload.get(name) != getattr(row, column)]
        if payload.get("created_at") != _iso(row.created_at):
            changed.append("created_at")
        if row.ledger_seq != entry.seq:
            changed.append("ledger_seq")
        if changed:
            report.add(
                "metadata-row-edited",
                what,
                f"{what} was edited: {', '.join(changed)} differ from ledger entry #{entry.seq}",
            )
    for key in sorted(set(rows) - seen):
        what = f"model_version {key[0]} v{key[1]}"
        report.add("metadata-row-unledgered", what, f"{what} has no ledger entry (inserted outside the archive)")


def _check_audit_log(conn: Any, report: VerifyReport) -> None:
    audit = q.audit_rows(conn)
    chained: set[int] = set()
    for entry in q.ledger_entries(conn, kind="audit"):
        audit_id = int(entry.audit_id)
        chained.add(audit_id)
        what = f"audit_log row {audit_id}"
        row = audit.get(audit_id)
        if entry.payload.get("missing"):
            continue
        if row is None:
            report.add("audit-row-deleted", what, f"{what} was deleted: ledger entry #{entry.seq} records it")
        elif ledger.audit_payload(row) != entry.payload:
            fields = sorted(k for k, v in ledger.audit_payload(row).items() if entry.payload.get(k) != v)
            report.add(
                "audit-row-edited",
                what,
                f"{what} was edited: {', '.join(fields)} differ from ledger entry #{entry.seq}",
            )
    queued = q.queued_audit_ids(conn)
    for audit_id in sorted(set(audit) - chained - queued):
        what = f"audit_log row {audit_id}"
        report.add("audit-row-unchained", what, f"{what} is neither in the ledger nor queued for it")


def _version_inventory(
    archive: Archive, prefix: str, n: int, report: VerifyReport, problem: str
) -> dict[str, Any] | None:
    """Version ``n``'s inventory of the object at ``prefix``; ``None``, reported as ``problem``, when it is
    missing or fails its sidecar."""
    inventory = ocfl.read_inventory(archive.storage, f"{prefix}{ocfl.version_dir(n)}/")
    if inventory is None:
        report.add("inventory-damaged", f"{prefix}v{n}/inventory.json", problem)
    return inventory


def _check_object(archive: Archive, obj: Any, rows: dict[int, Any], report: VerifyReport, *, repair: bool) -> None:
    storage = archive.storage
    prefix = f"{ocfl.ROOT}{obj.object_path}/"
    name = obj.model_key
    head = int(obj.head_version)
    with archive.engine.begin() as conn:
        # A put in progress holds the model's lock: its files are not orphans, leave them alone. Under the
        # lock the head is read again (a put may have committed since the snapshot).
        if not q.try_lock_model(conn, name):
            report.busy.append(name)
            return
        fresh = q.object_by_key(conn, name)
        if fresh is None or int(fresh.head_version) != head:
            report.busy.append(name)
            return
        for problem in archive.settle(obj.object_path, head, repair=repair):
            report.add(problem["kind"], problem["what"], f"model {name}: {problem['detail']}")
    if head == 0:
        return
    if max(rows, default=0) != head:
        report.add(
            "metadata-row-deleted" if max(rows, default=0) < head else "metadata-row-edited",
            f"archive_object {name}",
            f"archive_object {name} says head v{head} but its newest model_version row is v{max(rows, default=0)}",
        )
    missing = "is missing or fails its sidecar"
    inv = _version_inventory(archive, prefix, head, report, f"model {name}: the head version's inventory {missing}")
    if inv is None:
        return
    root_inv = ocfl.read_inventory(storage, prefix)
    if root_inv is not None and root_inv.get("head") == inv["head"] and root_inv != inv:
        report.add(
            "inventory-damaged",
            f"{prefix}inventory.json",
            f"model {name}: the root inventory differs from v{head}/inventory.json",
        )
    for n in range(1, head + 1):
        _version_inventory(archive, prefix, n, report, f"{prefix}v{n}/inventory.json {missing}")
    digest_of_path = {p: d for d, paths in inv["manifest"].items() for p in paths}
    sha256_of_path = {p: d for d, paths in inv.get("fixity", {}).get("sha256", {}).items() for p in paths}
    sm3_of_digest = {r.sha512: r.sm3 for r in rows.values() if r.sha512}
    for n, row in sorted(rows.items()):
        vd = ocfl.version_dir(n)
        state = inv["versions"].get(vd, {}).get("state")
        if state is None:
            report.add("inventory-damaged", f"{prefix}inventory.json", f"model {name}: inventory has no {vd}")
            continue
        expected = {row.sha512: [row.file_name]} if row.kind == "version" else {}
        if state != expected:
            report.add(
                "metadata-row-edited",
                f"model_version {name} v{n}",
                f"model_version {name} v{n} does not match {vd} of the OCFL inventory (digest or file name)",
            )
    for path, digest in sorted(digest_of_path.items()):
        key = prefix + path
        try:
            got = digests_of_stream(storage.stream(key, chunk_size=CHUNK))
        except StorageError:
            report.add("file-missing", key, f"{key} is missing")
            continue
        report.files += 1
        report.bytes += got.size
        if got.sha512 != digest:
            other = [p for p, d in digest_of_path.items() if d == got.sha512 and p != path]
            if other:
                report.add("file-swapped", key, f"{key} holds the bytes of {prefix}{other[0]} (swapped)")
            else:
                report.add("file-damaged", key, f"{key} is damaged: its sha512 no longer matches the inventory")
            continue
        if sha256_of_path.get(path) != got.sha256:
            report.add("file-damaged", key, f"{key}: sha256 differs from the inventory's fixity block")
        if sm3_of_digest.get(digest) not in (None, got.sm3):
            report.add("metadata-row-edited", key, f"{key}: SM3 differs from the model_version row")


def _check_unknown_objects(archive: Archive, known: set[str], report: VerifyReport, *, repair: bool) -> None:
    found: set[str] = set()
    temporaries = archive.storage.temporaries(ocfl.ROOT)
    for key in [*archive.storage.list(ocfl.ROOT), *temporaries]:
        rel = key[len(ocfl.ROOT) :]
        parts = rel.split("/")
        if len(parts) > 4 and len(parts[0]) == 3 and parts[0] != "ext":
            found.add("/".join(parts[:4]))
    for path in sorted(found - known):
        what = f"{ocfl.ROOT}{path}/"
        owner = _model_key_of(path)
        with archive.engine.begin() as conn:
            if owner is not None and (not q.try_lock_model(conn, owner) or q.object_by_key(conn, owner) is not None):
                report.busy.append(owner)  # the first put of this model is writing, or has just committed
                continue
            report.add("orphan", what, f"{what}: an OCFL object that no archived model owns (interrupted first put)")
            if repair:
                for stale in archive.storage.list(what):
                    archive.storage.delete(stale)
                for stale in (t for t in temporaries if t.startswith(what)):
                    archive.storage.remove_temporary(stale)


def _model_key_of(object_path: str) -> str | None:
    """The model key of an object folder (extension 0003 encodes the object id in the last segment)."""
    from urllib.parse import unquote

    object_id = unquote(object_path.rsplit("/", 1)[-1])
    prefix = ocfl.object_id_of("")
    return object_id[len(prefix) :] if object_id.startswith(prefix) else None
