"""``/tiles/{tileset}/{path}``: the 3D Tiles and terrain files of ``data_path/tiles``, served fast and safely.

A lean ASGI app (no FastAPI dependency machinery on this hot path): per-worker cache of resolved paths,
``stat`` results (re-checked at most once a second) and, for small files, their bytes and gzip variant.
Conditional GET (ETag / If-None-Match, Last-Modified / If-Modified-Since → 304), single byte
ranges (206/416), gzip of JSON and quantized-mesh when the client accepts it, ``Cache-Control``.
The ETag is nginx's (``"<mtime seconds hex>-<size hex>"``, made weak on gzipped answers), so caches see
the same validators whether a file comes from the app or from the nginx front (``cim.front``);
``tiles.output.IncrementalWriter`` gives every rewritten file a new mtime second or size.
No request can leave the tiles folder: names are checked, the path is normalised, and the resolved real
path (symlinks followed) must stay inside the tileset's real folder.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import posixpath
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from cim.api.errors import TooManyRequestsError
from cim.errors import AuthError, TilesError
from cim.settings import Settings
from cim.storage.base import Storage, StorageError
from cim.storage.published import PublishedTilesSettings, object_key, read_index

log = logging.getLogger("cim.api")

CONTENT_TYPES: dict[str, str] = {
    ".json": "application/json",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".b3dm": "application/octet-stream",
    ".i3dm": "application/octet-stream",
    ".pnts": "application/octet-stream",
    ".cmpt": "application/octet-stream",
    ".subtree": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".terrain": "application/vnd.quantized-mesh",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".ktx2": "image/ktx2",
}
_Q = re.compile(r"^q=([0-9.]+)$", re.ASCII)
_RANGE = re.compile(r"^([0-9]*)-([0-9]*)$", re.ASCII)


def accepts_gzip(header: bytes | None) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (``gzip;q=0`` and ``*;q=0`` refuse it; RFC 9110 12.5.3)."""
    if not header:
        return False
    gzip_q: float | None = None
    star_q: float | None = None
    for item in header.decode("latin-1").split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            m = _Q.match(param.lower().replace(" ", ""))
            if m:
                try:
                    q = float(m.group(1))
                except ValueError:
                    q = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


def canonical_tile_path(rel: str) -> bool:
    """Whether ``rel`` (``<tileset>/<path>``) is in its one canonical spelling: no empty, ``.`` or ``..``
    segment, no trailing slash. Only canonical paths are served, so aliases never fill the cache."""
    return bool(rel) and all(part not in ("", ".", "..") for part in rel.split("/"))


GZIP_TYPES = frozenset({"application/json", "application/vnd.quantized-mesh", "model/gltf+json"})
STAT_TTL_SECONDS = 1.0
MEMORY_FILE_LIMIT = 1 << 20
CHUNK = 1 << 16
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
CORS_EXPOSE = "ETag, Content-Crs, Content-Range, Content-Length, Location"
"""The response headers a cross-origin viewer may read (``Access-Control-Expose-Headers``)."""
CHALLENGE = (b"www-authenticate", b'ApiKey header="X-API-Key"')
FRONT_AUTH = ".front-auth"
"""``/tiles/.front-auth``: the key check of the nginx front's ``auth_request`` (no tileset name starts with
a dot). 204 when the request's key admits it; else 401 with ``X-Cim-Status`` (401 or 429), ``X-Cim-Detail``
(the detail as the inside of a JSON string) and ``Retry-After``, from which nginx writes the app's answer."""


@dataclass
class TileFile:
    """A resolved tile file and everything needed to answer for it (bytes only when small)."""

    path: str
    size: int
    mtime: float
    ino: int
    content_type: str
    etag: str
    last_modified: str
    checked_at: float
    body: bytes | None = None
    gzip_body: bytes | None = None
    published_sha: str = ""
    """Set for a file of a tileset published to a storage backend (``path`` is then its object key)."""
    gzip_etag: str = ""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _json_error(status: int, title: str, detail: str) -> tuple[int, bytes]:
    code = title.lower().replace(" ", "-")
    return status, json.dumps({"code": code, "title": title, "detail": detail}).encode()


