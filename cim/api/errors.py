"""One table from exception classes to HTTP status codes, installed once on the app.

Error bodies have a stable shape, ``{"code", "title", "detail"}``, and never carry stack traces or SQL.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cim.errors import (
    AnalysisError,
    ArchiveError,
    AuthError,
    CimError,
    ConfigError,
    CrsError,
    DatabaseError,
    IngestError,
    NotFoundError,
    PermissionDeniedError,
    ReviewError,
    TilesError,
)

log = logging.getLogger("cim.api")

STATUS_CODES: dict[type[Exception], int] = {
    NotFoundError: 404,
    PermissionDeniedError: 403,
    AuthError: 401,
    CrsError: 400,
    IngestError: 422,
    ReviewError: 422,
    AnalysisError: 422,
    ArchiveError: 409,
    TilesError: 500,
    ConfigError: 503,
    DatabaseError: 503,
    CimError: 500,
}
"""Domain exception → HTTP status; the most specific class wins (checked along the MRO)."""


class BadRequestError(CimError):
    """A request parameter is malformed or unknown (HTTP 400)."""


class PayloadTooLargeError(CimError):
    """A request body exceeds the configured upload limit (HTTP 413)."""


class UnsupportedMediaError(CimError):
    """An upload is not of an accepted file type (HTTP 415)."""


class TooManyRequestsError(AuthError):
    """Too many failed key verifications from this client or for this key prefix (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


STATUS_CODES.update(
    {BadRequestError: 400, PayloadTooLargeError: 413, UnsupportedMediaError: 415, TooManyRequestsError: 429}
)
RETRY_AFTER_UNAVAILABLE_SECONDS = 5
"""``Retry-After`` of a 503 (database unreachable, service not configured yet)."""
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def status_for(exc: Exception) -> int:
    """The HTTP status of a domain exception (500 for anything not in :data:`STATUS_CODES`)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_body(status: int, detail: str, code: str | None = None) -> dict[str, str]:
    """The JSON body of an error: machine code, HTTP title, human detail."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return {"code": code or title.lower().replace(" ", "-").replace("'", ""), "title": title, "detail": detail}


def error_headers(status: int, retry_after: int | None = None) -> dict[str, str]:
    """Headers every error of ``status`` carries: the 401 challenge, ``Retry-After`` on 429 and 503."""
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    if status == 503:
        headers["Retry-After"] = str(retry_after or RETRY_AFTER_UNAVAILABLE_SECONDS)
    elif retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


def error_response(status: int, detail: str, code: str | None = None, retry_after: int | None = None) -> JSONResponse:
    """A JSON error response with the headers of :func:`error_headers`."""
    return JSONResponse(
        error_body(status, detail, code), status_code=status, headers=error_headers(status, retry_after)
    )


async def audit_refused_write(request: Request, status: int, detail: str) -> None:
    """Audit a refused write (any POST/PUT/PATCH/DELETE answered with an error) unless it was audited already.

    Covers refusals decided before or outside a handler's own audit: body validation (400), malformed
    bodies, 404s of unknown targets. ``require_role`` and handlers that audit mark the request as audited.
    """
    from cim.api.security import AUDITED

    if request.method not in WRITE_METHODS or request.scope.get("state", {}).get(AUDITED):
        return
    try:
        await run_in_threadpool(_audit_refusal, request, status, detail)
    except Exception:  # the database may be the reason of the error: log, answer the error anyway
        log.warning("could not audit refused %s %s (%s)", request.method, request.url.path, status)


def _audit_refusal(request: Request, status: int, detail: str) -> None:
    from cim.api.security import ANONYMOUS, PRINCIPAL, audit, authenticate

    principal = request.scope.get("state", {}).get(PRINCIPAL)
    if principal is None:  # refused before the role check (a body that is not JSON): name the key anyway
        try:
            principal = authenticate(request)
        except AuthError:
            principal = ANONYMOUS
    outcome = "denied" if status in (401, 403, 413, 429) else "failed"
    audit(request, principal, None, outcome, detail={"status": status, "error": detail})


def _code_of(exc: Exception) -> str:
    name = type(exc).__name__.removesuffix("Error") or "Cim"
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


async def _cim_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status >= 500:
        log.error("request %s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    await audit_refused_write(request, status, str(exc))
    return error_response(status, str(exc), _code_of(exc), getattr(exc, "retry_after", None))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    await audit_refused_write(request, exc.status_code, str(exc.detail))
    response = error_response(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    detail = "; ".join(parts) or "invalid request"
    await audit_refused_write(request, 400, detail)
    return error_response(400, detail, "invalid-parameter")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    state = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    if isinstance(exc, OperationalError) or state.startswith("08") or state == "57P01":
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__)
        return error_response(503, "the database is not reachable; try again shortly", "database-unavailable")
    if isinstance(exc, DataError) or state.startswith("22") or state in ("XX000", "42883"):
        # invalid values reached SQL (bbox outside a CRS's range, text compared with a number…)
        log.info("rejected %s %s: sqlstate %s", request.method, request.url.path, state)
        return error_response(
            400,
            "the request's values could not be evaluated (check bbox, crs, filter and their ranges)",
            "invalid-parameter",
        )
    log.error("database error on %s %s: sqlstate %s", request.method, request.url.path, state)
    return error_response(500, "internal server error; the incident was logged", "internal-error")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error; the incident was logged", "internal-error")


def install_error_handlers(app: FastAPI) -> None:
    """Install the exception → JSON error mapping on ``app`` (once, in the app factory)."""
    app.add_exception_handler(CimError, _cim_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
