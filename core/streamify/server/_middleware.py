"""ASGI middleware: the request body limit and the JSON-lines access log.

The access log writes one JSON object per request to the ``streamify.server.access``
logger: method, path (never the query string), status, duration, principal name. It never
records headers, so tokens and cookies cannot leak into it; presigned URLs only appear in
response bodies, which it does not read.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ACCESS_LOGGER", "AccessLogMiddleware", "BodyLimitMiddleware"]

ACCESS_LOGGER = "streamify.server.access"
_access = logging.getLogger(ACCESS_LOGGER)


class BodyLimitMiddleware:
    """Refuse request bodies above ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            too_large = HTTPException(413, f"request body exceeds {self.limit} bytes")
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise too_large
            return message

        await self.app(scope, limited_receive, send)


class AccessLogMiddleware:
    """Log every HTTP request as one JSON line once its response has started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            self._log(scope, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        if not _access.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        state: dict[str, Any] = scope.get("state") or {}
        record = {
            "ts": round(time.time(), 3),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "ms": round(seconds * 1000, 1),
            "principal": state.get("principal"),
            "client": client[0] if client else None,
        }
        _access.info(json.dumps(record, separators=(",", ":")))
