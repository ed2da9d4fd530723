"""The data path: PUT a part's bytes to its presigned URL through one pooled HTTP client."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from urllib3.util import parse_url

from ._checksum import normalize_etag
from ._control import SignedPart
from ._retry import PartRejected, parse_retry_after
from ._throttle import Throttle

__all__ = ["PartSender"]

# The body goes to the socket in pieces so that progress (and --bwlimit) see it move. Each
# piece costs a trip through http.client and a send call with the interpreter lock let go
# and taken back among all the workers: 1 MiB keeps that small per GiB; throttled, pieces
# stay small so the rate stays smooth.
_CHUNK = 1024 * 1024
_THROTTLED_CHUNK = 256 * 1024
_CODE_RE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE_RE = re.compile(rb"<Message>([^<]*)</Message>")


class PartSender:
    """Sends part bodies. One instance (one connection pool) serves all workers.

    Network errors surface as urllib3 exceptions; error answers as ``PartRejected``.
    """

    def __init__(self, *, pool_size: int, connect_timeout: float = 10.0,
                 read_timeout: float = 120.0, throttle: Throttle | None = None,
                 verify: bool | str = True) -> None:
        """``verify``: check the storage's TLS certificate (``True``), not at all
        (``False``), or against the CA bundle file or folder at that path."""
        tls: dict[str, Any] = {}
        if verify is False:
            tls["cert_reqs"] = "CERT_NONE"
        elif isinstance(verify, str):
            tls["ca_cert_dir" if os.path.isdir(verify) else "ca_certs"] = verify
        self._http = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False, retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout), **tls)
        self._throttle = throttle

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        """Send ``body`` and return the part's ETag."""
        headers = {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
        headers.update(signed.headers)
        pool, target = self._pool_and_target(signed.url)
        response = pool.urlopen(
            "PUT", target, body=self._chunks(body, on_progress), headers=headers,
            chunked=False, preload_content=True, redirect=False, assert_same_host=False)
        if response.status >= 300:
            data = response.data or b""
            code = _CODE_RE.search(data)
            message = _MESSAGE_RE.search(data)
            raise PartRejected(
                status=response.status,
                code=code.group(1).decode(errors="replace") if code else "",
                message=message.group(1).decode(errors="replace") if message else "",
                retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return normalize_etag(response.headers.get("ETag", ""))

    def _pool_and_target(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        """The pool for ``url``'s origin, and the request target (path and query).

        Only the short origin is parsed here: ``PoolManager.request`` would parse the
        whole presigned URL (hundreds of characters, checked one by one in Python) before
        the pool parses its target again, about 50 us of interpreter time per PUT, as much
        as hashing 25 KiB."""
        start = url.find("://") + 3
        ends = [end for end in (url.find("/", start), url.find("?", start)) if end >= 0]
        split = min(ends) if ends else len(url)
        origin = parse_url(url[:split])
        pool = self._http.connection_from_host(origin.host, origin.port, origin.scheme)
        target = url[split:]
        return pool, target if target.startswith("/") else "/" + target

    def _chunks(self, body: bytes, on_progress: Callable[[int], None] | None) -> Iterator[bytes]:
        view = memoryview(body)
        step = _CHUNK if self._throttle is None else _THROTTLED_CHUNK
        for start in range(0, len(view), step):
            chunk = view[start : start + step]
            if self._throttle is not None:
                self._throttle.take(len(chunk))
            yield chunk  # type: ignore[misc]
            if on_progress is not None:
                on_progress(len(chunk))

    def close(self) -> None:
        self._http.clear()
