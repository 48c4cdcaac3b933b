"""Put, get, delete and list archived model versions: OCFL objects on a storage backend, rows in PostGIS.

A put holds its model's lock for the whole write: concurrent puts of one model get distinct, ordered
versions. The order of writes makes a put atomic even under ``kill -9``:

1. content and ``vN/inventory.json`` are written (each atomically) under the object;
2. the object's root ``inventory.json`` is replaced by ``vN``'s (still under the lock);
3. the ``model_version`` row, the object's head and the ledger entry commit in one transaction.

Killed before 3 commits, ``vN`` exists only in storage: an orphan (never a version) that ``verify``
reports and the next write of the model (or ``verify --repair``) removes, putting back the committed
head's root inventory. Once 3 has committed the version is whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import signal
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine

from cim.archive import ledger, ocfl
from cim.archive.digests import CHUNK, Digests, HashingReader, ParallelHasher, copy_and_hash
from cim.archive.formats import (
    HEAD_BYTES,
    TooLargeError,
    check_file_name,
    check_ifczip,
    check_model_key,
    check_spf_head,
    format_of,
)
from cim.archive.settings import ArchiveSettings
from cim.db import archive as q
from cim.errors import ArchiveError, NotFoundError
from cim.settings import Settings
from cim.storage import Storage, StorageError, open_storage
from cim.storage.settings import StorageSettings

CRASH_ENV = "CIM_ARCHIVE_CRASH_AT"
"""Fault injection for the crash tests: the process kills itself (SIGKILL) at the named step."""


MID_CONTENT_BYTES = 6 * 1024 * 1024
"""``CIM_ARCHIVE_CRASH_AT=mid-content`` kills a put once this much content has been read (an S3 put with
5 MiB parts has started its multipart upload by then; a local put has a partial temporary file)."""


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _mid_content_crash(size: int) -> None:
    if size >= MID_CONTENT_BYTES:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class VersionInfo:
    """One archived version (or tombstone) as the archive reports it."""

    model_key: str
    version: int
    kind: str
    file_name: str | None
    size_bytes: int | None
    sha512: str | None
    sha256: str | None
    sm3: str | None
    media_type: str | None
    author: str | None
    note: str | None
    review_id: int | None
    building_id: int | None
    created_at: str
    object_id: str | None
    storage_key: str | None
    ledger_seq: int | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @property
    def stored_key(self) -> str:
        """The storage key of the version's bytes (a deletion tombstone has none: :class:`ArchiveError`)."""
        if self.storage_key is None:
            raise ArchiveError(f"version {self.version} of {self.model_key!r} has no stored bytes ({self.kind})")
        return self.storage_key


def version_info(row: Any) -> VersionInfo:
    """A :class:`VersionInfo` from a ``model_version`` row."""
    return VersionInfo(
        model_key=row.model_key,
        version=int(row.version),
        kind=row.kind,
        file_name=row.file_name,
        size_bytes=row.size_bytes,
        sha512=row.sha512,
        sha256=row.sha256,
        sm3=row.sm3,
        media_type=row.media_type,
        author=row.author,
        note=row.message,
        review_id=row.review_id,
        building_id=row.building_id,
        created_at=row.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        object_id=row.object_id,
        storage_key=row.storage_key,
        ledger_seq=row.ledger_seq,
        reason=row.reason,
    )


