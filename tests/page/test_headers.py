"""The page cannot be framed: a page of the same site on another port that puts the upload
page in an ``<iframe>`` gets nothing shown in it (so no live Abort or Sign-out buttons to
trick a click onto), and the page still works under its content security policy."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.page._support import sign_in, wait_for
from tests.page.conftest import PageService

pytestmark = [pytest.mark.page]


@contextlib.contextmanager
def framing_site(target: str) -> Iterator[str]:
    """Another origin on loopback (same host, other port) whose page frames ``target``."""
    html = (f'<!doctype html><title>framer</title><iframe id="victim" src="{target}" '
            'width="800" height="600"></iframe>').encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_another_page_of_the_site_cannot_frame_the_upload_page(
        page_service: PageService, browser: Any) -> None:
    signed_in = page_service.new_page(browser)
    sign_in(signed_in, page_service.tokens["alice"])  # the session cookie a framer would ride
    with framing_site(f"{page_service.origin}/") as framer:
        page = signed_in.context.new_page()
        page.goto(framer)
        page.wait_for_load_state("load")
        [frame] = [f for f in page.frames if f is not page.main_frame]
        # A blocked frame shows Chromium's error page: none of the upload page's elements.
        assert frame.query_selector("#sign-out") is None
        assert frame.query_selector("#uploader") is None
        assert not frame.url.startswith(page_service.origin)


def test_the_page_runs_under_its_policy_and_sends_the_headers(
        page_service: PageService, browser: Any) -> None:
    page = page_service.new_page(browser)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    answer = page.request.get(f"{page_service.origin}/")
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    sign_in(page, page_service.tokens["alice"])
    wait_for(lambda: page.is_visible("#uploader .uppy-Dashboard"), "the Dashboard")
    page.reload()
    page.wait_for_function("() => window.streamifyPage && window.streamifyPage.ready")
    assert violations == []
