"""The data path sends each part to exactly the URL it was signed for: the origin picks the
pool, and the path and query reach the server byte for byte (a signature covers them)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from streamify._control import SignedPart
from streamify._transport import PartSender


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, bytes]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.command, self.path, self.headers["Host"], body))
        self.send_response(200)
        self.send_header("ETag", '"abc"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("target", [
    "/bucket/key",
    "/bucket/a%20key/with%2Bplus?X-Amz-Credential=AK%2F20261205%2Fus-east-1&X-Amz-Signature=f0",
    "/bucket/%E2%9C%93.mp4?partNumber=3&uploadId=2~abc",
    "/?only=query",
])
def test_a_part_reaches_the_path_and_query_it_was_signed_for(
        server: ThreadingHTTPServer, target: str) -> None:
    host, port = "127.0.0.1", server.server_port
    sender = PartSender(pool_size=2)
    try:
        etag = sender.put(SignedPart(1, f"http://{host}:{port}{target}", {}, 60), b"part-bytes")
    finally:
        sender.close()
    assert etag == "abc"
    assert _Recorder.seen == [("PUT", target, f"{host}:{port}", b"part-bytes")]


def test_a_url_with_a_query_and_no_path_is_sent_to_the_root(server: ThreadingHTTPServer) -> None:
    host, port = "127.0.0.1", server.server_port
    sender = PartSender(pool_size=2)
    try:
        sender.put(SignedPart(1, f"http://{host}:{port}?x=1", {}, 60), b"b")
    finally:
        sender.close()
    assert [path for _, path, _, _ in _Recorder.seen] == ["/?x=1"]


def test_parts_to_two_origins_go_to_two_pools() -> None:
    sender = PartSender(pool_size=2)
    try:
        first, target = sender._pool_and_target("http://127.0.0.1:9000/b/k?s=1")
        second, _ = sender._pool_and_target("https://[::1]:9443/b/k")
        again, _ = sender._pool_and_target("http://127.0.0.1:9000/other")
    finally:
        sender.close()
    assert target == "/b/k?s=1"
    assert (first.scheme, first.host, first.port) == ("http", "127.0.0.1", 9000)
    assert (second.scheme, second.host, second.port) == ("https", "::1", 9443)
    assert again is first
