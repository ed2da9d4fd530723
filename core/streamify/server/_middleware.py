"""ASGI middleware: request body limits, ``Cache-Control``, request ids, the JSON-lines
access log.

The access log writes one JSON object per request to the ``streamify.server.access``
logger: method, path (never the query string), status, duration, principal name. It never
records headers, so tokens and cookies cannot leak into it; presigned URLs only appear in
response bodies, which it does not read. The same timing feeds the request metrics
(``_metrics``). Every line logged during a request carries its id (``_logs``), which the
answer echoes as ``X-Request-ID``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._logs import REQUEST_ID_HEADER, LogEvent, bind_request_id
from ._metrics import ServiceMetrics

__all__ = [
    "ACCESS_LOGGER",
    "AccessLogMiddleware",
    "BodyLimitMiddleware",
    "NoStoreMiddleware",
    "RequestIdMiddleware",
]

ACCESS_LOGGER = "streamify.server.access"
_access = logging.getLogger(ACCESS_LOGGER)
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


def _set_header(message: Message, name: bytes, value: bytes) -> Message:
    """``message`` (a response start) with header ``name`` (lowercase) set to ``value``."""
    headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != name]
    return {**message, "headers": [*headers, (name, value)]}


class BodyLimitMiddleware:
    """Refuse request bodies above ``limit`` bytes with 413, declared or streamed, and
    bodies not all received ``timeout`` seconds after the app first asked with 408."""

    def __init__(self, app: ASGIApp, *, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        received = 0
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal received, deadline
            too_large = HTTPException(413, f"request body exceeds {self.limit} bytes")
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                raise too_large
            if deadline is None:
                deadline = time.monotonic() + self.timeout
            try:
                # One deadline for the whole body: a byte now and then does not extend it.
                with anyio.fail_after(max(deadline - time.monotonic(), 0.0)):
                    message = await receive()
            except TimeoutError:
                # The rest of the body may still come: close rather than read it.
                raise HTTPException(408, f"the request body was not received within "
                                    f"{self.timeout:g} s; send it at once",
                                    headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise too_large
            return message

        await self.app(scope, limited_receive, send)


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every API answer: they carry presigned URLs and
    per-principal data that no cache between the caller and the service may keep."""

    def __init__(self, app: ASGIApp, *, except_prefix: str) -> None:
        self.app = app
        self.except_prefix = except_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.except_prefix):
            await self.app(scope, receive, send)
            return

        async def no_store_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _set_header(message, b"cache-control", b"no-store")
            await send(message)

        await self.app(scope, receive, no_store_send)


class RequestIdMiddleware:
    """Gives each HTTP request its id (``_logs.bind_request_id``), for every line logged
    while it runs and for the answer's ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == _REQUEST_ID), None)
        request_id = bind_request_id(given).encode("ascii")

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _set_header(message, _REQUEST_ID, request_id)
            await send(message)

        await self.app(scope, receive, with_id)


class AccessLogMiddleware:
    """Log every HTTP request as one JSON line once its response has started, and count
    it in ``metrics``."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            seconds = time.perf_counter() - started
            self._log(scope, status, seconds)
            if self.metrics is not None:
                self.metrics.request(scope, status, seconds)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        if not _access.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        state: dict[str, Any] = scope.get("state") or {}
        record = LogEvent({
            "ts": round(time.time(), 3),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "ms": round(seconds * 1000, 1),
            "principal": state.get("principal"),
            "client": client[0] if client else None,
        })
        _access.info(record)