def default_author() -> str:
    """The operating-system user running the command (the CLI's author)."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _user_address(author: str) -> str:
    return f"urn:cim:user:{author.replace(' ', '_')}" if ":" not in author else author


class Archive:
    """The archive of one deployment: a database engine and a storage backend."""

    def __init__(self, engine: Engine, storage: Storage, settings: ArchiveSettings | None = None) -> None:
        self.engine = engine
        self.storage = storage
        self.settings = settings or ArchiveSettings()

    @classmethod
    def open(
        cls,
        engine: Engine,
        settings: Settings,
        *,
        storage_settings: StorageSettings | None = None,
        archive_settings: ArchiveSettings | None = None,
    ) -> Archive:
        """The archive on the configured storage backend (``CIM_STORAGE_*``)."""
        return cls(engine, open_storage(settings, storage_settings), archive_settings)

    # ----------------------------------------------------------------------------------------- objects

    def _object_prefix(self, object_path: str) -> str:
        return f"{ocfl.ROOT}{object_path}/"

    def settle(self, object_path: str, head: int, *, repair: bool) -> list[dict[str, Any]]:
        """Orphans and a lagging root inventory of one object; removed / rolled forward when ``repair``."""
        prefix = self._object_prefix(object_path)
        problems: list[dict[str, Any]] = []
        keys = list(self.storage.list(prefix))
        for key in self.storage.temporaries(prefix):
            what = "an unfinished S3 multipart upload" if self.storage.name == "s3" else "a partial temporary file"
            detail = f"{key}: {what} of an interrupted put" + (" (aborted)" if repair else "")
            problems.append({"kind": "orphan", "what": key, "detail": detail})
            if repair:
                self.storage.remove_temporary(key)
        orphan_versions: set[str] = set()
        for key in keys:
            rel = key[len(prefix) :]
            first = rel.split("/", 1)[0]
            if head == 0 or (first.startswith("v") and first[1:].isdigit() and int(first[1:]) > head):
                orphan_versions.add(first if head else "(object)")
                if repair:
                    self.storage.delete(key)
        for name in sorted(orphan_versions):
            what = f"{prefix}{name}" if name != "(object)" else prefix
            problems.append(
                {"kind": "orphan", "what": what, "detail": f"{what}: written by a put that never committed"}
            )
        if head > 0:
            root_inv = ocfl.read_inventory(self.storage, prefix)
            if root_inv is None or root_inv.get("head") != ocfl.version_dir(head):
                problems.append(
                    {
                        "kind": "inventory-lagging",
                        "what": f"{prefix}inventory.json",
                        "detail": f"{prefix}inventory.json is not the committed head v{head}'s"
                        + (" (rolled forward)" if repair else ""),
                    }
                )
                if repair:
                    head_inv = ocfl.read_inventory(self.storage, f"{prefix}{ocfl.version_dir(head)}/")
                    if head_inv is None:
                        raise ArchiveError(f"the inventory of {prefix}v{head} is missing or damaged; run verify")
                    ocfl.write_inventory(self.storage, prefix, head_inv)
        return problems

    def _begin_write(self, conn: Connection, model_key: str, building_id: int | None) -> Any:
        q.lock_model(conn, model_key)
        obj = q.object_by_key(conn, model_key)
        if obj is None:
            object_id = ocfl.object_id_of(model_key)
            q.insert_object(
                conn,
                model_key=model_key,
                object_id=object_id,
                object_path=ocfl.object_path_of(object_id),
                building_id=building_id,
            )
            obj = q.object_by_key(conn, model_key)
            assert obj is not None
        ocfl.ensure_root(self.storage)
        self.settle(obj.object_path, int(obj.head_version), repair=True)
        return obj

    def _inventory(self, obj: Any) -> dict[str, Any]:
        if obj.head_version == 0:
            return ocfl.new_inventory(obj.object_id)
        inv = ocfl.read_inventory(self.storage, self._object_prefix(obj.object_path))
        if inv is None:
            raise ArchiveError(
                f"the inventory of model {obj.model_key!r} is missing or damaged; run `cim archive verify`"
            )
        return inv

    # --------------------------------------------------------------------------------------------- put

    def put(
        self,
        source: Path | IO[bytes],
        *,
        model_key: str,
        file_name: str | None = None,
        author: str | None = None,
        note: str | None = None,
        review_id: int | None = None,
        building_id: int | None = None,
        client: str | None = None,
    ) -> VersionInfo:
        """Archive ``source`` as the next version of ``model_key``; returns the new version.

        ``source`` is a path or a readable binary stream (an ``.ifczip`` stream must be seekable). The
        file is refused before anything is stored when its name, format or size is wrong; a storage
        failure (disk full…) stores nothing.
        """
        check_model_key(model_key)
        if file_name is None:
            if not isinstance(source, Path):
                raise ArchiveError("a file name is needed when archiving a stream")
            file_name = source.name
        check_file_name(file_name)
        fmt = format_of(file_name)
        author = author or default_author()
        if isinstance(source, Path):
            if not source.is_file():
                raise NotFoundError(f"{source} does not exist or is not a file")
            if source.stat().st_size > self.settings.max_bytes:
                raise TooLargeError(
                    f"{file_name!r} has {source.stat().st_size} bytes; the archive's limit is {self.settings.max_bytes}"
                )
            with source.open("rb") as fh:
                return self._put_stream(
                    fh, model_key, file_name, fmt.suffix, fmt.media_type, author, note, review_id, building_id, client
                )
        return self._put_stream(
            source, model_key, file_name, fmt.suffix, fmt.media_type, author, note, review_id, building_id, client
        )

    def _put_stream(
        self,
        fh: IO[bytes],
        model_key: str,
        file_name: str,
        suffix: str,
        media_type: str,
        author: str,
        note: str | None,
        review_id: int | None,
        building_id: int | None,
        client: str | None,
    ) -> VersionInfo:
        if suffix == ".ifczip":
            schema = check_ifczip(fh, file_name, self.settings)
            head = b""
        else:
            head = fh.read(HEAD_BYTES)
            schema = check_spf_head(head, file_name)
        if review_id is not None:
            with self.engine.connect() as conn:
                review = q.review_row(conn, review_id)
            if review is None:
                raise NotFoundError(f"no review with id {review_id}; see the review's report for its id")
            building_id = building_id if building_id is not None else review.building_id
        written: list[str] = []
        root_written = False
        previous: dict[str, Any] | None = None
        on_read = _mid_content_crash if os.environ.get(CRASH_ENV) == "mid-content" else None
        reader = HashingReader(fh, limit=self.settings.max_bytes, name=file_name, head=head, on_read=on_read)
        try:
            with self.engine.begin() as conn:
                obj = self._begin_write(conn, model_key, building_id)
                prefix = self._object_prefix(obj.object_path)
                inv = previous = self._inventory(obj)
                n = int(obj.head_version) + 1
                vd = ocfl.version_dir(n)
                if n == 1:
                    written.append(prefix + ocfl.OBJECT_DECLARATION)
                    self.storage.put(prefix + ocfl.OBJECT_DECLARATION, b"ocfl_object_1.1\n")
                content_key = f"{prefix}{vd}/content/{file_name}"
                written.append(content_key)
                self.storage.put(content_key, reader, overwrite=False)
                digests = reader.digests()
                _crash_point("after-content")
                created = _now()
                inv, content_path = ocfl.add_version(
                    inv,
                    n=n,
                    created=created.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    message=note or f"archived {file_name}",
                    user_name=author,
                    user_address=_user_address(author),
                    file_name=file_name,
                    sha512=digests.sha512,
                    sha256=digests.sha256,
                )
                if content_path is None:  # the same bytes are already in the object: store them once
                    self.storage.delete(content_key)
                    written.remove(content_key)
                    content_key = prefix + inv["manifest"][digests.sha512][0]
                written += [f"{prefix}{vd}/inventory.json", f"{prefix}{vd}/inventory.json.sha512"]
                ocfl.write_inventory(self.storage, f"{prefix}{vd}/", inv)
                _crash_point("after-version-inventory")
                root_written = True  # still under the model's lock: no other writer touches the root
                ocfl.write_inventory(self.storage, prefix, inv)
                _crash_point("after-root-inventory")
                info = self._commit_version(
                    conn,
                    obj,
                    n,
                    created,
                    digests,
                    file_name=file_name,
                    storage_key=content_key,
                    media_type=media_type,
                    author=author,
                    note=note,
                    review_id=review_id,
                    building_id=building_id,
                    schema=schema,
                    client=client,
                )
                _crash_point("before-commit")
        except BaseException:
            reader.close()
            with contextlib.suppress(StorageError):
                if root_written and previous is not None and previous["versions"]:
                    ocfl.write_inventory(self.storage, prefix, previous)
                elif root_written:
                    written += [prefix + "inventory.json", prefix + "inventory.json.sha512"]
            for key in written:
                with contextlib.suppress(StorageError):
                    self.storage.delete(key)
            raise
        _crash_point("after-commit")
        return info

    def _commit_version(
        self,
        conn: Connection,
        obj: Any,
        n: int,
        created: dt.datetime,
        digests: Digests | None,
        *,
        file_name: str | None,
        storage_key: str | None,
        media_type: str | None,
        author: str,
        note: str | None,
        review_id: int | None,
        building_id: int | None,
        schema: str | None = None,
        reason: str | None = None,
        client: str | None = None,
    ) -> VersionInfo:
        kind = "version" if digests is not None else "tombstone"
        created_text = created.isoformat(timespec="microseconds")
        record = {
            "model_key": obj.model_key,
            "version": n,
            "kind": kind,
            "object_id": obj.object_id,
            "file_name": file_name,
            "storage_key": storage_key,
            "size_bytes": digests.size if digests else None,
            "sha512": digests.sha512 if digests else None,
            "sha256": digests.sha256 if digests else None,
            "sm3": digests.sm3 if digests else None,
            "media_type": media_type,
            "author": author,
            "note": note,
            "review_id": review_id,
            "reason": reason,
            "created_at": created_text,
        }
        payload = dict(record, schema=schema, client=client, storage=self.storage.describe())
        seq = ledger.append(conn, "put" if kind == "version" else "delete", payload, model_key=obj.model_key, version=n)
        q.insert_version(
            conn,
            model_key=obj.model_key,
            version=n,
            kind=kind,
            object_id=obj.object_id,
            file_name=file_name,
            storage_key=storage_key,
            sha256=record["sha256"],
            sha512=record["sha512"],
            sm3=record["sm3"],
            size_bytes=record["size_bytes"],
            media_type=media_type,
            author=author,
            message=note,
            review_id=review_id,
            reason=reason,
            building_id=building_id,
            ledger_seq=seq,
            created_at=created,
            summary={"schema": schema} if schema else {},
        )
        q.set_object_head(conn, obj.model_key, n, deleted=kind == "tombstone", building_id=building_id)
        row = q.version_row(conn, obj.model_key, n)
        return version_info(row)

    # ------------------------------------------------------------------------------------------ delete

    def delete(
        self, model_key: str, *, reason: str, author: str | None = None, client: str | None = None
    ) -> VersionInfo:
        """Withdraw a model: append a tombstone version (empty OCFL state) with the reason.

        Earlier versions stay in the object (preservation never rewrites a version) and remain readable
        by number; the model's latest version is the tombstone.
        """
        check_model_key(model_key)
        if not reason or not reason.strip():
            raise ArchiveError("deleting needs a reason (--reason)")
        author = author or default_author()
        with self.engine.begin() as conn:
            q.lock_model(conn, model_key)
            obj = q.object_by_key(conn, model_key)
            if obj is None or obj.head_version == 0:
                raise NotFoundError(f"no archived model {model_key!r}; see `cim archive log`")
            if obj.deleted_at is not None:
                raise ArchiveError(f"model {model_key!r} is already deleted")
            self.settle(obj.object_path, int(obj.head_version), repair=True)
            prefix = self._object_prefix(obj.object_path)
            inv = self._inventory(obj)
            n = int(obj.head_version) + 1
            created = _now()
            inv, _ = ocfl.add_version(
                inv,
                n=n,
                created=created.isoformat(timespec="seconds").replace("+00:00", "Z"),
                message=f"deleted: {reason}",
                user_name=author,
                user_address=_user_address(author),
                file_name=None,
            )
            ocfl.write_inventory(self.storage, f"{prefix}{ocfl.version_dir(n)}/", inv)
            info = self._commit_version(
                conn,
                obj,
                n,
                created,
                None,
                file_name=None,
                storage_key=None,
                media_type=None,
                author=author,
                note=None,
                review_id=None,
                building_id=None,
                reason=reason.strip(),
                client=client,
            )
            ocfl.write_inventory(self.storage, prefix, inv)  # under the lock; a crash before commit is rolled back
        return info

    # -------------------------------------------------------------------------------------- read side

    def versions(self, model_key: str | None = None) -> list[VersionInfo]:
        """The history of one model (or of every model), oldest first; unknown key → NotFoundError."""
        with self.engine.connect() as conn:
            if model_key is not None and q.object_by_key(conn, model_key) is None:
                raise NotFoundError(f"no archived model {model_key!r}; see `cim archive log`")
            return [version_info(r) for r in q.versions_of(conn, model_key)]

    def models(self) -> list[dict[str, Any]]:
        """Every archived model with its head version."""
        with self.engine.connect() as conn:
            return [
                {
                    "model_key": r.model_key,
                    "object_id": r.object_id,
                    "head_version": r.head_version,
                    "deleted": r.deleted_at is not None,
                    "building_id": r.building_id,
                    "created_at": r.created_at.isoformat(),
                }
                for r in q.list_objects(conn)
            ]

    def version(self, model_key: str, version: int | None = None) -> VersionInfo:
        """One version (default: the latest file version); tombstones and unknown numbers are errors."""
        check_model_key(model_key)
        with self.engine.connect() as conn:
            obj = q.object_by_key(conn, model_key)
            if obj is None or obj.head_version == 0:
                raise NotFoundError(f"no archived model {model_key!r}; see `cim archive log`")
            if version is None:
                if obj.deleted_at is not None:
                    raise NotFoundError(
                        f"model {model_key!r} was deleted (v{obj.head_version}); ask for an earlier --version"
                    )
                version = int(obj.head_version)
            row = q.version_row(conn, model_key, version)
        if row is None:
            raise NotFoundError(f"model {model_key!r} has no version {version} (latest: v{obj.head_version})")
        info = version_info(row)
        if info.kind == "tombstone":
            raise NotFoundError(f"version {version} of {model_key!r} is the deletion tombstone: {info.reason}")
        return info

    def open_version(self, info: VersionInfo, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The stored bytes ``[start, end)`` of a version, streamed."""
        return self.storage.stream(info.stored_key, start, end)

    def record_get(
        self, info: VersionInfo, *, actor: str, client: str | None = None, byte_range: tuple[int, int] | None = None
    ) -> int:
        """Append a ``get`` event to the ledger; its seq."""
        with self.engine.begin() as conn:
            return ledger.append(
                conn,
                "get",
                {
                    "actor": actor,
                    "client": client,
                    "sha512": info.sha512,
                    "range": list(byte_range) if byte_range else None,
                },
                model_key=info.model_key,
                version=info.version,
            )

    def record_decision(
        self,
        model_key: str,
        version: int | None,
        *,
        decision: str,
        actor: str,
        note: str | None = None,
        review_id: int | None = None,
    ) -> int:
        """Append a ``decision`` event (a review approval, a retention decision…) to the ledger; its seq."""
        with self.engine.begin() as conn:
            return ledger.append(
                conn,
                "decision",
                {"decision": decision, "actor": actor, "note": note, "review_id": review_id},
                model_key=model_key,
                version=version,
            )

    def _copy_version(self, info: VersionInfo, out: IO[bytes]) -> tuple[str, str, tuple[str, int]]:
        """Write a version's bytes to ``out`` and digest them: (algorithm, stored digest, (digest, size)).

        The check uses the sha256 fixity digest (twice as fast as sha512 here, with the CPU's SHA
        extensions) when the row has it. A local file is copied in the kernel beside the digest thread;
        other backends stream through a digest thread.
        """
        algorithm, expected = ("sha256", info.sha256) if info.sha256 else ("sha512", info.sha512)
        assert expected is not None
        source = self.storage.local_file(info.stored_key)
        if source is not None:
            return algorithm, expected, copy_and_hash(source, out, algorithm)
        hasher = ParallelHasher((algorithm,))  # hashes in its thread while this one writes
        try:
            for chunk in self.storage.stream(info.stored_key, chunk_size=CHUNK):
                hasher.update(chunk)
                out.write(chunk)
            return algorithm, expected, (hasher.hexdigests()[algorithm], hasher.size)
        finally:
            hasher.close()

    def get_to(self, model_key: str, version: int | None, target: Path, *, actor: str | None = None) -> VersionInfo:
        """Write a version to ``target`` (through a temporary file, digests checked); audited in the ledger."""
        info = self.version(model_key, version)
        target = target.expanduser()
        if target.is_dir():
            raise ArchiveError(f"{target} is a folder; give a file name with -o")
        temp = target.with_name(f".{target.name}.part")
        try:
            with temp.open("wb") as out:
                algorithm, expected, (digest, size) = self._copy_version(info, out)
            if (digest, size) != (expected, info.size_bytes):
                raise ArchiveError(
                    f"the stored file of {model_key!r} v{info.version} is damaged ({algorithm} mismatch); "
                    "run `cim archive verify` and restore it from a replica"
                )
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)
        self.record_get(info, actor=actor or default_author(), client="cli")
        return info
