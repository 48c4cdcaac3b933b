"""Pure-ASGI middleware: JSON access logs, the request-body and URL size limits (checked before any parsing),
the public base URL / trusted proxies (scope level, so every ``url_for`` follows), HEAD for every GET,
JSON CORS refusals and private caching of key-protected responses.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cim.api.errors import PayloadTooLargeError, error_body
from cim.errors import ConfigError

access_log = logging.getLogger("cim.access")
log = logging.getLogger("cim.api")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: the message is already JSON for access records, wrapped otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "cim.access":
            return record.getMessage()
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:  # server logs keep the whole traceback (never sent to clients)
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging() -> None:
    """Send the service's logs (``cim.*``) to stderr as JSON lines (idempotent)."""
    root = logging.getLogger("cim")
    if any(getattr(h, "_cim_json", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    handler._cim_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


class _HttpMiddleware:
    """A pure ASGI middleware: :meth:`handle` gets the HTTP requests it :meth:`applies` to, the app the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def applies(self, scope: Scope) -> bool:
        """Whether :meth:`handle` serves this request (default: every HTTP request)."""
        return bool(scope["type"] == "http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.applies(scope):
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request through :attr:`app`."""
        raise NotImplementedError


class AccessLogMiddleware(_HttpMiddleware):
    """Logs method, path, status, bytes and duration of every HTTP request as one JSON line."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500
        sent = 0

        async def logging_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                            "type": "access",
                            "method": scope["method"],
                            "path": scope["path"],
                            "query": scope.get("query_string", b"").decode("latin-1"),
                            "status": status,
                            "bytes": sent,
                            "ms": round((time.perf_counter() - started) * 1000, 2),
                            "client": client[0] if client else None,
                        }
                    )
                )


def _json_reply(
    status: int, detail: str, code: str | None = None, extra: Iterable[tuple[bytes, bytes]] = ()
) -> tuple[Message, Message]:
    body = json.dumps(error_body(status, detail, code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class BodyLimitMiddleware:
    """Refuses request bodies above ``limit`` bytes with 413: by ``Content-Length`` up front, and by counting
    the streamed bytes (chunked uploads) before the application parses them. Every refusal is audited once."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    @property
    def reason(self) -> str:
        """The refusal's text (also the audit row's reason)."""
        mib = self.limit / (1024 * 1024)
        return f"request body larger than the upload limit of {mib:.0f} MiB (CIM_API_UPLOAD_LIMIT_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from cim.api.security import BODY_TOO_LARGE

        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._audit(scope, {"declared_bytes": declared})
                    await self._refuse(send)
                    return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    # whatever the handler makes of the cut body, the audit records this reason
                    scope.setdefault("state", {})[BODY_TOO_LARGE] = self.reason
                    raise PayloadTooLargeError(self.reason)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's reaction to the aborted body is replaced by our 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await self._audit(scope, {"received_bytes": received})
            if not started:
                await self._refuse(send)

    async def _audit(self, scope: Scope, sizes: dict[str, int]) -> None:
        from cim.api.security import ANONYMOUS, AUDITED, audit, presented_key

        if scope.get("state", {}).get(AUDITED) or "app" not in scope:
            return
        request = Request(scope)
        detail: dict[str, object] = {"status": 413, "reason": self.reason, "limit_bytes": self.limit, **sizes}
        key = presented_key(request)
        if key is not None:  # refused before any verification: note which key it claimed to be, unverified
            detail["claimed_key_prefix"] = key.split("_")[1][:16] if key.count("_") >= 2 else None
        try:
            await run_in_threadpool(audit, request, ANONYMOUS, None, "denied", detail=detail)
        except Exception:  # never let the audit store turn a 413 into a 500
            log.exception("could not audit a refused upload on %s", scope["path"])

    async def _refuse(self, send: Send) -> None:
        start, body = _json_reply(413, self.reason, extra=[(b"connection", b"close")])
        await send(start)
        await send(body)


class UrlLimitMiddleware:
    """Answers 414 (JSON) for a request target (path + query) longer than ``limit`` bytes, before routing."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
            if length > self.limit:
                start, body = _json_reply(
                    414,
                    f"the URL is {length} bytes long; at most {self.limit} are accepted (use POST or a shorter filter)",
                )
                await send(start)
                await send(body)
                return
        await self.app(scope, receive, send)


def _has_own_head_route(scope: Scope) -> bool:
    """True when a route of the app declares HEAD for this path itself (it then answers HEAD its own way)."""
    router = getattr(scope.get("app"), "router", None)
    # A route (or an included router, or a mount) matches fully only when it takes the method as it is.
    return any(route.matches(scope)[0] is Match.FULL for route in getattr(router, "routes", ()))


class HeadMiddleware(_HttpMiddleware):
    """Answers HEAD like GET without the body, for every GET route that declares no HEAD of its own.

    (OpenAPI lists GET only.) A route with its own HEAD, such as an audited download, keeps it: rewriting
    that HEAD into a GET would run the GET's side effects.
    """

    def applies(self, scope: Scope) -> bool:
        """HEAD requests without a HEAD route of their own."""
        return super().applies(scope) and scope["method"] == "HEAD" and not _has_own_head_route(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def bodiless_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, bodiless_send)


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware whose refused preflights use the API's JSON error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """The preflight answer; a refusal is a 400 ``{"code", "title", "detail"}``."""
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        detail = bytes(response.body).decode() + " (see CIM_API_CORS_ORIGINS)"
        headers = {k: v for k, v in response.headers.items() if k not in ("content-type", "content-length")}
        return JSONResponse(error_body(400, detail, "cors-refused"), status_code=400, headers=headers)


class PrivateCacheMiddleware(_HttpMiddleware):
    """When reads need a key, every response is ``Cache-Control: private`` and ``Vary`` on the credentials.

    A shared cache or CDN then never hands one caller's key-protected answer to another.
    """

    VARY = "X-API-Key, Authorization"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def private_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                private_headers(headers)
            await send(message)

        await self.app(scope, receive, private_send)


def private_headers(headers: MutableHeaders) -> None:
    """Make ``headers`` of a key-protected response private and vary them on the credential headers."""
    cache = headers.get("cache-control")
    if cache is None:
        headers["cache-control"] = "private, no-cache"
    else:
        parts = [p.strip() for p in cache.split(",") if p.strip() and p.strip().lower() not in ("public", "private")]
        headers["cache-control"] = ", ".join(["private", *parts])
    vary = headers.get("vary")
    if vary is None:
        headers["vary"] = PrivateCacheMiddleware.VARY
    elif "*" not in vary:
        have = {v.strip().lower() for v in vary.split(",")}
        extra = [v for v in ("X-API-Key", "Authorization") if v.lower() not in have]
        if extra:
            headers["vary"] = ", ".join([vary, *extra])


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """Trusted proxy addresses or CIDR blocks; :class:`ConfigError` for anything else."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"CIM_API_TRUSTED_PROXIES: {value!r} is not an IP address or CIDR block") from exc
    return networks


def parse_base_url(value: str) -> tuple[str, str, str]:
    """``(scheme, host[:port], path prefix without trailing /)`` of a public base URL; :class:`ConfigError`."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"CIM_API_PUBLIC_BASE_URL must be an absolute http(s) URL without query, e.g. https://cim.example.gov/city"
            f" (got {value!r})"
        )
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


class PublicUrl:
    """Rewrites an HTTP scope so that links name the public URL: a configured base URL, or the
    ``X-Forwarded-Proto/Host/Prefix/For`` headers, honoured only from a configured proxy address.

    Applied to the scope itself (scheme, Host header, ``root_path``, client), so every ``url_for`` and
    ``request.url`` follows, whichever router builds the link. Without either setting the scope is left as is.
    """

    def __init__(self, base_url: str | None, trusted_proxies: Iterable[str]) -> None:
        self.base = parse_base_url(base_url) if base_url else None
        self.proxies = parse_networks(trusted_proxies)

    @property
    def active(self) -> bool:
        """Whether anything is configured."""
        return self.base is not None or bool(self.proxies)

    def _trusted(self, address: str | None) -> bool:
        if not address or not self.proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    def rewrite(self, scope: Scope) -> Scope:
        """The scope as seen through the public URL (a new dict; the original is not changed)."""
        if scope["type"] != "http" or not self.active:
            return scope
        client = scope.get("client")
        peer = client[0] if client else None
        fwd: dict[bytes, str] = {}
        if self._trusted(peer):
            for key, value in scope["headers"]:
                if key.startswith(b"x-forwarded-"):
                    fwd[key[12:]] = value.decode("latin-1").split(",")[0].strip()
            forwarded_for = [
                v.strip()
                for k, value in scope["headers"]
                if k == b"x-forwarded-for"
                for v in value.decode("latin-1").split(",")
            ]
            # the caller is the last address not added by one of our own proxies
            for address in reversed(forwarded_for):
                if not self._trusted(address):
                    client = (address, 0)
                    break
        if self.base is not None:
            scheme, host, prefix = self.base
        else:
            own_scheme: str = scope.get("scheme") or "http"
            scheme = fwd.get(b"proto", own_scheme).lower()
            if scheme not in ("http", "https"):
                scheme = own_scheme
            host = fwd.get(b"host", "")
            prefix = fwd.get(b"prefix", "").rstrip("/")
            if prefix and not prefix.startswith("/"):
                prefix = ""
        headers = scope["headers"]
        if host:
            headers = [(k, v) for k, v in headers if k != b"host"] + [(b"host", host.encode("latin-1"))]
        new = {**scope, "scheme": scheme, "headers": headers, "client": client}
        if prefix:
            root = scope.get("root_path", "")
            new["root_path"] = prefix + root
            if not scope["path"].startswith(prefix + "/"):
                new["path"] = prefix + scope["path"]
                raw = scope.get("raw_path")
                if raw is not None:
                    new["raw_path"] = prefix.encode() + raw
        return new
