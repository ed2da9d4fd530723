"""The service's log lines: one JSON object each, carrying the id of the request they
belong to.

``bind_request_id`` takes the id from the request's ``X-Request-ID`` header when it is
safe to log (1-128 letters, digits and ``._:=+/-``; a load balancer's or the caller's),
or makes one (a UUID4 in hex), and keeps it in a context variable for the rest of the
request (worker threads included: anyio copies the context into them);
``RequestIdMiddleware`` (``_middleware``) calls it and echoes the id as
``X-Request-ID``. ``JsonLogFormatter`` writes every record as one JSON object with
``ts``, ``level``, ``logger``, ``request_id`` (``null`` outside a request) and either the
record's fields (a ``LogEvent``) or its ``message``; a traceback goes in ``exc``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from typing import Any

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonLogFormatter",
    "LogEvent",
    "bind_request_id",
    "current_request_id",
]

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:=+/-]{1,128}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "streamify_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served here, if any."""
    return _request_id.get()


def bind_request_id(header: bytes | None) -> str:
    """The request's id (``header`` when it is safe to log and echo, otherwise a new one),
    the current one from now on in this context.

    Not reset when the request ends: each request runs in a task of its own, whose
    context ends with it, and the server's own lines about the request (an unexpected
    error's traceback, logged after the app returned) still carry the id.
    """
    if header is not None and _SAFE_ID.fullmatch(header):
        request_id = header.decode("ascii")
    else:
        request_id = uuid.uuid4().hex
    _request_id.set(request_id)
    return request_id


class LogEvent(dict[str, Any]):
    """A log record's fields. ``str()`` is the JSON object, so a handler without
    ``JsonLogFormatter`` still writes one JSON line; with it, the fields join the
    line's ``ts``, ``level``, ``logger`` and ``request_id``."""

    def __str__(self) -> str:
        return json.dumps(self, separators=(",", ":"), default=str)


class JsonLogFormatter(logging.Formatter):
    """Every record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": _request_id.get(),
        }
        if isinstance(record.msg, LogEvent) and not record.args:
            line.update(record.msg)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, separators=(",", ":"), default=str)