def file_etag(mtime: float, size: int) -> str:
    """The ETag of a tile file of ``size`` bytes last modified at ``mtime`` (seconds since the epoch).

    nginx's form (``"<whole seconds hex>-<size hex>"``), so the app and the nginx front agree.

    >>> file_etag(1700000000.75, 4096)
    '"6553f100-1000"'
    """
    return f'"{int(mtime):x}-{size:x}"'


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2, as If-None-Match asks): ``W/`` is ignored on both sides."""
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in header.split(","))


def _parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """``(start, end)`` inclusive for one satisfiable range; ``None`` to ignore; ``False`` if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    m = _RANGE.match(spec.strip())
    if m is None:  # int() would also take "1_0", " 1" and non-ASCII digits
        return None
    first, last = m.groups()
    if first == "":
        if last == "":
            return None
        length = int(last)
        if length <= 0:
            return False
        start, end = max(size - length, 0), size - 1
    else:
        start = int(first)
        end = int(last) if last else size - 1
    if start >= size:
        return False
    if start < 0 or start > end:
        return None
    return start, min(end, size - 1)


def _content_type(path: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


class PublishedTiles:
    """Tilesets published to a storage backend (``tiles/publish.py``): their indexes, read again after
    ``index_seconds``; the bytes are read from the backend (ranged GETs) by :class:`TileFiles`."""

    def __init__(self, storage: Storage, *, index_seconds: float = 10.0) -> None:
        self.storage = storage
        self.index_seconds = index_seconds
        self._indexes: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def key(self, tileset: str, sha256: str) -> str:
        """The object key of one content of ``tileset``."""
        return object_key(tileset, sha256)

    def record(self, tileset: str, path: str) -> tuple[str, int, float] | None:
        """``(sha256, size, modified)`` of ``path`` in published ``tileset``, or ``None``."""
        now = time.monotonic()
        with self._lock:
            cached = self._indexes.get(tileset)
        if cached is None or now - cached[0] >= self.index_seconds:
            files = read_index(self.storage, tileset)
            with self._lock:
                if len(self._indexes) > 1000:
                    self._indexes.clear()
                self._indexes[tileset] = (now, files)
        else:
            files = cached[1]
        found = files.get(path)
        if not isinstance(found, dict):
            return None
        try:
            return str(found["sha256"]), int(found["size"]), float(found["modified"])
        except (KeyError, TypeError, ValueError):
            return None


def published_tiles(settings: Settings) -> PublishedTiles | None:
    """The published tilesets configured by ``CIM_TILES_STORAGE`` (``None`` when unset)."""
    from cim.storage import open_storage

    published = PublishedTilesSettings()
    if not published.storage:
        return None
    storage = open_storage(settings, published.storage_settings())
    return PublishedTiles(storage, index_seconds=published.index_seconds)


class TileFiles:
    """ASGI app serving ``root/<tileset>/<path>``; mount it at ``/tiles``."""

    def __init__(
        self,
        root: Path,
        *,
        max_age: int = 3600,
        memory_cache_bytes: int = 64 << 20,
        key_check: Callable[[str, str | None], object] | None = None,
        published: PublishedTiles | None = None,
    ) -> None:
        """``key_check`` (when reads require a key) verifies a presented API key and the caller's address,
        raising ``AuthError``. Then responses are ``private`` and vary on the credential headers.
        ``published`` serves the tilesets that have no folder under ``root`` from a storage backend."""
        self.key_check = key_check
        self.published = published
        self.root = Path(root)
        self.max_age = max_age
        self.memory_budget = memory_cache_bytes
        self._files: dict[str, TileFile] = {}
        self._memory_used = 0
        self._lock = threading.Lock()
        scope = "private" if key_check is not None else "public"
        self._cache_control = f"{scope}, max-age={max_age}".encode()
        self._vary_credentials = key_check is not None

    # ----------------------------------------------------------------------------------- resolution
    def _real_root(self, tileset: str) -> str | None:
        root = os.path.realpath(self.root)
        folder = os.path.realpath(os.path.join(root, tileset))
        if not folder.startswith(root + os.sep) or not os.path.isdir(folder):
            return None
        return folder

    def _resolve(self, rel: str) -> str | None:
        """The real path of a file inside its tileset folder, or ``None`` (missing, or it would leave it)."""
        if "\x00" in rel or "\\" in rel:
            return None
        tileset, _, rest = rel.partition("/")
        if not _NAME.match(tileset) or not rest:
            return None
        parts = rest.split("/")
        if any(p in ("..", ".") for p in parts):
            return None
        rest = posixpath.normpath(rest)
        if rest.startswith(("/", "..")):
            return None
        folder = self._real_root(tileset)
        if folder is None:
            return None
        real = os.path.realpath(os.path.join(folder, rest))
        if not real.startswith(folder + os.sep):
            return None
        return real

    def _load(self, rel: str, now: float) -> TileFile | None:
        real = self._resolve(rel)
        if real is None:
            return self._load_published(rel, now)
        try:
            st = os.stat(real)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        entry = TileFile(
            path=real,
            size=st.st_size,
            mtime=st.st_mtime,
            ino=st.st_ino,
            content_type=_content_type(real),
            etag=file_etag(st.st_mtime, st.st_size),
            last_modified=formatdate(st.st_mtime, usegmt=True),
            checked_at=now,
        )

        def read() -> bytes:
            with open(real, "rb") as handle:
                return handle.read()

        return self._complete(entry, read)

    def _load_published(self, rel: str, now: float) -> TileFile | None:
        if self.published is None or not canonical_tile_path(rel) or "\x00" in rel or "\\" in rel:
            return None
        tileset, _, rest = rel.partition("/")
        if not _NAME.match(tileset) or not rest or self._real_root(tileset) is not None:
            return None  # a tileset on local disk is served from there only
        record = self.published.record(tileset, rest)
        if record is None:
            return None
        sha, size, modified = record
        entry = TileFile(
            path=self.published.key(tileset, sha),
            size=size,
            mtime=modified,
            ino=0,
            content_type=_content_type(rest),
            etag=f'"{sha[:40]}"',
            last_modified=formatdate(modified, usegmt=True),
            checked_at=now,
            published_sha=sha,
        )
        published = self.published
        return self._complete(entry, lambda: published.storage.get(entry.path))

    def _complete(self, entry: TileFile, read: Callable[[], bytes]) -> TileFile | None:
        """Fill in the body (small files, within the memory budget), its gzip variant and the headers."""
        ctype = entry.content_type
        if entry.size <= MEMORY_FILE_LIMIT and self._memory_used + entry.size <= self.memory_budget:
            try:
                entry.body = read()
            except (OSError, StorageError):
                return None
            if len(entry.body) != entry.size:
                entry.size = len(entry.body)
            if ctype in GZIP_TYPES and entry.size > 256:
                entry.gzip_body = gzip.compress(entry.body, compresslevel=6, mtime=0)
                entry.gzip_etag = "W/" + entry.etag
        ctype_header = ctype.encode() + (b"; charset=utf-8" if ctype == "application/json" else b"")
        entry.headers = [
            (b"content-type", ctype_header),
            (b"last-modified", entry.last_modified.encode()),
            (b"cache-control", self._cache_control),
            (b"accept-ranges", b"bytes"),
        ]
        vary = [b"Accept-Encoding"] if entry.gzip_body is not None else []
        if self._vary_credentials:
            vary += [b"X-API-Key", b"Authorization"]
        if vary:
            entry.headers.append((b"vary", b", ".join(vary)))
        return entry

    def _still_valid(self, rel: str, entry: TileFile) -> bool:
        if entry.published_sha:
            if self.published is None or self._real_root(rel.partition("/")[0]) is not None:
                return False
            tileset, _, rest = rel.partition("/")
            record = self.published.record(tileset, rest)
            return record is not None and record[0] == entry.published_sha
        try:
            st = os.stat(entry.path)
            same = st.st_mtime == entry.mtime and st.st_size == entry.size and st.st_ino == entry.ino
        except OSError:
            same = False
        return same and self._resolve(rel) == entry.path

    def _entry(self, rel: str) -> TileFile | None:
        now = time.monotonic()
        entry = self._files.get(rel)
        if entry is not None and now - entry.checked_at < STAT_TTL_SECONDS:
            return entry
        if entry is not None and self._still_valid(rel, entry):
            entry.checked_at = now
            return entry
        fresh = self._load(rel, now)
        with self._lock:
            old = self._files.pop(rel, None)
            if old is not None and old.body is not None:
                self._memory_used -= len(old.body) + len(old.gzip_body or b"")
            if fresh is not None:
                if len(self._files) > 200_000:
                    self._files.clear()
                    self._memory_used = 0
                self._files[rel] = fresh
                if fresh.body is not None:
                    self._memory_used += len(fresh.body) + len(fresh.gzip_body or b"")
        return fresh

    def invalidate(self) -> None:
        """Forget every cached file (after a tileset rebuild in this process)."""
        with self._lock:
            self._files.clear()
            self._memory_used = 0

    # ------------------------------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        await self.serve(path[1:] if path.startswith("/") else path, scope, send)

    async def serve(
        self, rel: str, scope: Scope, send: Send, extra_headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Answer a request for ``rel`` (``<tileset>/<path>``), adding ``extra_headers`` (CORS) to the response."""
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await self._error(send, *_json_error(405, "Method Not Allowed", "tiles are read-only"), allow=True)
            return
        if self.key_check is not None and not await self._authorised(scope, send):
            return
        if not canonical_tile_path(rel):
            detail = f"no tile file {rel!r}: tile paths have no empty, '.' or '..' segments and no trailing '/'"
            await self._error(send, *_json_error(404, "Not Found", detail))
            return
        entry = self._files.get(rel)
        if entry is None or time.monotonic() - entry.checked_at >= STAT_TTL_SECONDS:
            try:
                entry = await run_in_threadpool(self._entry, rel)
            except (StorageError, TilesError) as exc:
                log.warning("published tiles unavailable: %s", exc)
                detail = "the storage of published tilesets is unavailable; try again later"
                await self._error(send, *_json_error(503, "Service Unavailable", detail))
                return
        if entry is None:
            await self._error(send, *_json_error(404, "Not Found", f"no tile file {rel!r}"))
            return
        headers = self._request_headers(scope)
        await self._respond(entry, headers, method == "HEAD", send, extra_headers)

    async def _authorised(self, scope: Scope, send: Send) -> bool:
        refusal = await self.key_refusal(scope)
        if refusal is None:
            return True
        status, detail, retry_after = refusal
        if status == 429:
            retry = [(b"retry-after", str(retry_after).encode())]
            await self._error(send, *_json_error(429, "Too Many Requests", detail), extra=retry)
        else:
            await self._error(send, *_json_error(401, "Unauthorized", detail), extra=[CHALLENGE])
        return False

    async def key_refusal(self, scope: Scope) -> tuple[int, str, int] | None:
        """Why the request's API key does not admit it, as ``(status 401|429, detail, retry-after s)``;
        ``None`` when it does (or when this deployment does not require keys for reads)."""
        if self.key_check is None:
            return None
        key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1").strip()
            elif name == b"authorization" and key is None:
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    key = token.strip()
        if not key:
            return 401, "this deployment requires an API key for reads (X-API-Key header)", 0
        client = scope.get("client")
        try:
            await run_in_threadpool(self.key_check, key, client[0] if client else None)
        except TooManyRequestsError as exc:
            return 429, str(exc), exc.retry_after
        except AuthError as exc:
            return 401, str(exc), 0
        return None

    @staticmethod
    def _request_headers(scope: Scope) -> dict[bytes, bytes]:
        wanted = (b"if-none-match", b"if-modified-since", b"range", b"accept-encoding", b"if-range")
        return {k: v for k, v in scope["headers"] if k in wanted}

    async def _respond(
        self,
        entry: TileFile,
        req: dict[bytes, bytes],
        head: bool,
        send: Send,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        gzipped = entry.gzip_body is not None and accepts_gzip(req.get(b"accept-encoding"))
        etag = entry.gzip_etag if gzipped else entry.etag
        inm = req.get(b"if-none-match")
        not_modified = False
        if inm is not None:
            not_modified = _etag_matches(inm.decode("latin-1"), etag)
        elif b"if-modified-since" in req:
            try:
                since = parsedate_to_datetime(req[b"if-modified-since"].decode("latin-1")).timestamp()
                not_modified = int(entry.mtime) <= since
            except (TypeError, ValueError, IndexError, OverflowError):
                not_modified = False
        headers = [*entry.headers, (b"etag", etag.encode())]
        if extra_headers:
            headers += extra_headers
        if not_modified:
            # RFC 9110 15.4.5: validators, caching and Vary headers, no representation metadata (as nginx)
            headers = [h for h in headers if h[0] not in (b"content-type", b"accept-ranges")]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if gzipped:
            assert entry.gzip_body is not None
            headers += [(b"content-encoding", b"gzip"), (b"content-length", str(len(entry.gzip_body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if head else entry.gzip_body})
            return
        status, start, end = 200, 0, entry.size - 1
        range_header = req.get(b"range")
        if range_header is not None:
            if_range = req.get(b"if-range")
            if if_range is None or if_range.decode("latin-1").strip() in (entry.etag, entry.last_modified):
                parsed = _parse_range(range_header.decode("latin-1"), entry.size)
                if parsed is False:
                    headers += [(b"content-range", f"bytes */{entry.size}".encode()), (b"content-length", b"0")]
                    await send({"type": "http.response.start", "status": 416, "headers": headers})
                    await send({"type": "http.response.body", "body": b""})
                    return
                if isinstance(parsed, tuple):
                    status, (start, end) = 206, parsed
                    headers = [h for h in headers if h[0] != b"accept-ranges"]  # as nginx: the 206 says it
                    headers.append((b"content-range", f"bytes {start}-{end}/{entry.size}".encode()))
        length = max(end - start + 1, 0)
        headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if head or length == 0:
            await send({"type": "http.response.body", "body": b""})
        elif entry.body is not None:
            await send({"type": "http.response.body", "body": entry.body[start : end + 1]})
        elif entry.published_sha:
            assert self.published is not None
            await self._stream_published(self.published.storage, entry.path, start, length, send)
        else:
            await self._stream(entry.path, start, length, send)

    @staticmethod
    async def _stream(path: str, start: int, length: int, send: Send) -> None:
        handle = await run_in_threadpool(open, path, "rb")
        try:
            await run_in_threadpool(handle.seek, start)
            remaining = length
            while remaining > 0:
                chunk: bytes = await run_in_threadpool(handle.read, min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
            if remaining > 0:
                await send({"type": "http.response.body", "body": b""})
        finally:
            await run_in_threadpool(handle.close)

    @staticmethod
    async def _stream_published(storage: Storage, key: str, start: int, length: int, send: Send) -> None:
        chunks = await run_in_threadpool(storage.stream, key, start, start + length, CHUNK)
        remaining = length
        while remaining > 0:
            chunk: bytes = await run_in_threadpool(next, chunks, b"")
            if not chunk:
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:  # the object ended early (replaced meanwhile): end the response
            await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _error(
        send: Send, status: int, body: bytes, allow: bool = False, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(extra or []),
        ]
        if allow:
            headers.append((b"allow", b"GET, HEAD"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def tiles_openapi_path() -> dict[str, Any]:
    """The OpenAPI description of the tiles route (served by :class:`TileFiles`, outside FastAPI routing)."""
    params = [
        {"name": "tileset", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "path",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "File inside the tileset folder: tileset.json, *.glb, *.subtree, terrain/layer.json, "
            "terrain/{z}/{x}/{y}.terrain.",
        },
    ]
    return {
        "get": {
            "tags": ["tiles"],
            "summary": "A 3D Tiles / quantized-mesh terrain file",
            "description": "Static tile file (local, or published to object storage) with ETag, Last-Modified, "
            "Cache-Control, gzip for JSON and terrain (Accept-Encoding), single byte ranges.",
            "operationId": "get_tile_file",
            "parameters": params,
            "responses": {
                "200": {"description": "The file."},
                "206": {"description": "A byte range of the file."},
                "304": {"description": "Not modified (If-None-Match / If-Modified-Since)."},
                "404": {"description": "No such file."},
                "416": {"description": "Range not satisfiable."},
            },
        }
    }


class FastTilePath:
    """The short path for tile GETs, taken before FastAPI's middleware stack and router (the hot path).

    Adds the CORS response headers itself (preflights still go through the app's CORS middleware).
    """

    PREFIX = "/tiles/"

    def __init__(self, tiles: TileFiles, cors_origins: list[str]) -> None:
        self.tiles = tiles
        self.allow_all = "*" in cors_origins
        self.origins = {o.encode() for o in cors_origins}
        self.expose = CORS_EXPOSE.encode()
        self.enabled = bool(cors_origins)

    def _cors(self, scope: Scope) -> list[tuple[bytes, bytes]] | None:
        if not self.enabled:
            return None
        for key, value in scope["headers"]:
            if key == b"origin":
                if self.allow_all:
                    return [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", self.expose)]
                if value in self.origins:
                    return [
                        (b"access-control-allow-origin", value),
                        (b"access-control-expose-headers", self.expose),
                        (b"vary", b"Origin"),
                    ]
                return None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rel = get_route_path(scope)[len(self.PREFIX) :]
        if rel == FRONT_AUTH:
            await self._front_auth(scope, send)
            return
        await self.tiles.serve(rel, scope, send, self._cors(scope))

    async def _front_auth(self, scope: Scope, send: Send) -> None:
        refusal = await self.tiles.key_refusal(scope)
        headers: list[tuple[bytes, bytes]] = [(b"content-length", b"0")]
        if refusal is None:
            await send({"type": "http.response.start", "status": 204, "headers": headers})
        else:
            status, detail, retry_after = refusal
            headers += [
                (b"x-cim-status", str(status).encode()),
                (b"x-cim-detail", json.dumps(detail, ensure_ascii=True)[1:-1].encode()),
            ]
            if status == 429:
                headers.append((b"retry-after", str(retry_after).encode()))
            await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
