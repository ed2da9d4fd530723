"""Security headers on every answer: no page of the service can be framed by another page
(another port or a sibling subdomain of the same site included), none runs inline script,
and the page talks only to the service and to storage.

The content security policy names storage's origins from the settings alone (no I/O): the
configured endpoint and its virtual-hosted form (``<bucket>.<host>``), or AWS's S3 hosts.
The API documents' pages (``/docs``, ``/redoc``, off unless ``docs`` is set) load their
scripts from a public CDN and carry an inline script, so they get only ``frame-ancestors``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware", "content_security_policy", "storage_origins"]

_DOCS_PATHS = ("/docs", "/redoc")


def storage_origins(endpoint_url: str | None) -> list[str]:
    """The origins a browser PUTs parts to: the endpoint, path-style and virtual-hosted."""
    if endpoint_url is None:
        return ["https://*.amazonaws.com"]
    parts = urlsplit(endpoint_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return [origin, f"{parts.scheme}://*.{parts.netloc}"]


def content_security_policy(endpoint_url: str | None) -> str:
    """The page's policy: its own scripts only, parts to storage, never in a frame."""
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        # Uppy's Dashboard sets style attributes on its elements.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self' " + " ".join(storage_origins(endpoint_url)),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP answer (``policy`` as its content security policy)."""

    def __init__(self, app: ASGIApp, *, policy: str) -> None:
        self.app = app
        self.common = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                       (b"referrer-policy", b"no-referrer")]
        self.policy = policy.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(_DOCS_PATHS)
        policy = b"frame-ancestors 'none'" if docs else self.policy

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", [])
                           if name.lower() not in _REPLACED]
                headers += [*self.common, (b"content-security-policy", policy)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


_REPLACED = frozenset({b"x-frame-options", b"x-content-type-options", b"referrer-policy",
                       b"content-security-policy"})
