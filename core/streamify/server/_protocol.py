"""How uvicorn serves the app: slow clients time out, proxy headers are the app's business.

uvicorn waits as long as a client likes for a request's headers, so a client that sends
them a byte at a time holds a connection for ever. The protocol classes here close a
connection (answering 408 first) whose request headers are not complete
``header_timeout`` seconds after it opened, or after the first byte of a later request on
it; idle kept-alive connections are uvicorn's ``timeout_keep_alive``. Request bodies are timed
in the app (``BodyLimitMiddleware``), and forwarded headers are honoured by the app only
from configured proxies, so uvicorn's own proxy handling (which trusts loopback) is off.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ._settings import ServiceSettings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools comes with uvicorn[standard]; h11 always works
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = ["HeaderTimeoutH11Protocol", "server_options"]

_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                     b"content-length: 41\r\nconnection: close\r\n\r\n"
                     b"the request headers took too long to send")


class _HeaderDeadline:
    """Closes the connection unless a new request's headers complete in time.

    Mixed into a uvicorn HTTP protocol class; ``cycle`` changes when a request's headers
    are complete, which is how a deadline that fires knows it was met (and does nothing).
    """

    # Provided by the uvicorn protocol class this is mixed into.
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._armed_for: object = None

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle
        self._deadline = self.loop.call_later(self._header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        # A new cycle means a request's headers arrived: the deadline was met.
        if self.cycle is self._armed_for and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        between_requests = self.cycle is None or self.cycle.response_complete
        if between_requests and (self._deadline is None or self._armed_for is not self.cycle):
            self._arm()  # the first byte of a new request: its headers are on the clock
        super().data_received(data)  # type: ignore[misc]


class HeaderTimeoutH11Protocol(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a deadline on request headers."""


if HttpToolsProtocol is not None:
    class HeaderTimeoutHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with a deadline on request headers."""

    _PROTOCOL: type[_HeaderDeadline] = HeaderTimeoutHttpToolsProtocol
else:
    _PROTOCOL = HeaderTimeoutH11Protocol


def server_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` / ``uvicorn.run`` serving ``settings``."""
    return {
        # A partial of a module-level class pickles, so worker processes get it too.
        "http": functools.partial(_PROTOCOL, header_timeout=settings.header_timeout),
        "proxy_headers": False,
        "timeout_keep_alive": 5,
    }
