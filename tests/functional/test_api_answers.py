"""What ``HttpControlPlane`` makes of answers that break the protocol: an empty body, a
204, JSON that is not an object, fields missing or of the wrong type. Each is a clear
``EndpointError`` naming the call, never a ``TypeError`` or ``KeyError`` from inside."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from streamify import EndpointError, HttpControlPlane
from streamify._control import UploadedPart
from streamify._destination import Destination

HERE = Destination("bucket", "users/alice/v.mp4")


class Canned(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status and body the test set."""

    status = 200
    body = b""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(self.status)
        if self.status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if self.status != 204:
            self.wfile.write(self.body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[tuple[HttpControlPlane, type[Canned]]]:
    handler = type("Handler", (Canned,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    plane = HttpControlPlane(f"http://127.0.0.1:{server.server_address[1]}", token="t")
    yield plane, handler
    plane.close()
    server.shutdown()
    server.server_close()


CALLS: dict[str, Callable[[HttpControlPlane], object]] = {
    "create": lambda p: p.create_upload(HERE, content_type="video/mp4", metadata={},
                                        checksum="none", size=1),
    "sign": lambda p: p.sign_parts(HERE, "u", [], expires_in=60),
    "list parts": lambda p: p.list_parts(HERE, "u"),
    "list uploads": lambda p: p.list_uploads(HERE),
    "complete": lambda p: p.complete(HERE, "u", [UploadedPart(1, "e", 1)]),
    "head": lambda p: p.head(HERE),
    "list objects": lambda p: list(p.list_objects(Destination("bucket", "users/alice/"))),
}
BROKEN: dict[str, tuple[int, bytes]] = {
    "204": (204, b""),
    "empty": (200, b""),
    "a list": (200, b"[1, 2]"),
    "null": (200, b"null"),
    "fields missing": (200, b"{}"),
    "wrong types": (200, b'{"upload_id": 7, "parts": 3, "uploads": [{"bucket": 1}], '
                         b'"size": "big", "etag": null, "objects": "none"}'),
    "not JSON": (200, b"<html>hello</html>"),
    "deep": (200, b"[" * 100_000),
}


@pytest.mark.parametrize("answer", list(BROKEN))
@pytest.mark.parametrize("call", list(CALLS))
def test_a_broken_answer_is_a_clear_endpoint_error(
        service: tuple[HttpControlPlane, type[Canned]], call: str, answer: str) -> None:
    plane, handler = service
    handler.status, handler.body = BROKEN[answer]
    with pytest.raises(EndpointError, match=r"(did not answer|answered without|did not sign)"
                       ) as caught:
        CALLS[call](plane)
    assert caught.value.exit_code == 7
    assert HERE.key in str(caught.value) or "users/alice/" in str(caught.value)


def test_abort_takes_an_empty_answer(service: tuple[HttpControlPlane, type[Canned]]) -> None:
    plane, handler = service
    handler.status, handler.body = 204, b""
    plane.abort(HERE, "u")
