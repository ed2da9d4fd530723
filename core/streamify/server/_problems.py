"""Errors as the caller expects them, translated in one place.

Native routes answer RFC 9457 problem details (``application/problem+json`` with
``type``, ``title``, ``status``, ``detail``); the Uppy Companion routes (``/s3/...``) answer
``{"error": message}`` as Companion does. Core errors map to statuses here, and nothing
a caller sends can produce a 5xx: only storage failures can (502), and an unreachable
limits store, which refuses new uploads (503, ``_shared_limits.py``).

A fault no handler foresaw is answered by ``UnexpectedErrorMiddleware``, the innermost
middleware, so that its 500 carries the request's id and every header the others add,
and is logged once with its traceback (``unexpected-error``, ``streamify.server.errors``).

Every storage failure (a 5xx, or storage refusing the service's own credentials) is logged
once, here, as one JSON line on the ``streamify.server.storage`` logger: the S3 operation,
its error code, the principal, method and path. Never a message, URL or header, so never
a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import botocore.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import (
    AccessDeniedError,
    ConfigError,
    DestinationError,
    EndpointError,
    StreamifyError,
    UploadGoneError,
)
from ._logs import LogEvent

__all__ = [
    "PROBLEM_TYPE_PREFIX",
    "STORAGE_LOGGER",
    "CompanionError",
    "Problem",
    "ServiceError",
    "UnexpectedErrorMiddleware",
    "from_core_error",
    "install_error_handlers",
]

PROBLEM_TYPE_PREFIX = "urn:streamify:problem:"
PROBLEM_JSON = "application/problem+json"
COMPANION_PATH = "/s3/"

STORAGE_LOGGER = "streamify.server.storage"
_storage_log = logging.getLogger(STORAGE_LOGGER)
_errors_log = logging.getLogger("streamify.server.errors")

_TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 408: "Request timeout", 409: "Conflict",
    413: "Content too large", 422: "Invalid request", 429: "Too many requests",
    500: "Internal error", 502: "Storage error", 503: "Service unavailable",
}


class ServiceError(Exception):
    """An answer other than success: ``kind`` becomes the problem ``type``.

    ``headers`` go out with the answer (``Retry-After``); ``operation`` and ``code`` name
    the S3 call and its error when storage failed.
    """

    def __init__(self, status: int, kind: str, detail: str, *,
                 headers: Mapping[str, str] | None = None, operation: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})
        self.operation = operation
        self.code = code

    @property
    def storage_failed(self) -> bool:
        """Storage failed or refused the service's own credentials: an operator's matter."""
        return self.operation is not None and (
            self.status >= 500 or self.kind == "storage-access-denied")


class Problem(BaseModel):
    """An RFC 9457 problem details body."""

    type: str
    title: str
    status: int
    detail: str


class CompanionError(BaseModel):
    """The error body of the Companion routes."""

    error: str


def _problem(status: int, kind: str, detail: str) -> dict[str, object]:
    return Problem(type=PROBLEM_TYPE_PREFIX + kind, title=_TITLES.get(status, "Error"),
                   status=status, detail=detail).model_dump()


def _respond(request: Request, error: ServiceError) -> JSONResponse:
    _count(request, error)
    headers = dict(error.headers)
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if error.storage_failed:
        _log_storage_failure(request, error)
    if request.url.path.startswith(COMPANION_PATH):
        return JSONResponse({"error": error.detail}, status_code=error.status, headers=headers)
    return JSONResponse(_problem(error.status, error.kind, error.detail),
                        status_code=error.status, media_type=PROBLEM_JSON, headers=headers)


def _count(request: Request, error: ServiceError) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return
    metrics.problem(error.status, error.kind)
    if error.operation is not None:
        metrics.storage_error(error.operation, error.code)


def _log_storage_failure(request: Request, error: ServiceError) -> None:
    principal = getattr(request.state, "principal", None)
    _storage_log.error(LogEvent({
        "event": "storage-failure", "operation": error.operation, "code": error.code,
        "status": error.status, "principal": principal, "method": request.method,
        "path": request.url.path}))


def from_core_error(exc: StreamifyError, operation: str = "storage") -> ServiceError:
    """The answer for a core error raised while talking to S3 during ``operation``."""
    error = _answer(exc)
    cause = exc.__cause__
    if isinstance(cause, botocore.exceptions.ClientError):
        error.code = str(cause.response.get("Error", {}).get("Code", "")) or str(
            cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        error.operation = getattr(cause, "operation_name", None) or operation
    else:
        error.code = type(cause if cause is not None else exc).__name__
        error.operation = operation
    return error


def _answer(exc: StreamifyError) -> ServiceError:
    if isinstance(exc, UploadGoneError):
        return ServiceError(404, "upload-gone", "the multipart upload does not exist (it was "
                            "completed, aborted or expired, or belongs to another key)")
    if isinstance(exc, AccessDeniedError):
        return ServiceError(403, "storage-access-denied", "storage refused the operation: the "
                            "service's S3 credentials or the bucket policy do not allow it")
    if isinstance(exc, ConfigError):
        return ServiceError(400, "invalid-request", str(exc))
    if isinstance(exc, DestinationError):
        return ServiceError(502, "storage-bucket", "the service's bucket is not available")
    if isinstance(exc, EndpointError):
        return ServiceError(502, "storage-unreachable", "storage cannot be reached; retry")
    cause = exc.__cause__
    if isinstance(cause, botocore.exceptions.ClientError):
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        code = str(cause.response.get("Error", {}).get("Code", ""))
        if 400 <= status < 500:
            # S3 judged what the caller sent (wrong ETag on complete, part too small...).
            message = str(cause.response.get("Error", {}).get("Message", "")) or code
            return ServiceError(400, "storage-rejected", f"storage rejected the request: "
                                f"{code}: {message}")
    return ServiceError(502, "storage-error", "storage failed; retry later")


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations above on ``app``."""

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return _respond(request, exc)

    async def on_core_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StreamifyError)
        return _respond(request, from_core_error(exc))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in exc.errors())
        # Companion answers 400 for a malformed request; problem details use 422.
        status = 400 if request.url.path.startswith(COMPANION_PATH) else 422
        return _respond(request, ServiceError(status, "invalid-request", problems))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = {404: "not-found", 405: "method-not-allowed", 408: "body-timeout",
                413: "body-too-large"}.get(exc.status_code, "http-error")
        return _respond(request, ServiceError(exc.status_code, kind, str(exc.detail),
                                              headers=exc.headers))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only for a fault in a middleware outside UnexpectedErrorMiddleware: Starlette
        # still logs the traceback; the caller gets the usual shape, no details.
        return _respond(request, _UNEXPECTED)

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(StreamifyError, on_core_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


_UNEXPECTED = ServiceError(500, "internal-error", "the service failed unexpectedly; the "
                           "error was logged under this answer's X-Request-ID")


class UnexpectedErrorMiddleware:
    """A fault no handler foresaw, answered from inside the other middleware: a 500 in the
    usual shape, with the request's id, the security headers and ``no-store`` as any
    other answer, and one ``unexpected-error`` line with the traceback. A fault raised
    once the answer has started goes on up (the connection is cut)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            if started:
                raise
            request = Request(scope)
            _errors_log.error(LogEvent({
                "event": "unexpected-error", "method": request.method,
                "path": request.url.path,
                "principal": getattr(request.state, "principal", None)}), exc_info=True)
            await _respond(request, _UNEXPECTED)(scope, receive, send)
