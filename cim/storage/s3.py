"""The S3-compatible backend (AWS S3, MinIO, Ceph RGW, Aliyun OSS) through boto3.

Uploads stream in multipart parts (memory ≈ part size × 2); reads use ranged GETs. Error messages name
the bucket, key and S3 error code, never credentials.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cim.settings import Settings
from cim.storage.base import CHUNK, MissingObjectError, Readable, Storage, StorageError, check_key
from cim.storage.registry import register_backend
from cim.storage.settings import StorageSettings

_MISSING = {"NoSuchKey", "404", "NotFound"}
_CHATTY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def _quiet_sdk_logs() -> None:
    # botocore's DEBUG records carry signed request headers (the access key id); never emit them, even
    # under `cim -vv`.
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


class S3Storage(Storage):
    """Keys in ``bucket`` under ``prefix``."""

    name = "s3"

    def __init__(self, settings: StorageSettings) -> None:
        import boto3
        from botocore.config import Config

        if not settings.bucket:
            raise StorageError("the s3 storage backend needs CIM_STORAGE_BUCKET")
        _quiet_sdk_logs()
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.endpoint = settings.endpoint
        self._secrets = [
            s.get_secret_value()
            for s in (settings.access_key_id, settings.secret_access_key, settings.session_token)
            if s is not None and s.get_secret_value()
        ]
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key_id.get_secret_value() if settings.access_key_id else None,
            aws_secret_access_key=settings.secret_access_key.get_secret_value() if settings.secret_access_key else None,
            aws_session_token=settings.session_token.get_secret_value() if settings.session_token else None,
            region_name=settings.region,
        )
        self.client: Any = session.client(
            "s3",
            endpoint_url=settings.endpoint,
            verify=settings.verify_tls,
            config=Config(
                s3={"addressing_style": settings.addressing_style},
                retries={"max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",
            ),
        )
        self.part_size = settings.part_size_mib * 1024 * 1024
        self.concurrency = settings.concurrency
        self.download_concurrency = settings.download_concurrency

    def describe(self) -> str:
        """``s3://bucket/prefix`` (and the endpoint), without credentials."""
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _error(self, action: str, key: str, exc: Exception) -> StorageError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        reason = f"S3 error {code}" if code else type(exc).__name__
        detail = str(exc)
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        if code in _MISSING:
            return MissingObjectError(f"{key!r} does not exist in {self.describe()}")
        return StorageError(f"{action} {key!r} in {self.describe()} failed: {reason} ({detail[:200]})")

    def put(self, key: str, data: Readable | bytes, *, overwrite: bool = True) -> int:
        """Upload ``data``: one PUT when it fits in a part, else a multipart upload, parts sent concurrently.

        The source is read in order on this thread while up to ``concurrency`` parts upload on worker
        threads, so memory stays about ``(concurrency + 1) × part size`` whatever the size; a failed or
        interrupted multipart upload is aborted, leaving no object (a killed process leaves an upload that
        ``temporaries`` lists and ``remove_temporary`` aborts).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if not overwrite and self.exists(key):
            raise StorageError(f"{key!r} already exists in {self.describe()} and may not be overwritten")
        full_key = self._key(key)
        reader: Readable = _BytesReader(data) if isinstance(data, bytes | bytearray) else data
        upload_id = None
        total = 0
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="s3-part")
        try:
            first = _read_full(reader, self.part_size)
            total = len(first)
            if len(first) < self.part_size:
                self.client.put_object(Bucket=self.bucket, Key=full_key, Body=first)
                return total
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full_key)["UploadId"]

            def send(number: int, body: bytes) -> dict[str, Any]:
                answer = self.client.upload_part(
                    Bucket=self.bucket, Key=full_key, UploadId=upload_id, PartNumber=number, Body=body
                )
                return {"PartNumber": number, "ETag": answer["ETag"]}

            parts: list[dict[str, Any]] = []
            pending: deque[Future[dict[str, Any]]] = deque()
            chunk = first
            number = 1
            while chunk:
                if len(pending) >= self.concurrency:
                    parts.append(pending.popleft().result())
                pending.append(pool.submit(send, number, chunk))
                chunk = _read_full(reader, self.part_size)
                total += len(chunk)
                number += 1
            parts += [f.result() for f in pending]
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            upload_id = None
        except (BotoCoreError, ClientError) as exc:
            raise self._error("uploading", key, exc) from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if upload_id is not None:
                with contextlib.suppress(BotoCoreError, ClientError):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
        return total

    def stream(self, key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Ranged GETs: one streamed GET; or, for bulk reads (``chunk_size`` above :data:`CHUNK`: get, verify)
        when ``download_concurrency`` > 1, ranges of ``chunk_size`` fetched that many at a time, in order."""
        from botocore.exceptions import BotoCoreError, ClientError

        if end is not None and end <= start:
            return iter(())
        if chunk_size > CHUNK and self.download_concurrency > 1:
            end = self.size(key) if end is None else end
            if end - start > chunk_size:
                return self._parallel(key, start, end, chunk_size)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())
            raise self._error("reading", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("reading", key, exc) from exc
        return self._chunks(body, key, chunk_size)

    def _parallel(self, key: str, start: int, end: int, step: int) -> Iterator[bytes]:
        """``[start, end)`` as chunks of ``step`` bytes, in order, ``download_concurrency`` ranged GETs in flight."""
        from botocore.exceptions import BotoCoreError, ClientError

        def fetch(a: int, b: int) -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={a}-{b - 1}")["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        pool = ThreadPoolExecutor(self.download_concurrency, thread_name_prefix="s3-range")
        pending: deque[Future[bytes]] = deque()
        at = start
        try:
            while pending or at < end:
                while at < end and len(pending) < self.download_concurrency:
                    pending.append(pool.submit(fetch, at, min(end, at + step)))
                    at = min(end, at + step)
                yield pending.popleft().result()
        except (BotoCoreError, ClientError) as exc:
            raise self._error("reading", key, exc) from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _chunks(self, body: Any, key: str, chunk_size: int) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError

        try:
            while True:
                chunk = body.read(chunk_size)
                if not chunk:
                    return
                yield chunk
        except BotoCoreError as exc:
            raise self._error("reading", key, exc) from exc
        finally:
            body.close()

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix`` (S3 lists in lexical order)."""
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except (BotoCoreError, ClientError) as exc:
            raise self._error("listing", prefix or "/", exc) from exc

    def delete(self, key: str) -> None:
        """Delete the object."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._error("deleting", key, exc) from exc

    def size(self, key: str) -> int:
        """``ContentLength`` from a HEAD request."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except (BotoCoreError, ClientError) as exc:
            raise self._error("reading the size of", key, exc) from exc

    def _uploads(self, prefix: str) -> Iterator[dict[str, Any]]:
        """The unfinished multipart uploads under ``prefix`` (every page)."""
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                yield from page.get("Uploads", [])
        except (BotoCoreError, ClientError) as exc:
            raise self._error("listing uploads under", prefix or "/", exc) from exc

    def temporaries(self, prefix: str = "") -> builtins.list[str]:
        """Keys of multipart uploads that were started under ``prefix`` and never completed (sorted, once each)."""
        return sorted({u["Key"][len(self.prefix) :] for u in self._uploads(prefix)})

    def remove_temporary(self, key: str) -> int:
        """Abort every unfinished multipart upload of ``key`` (its stored parts are freed); how many."""
        from botocore.exceptions import BotoCoreError, ClientError

        full_key = self._key(key)
        aborted = 0
        for upload in self._uploads(key):
            if upload["Key"] != full_key:
                continue
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload["UploadId"])
            except (BotoCoreError, ClientError) as exc:
                raise self._error("aborting the upload of", key, exc) from exc
            aborted += 1
        return aborted


class _BytesReader:
    """``read(size)`` over bytes in memory."""

    def __init__(self, data: bytes | bytearray) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._at + size
        out = bytes(self._view[self._at : end])
        self._at += len(out)
        return out


def _read_full(reader: Readable, size: int) -> bytes:
    """Exactly ``size`` bytes (fewer only at the end of the stream)."""
    parts = []
    wanted = size
    while wanted > 0:
        chunk = reader.read(wanted)
        if not chunk:
            break
        parts.append(chunk)
        wanted -= len(chunk)
    return b"".join(parts)


@register_backend("s3")
def _s3(storage_settings: StorageSettings, settings: Settings) -> Storage:
    return S3Storage(storage_settings)
