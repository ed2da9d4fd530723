"""What the service does when storage fails or clients misbehave: storage failures are
logged without secrets, finished uploads sign nothing, presigned answers are never cached,
slow clients time out, and the API documents can be switched off."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Bucket, free_port
from tests.server._support import MiB, assert_companion_error, assert_problem, put
from tests.server.conftest import COOKIE_SECRET, TOKENS, Api, running_api


def _storage_failures(api: Api) -> list[dict[str, object]]:
    return [json.loads(line) for line in api.log.splitlines()
            if line.startswith('{"event":"storage-failure"')]


def test_storage_failures_are_logged_with_code_operation_and_principal(
        moto_bucket: Bucket) -> None:
    missing = Bucket(moto_bucket.endpoint, "no-such-bucket-here", moto_bucket.client)
    with running_api(missing) as api:
        assert_problem(api.client().post("/v1/uploads", json={"filename": "a", "size": 1}),
                       502, "storage-bucket")
        failures = _storage_failures(api)
    assert failures == [{"event": "storage-failure", "operation": "ListMultipartUploads",
                         "code": "NoSuchBucket", "status": 502, "principal": "alice",
                         "method": "POST", "path": "/v1/uploads"}]

    dead = Bucket(f"http://127.0.0.1:{free_port()}", moto_bucket.name, moto_bucket.client)
    with running_api(dead) as api:
        cookie = api.client().post("/v1/session").cookies["streamify_session"]
        browser = api.client(None, cookies={"streamify_session": cookie})
        assert_companion_error(browser.get("/s3/multipart/some-upload/1",
                                           params={"key": "users/alice/a"}), 502)
        [failure] = _storage_failures(api)
        assert (failure["operation"], failure["code"], failure["principal"]) == (
            "ListMultipartUploads", "EndpointConnectionError", "alice")
        for secret in (TOKENS["alice"], cookie, COOKIE_SECRET, "streamify-test-secret"):
            assert secret not in api.log


def test_a_completed_or_aborted_upload_signs_nothing(api: Api) -> None:
    client = api.client()
    for ending in ("complete", "abort"):
        key = api.key("alice", f"{ending}.bin")
        upload_id = client.post("/v1/uploads", json={"key": key, "size": 5}).json()["upload_id"]
        sign = f"/v1/uploads/{upload_id}/sign"
        first = client.post(sign, json={"key": key, "parts": [{"number": 1}]})
        assert first.status_code == 200  # the service now remembers the upload as open
        if ending == "complete":
            etag = put(first.json()["parts"][0]["url"], b"hello").headers["ETag"]
            assert client.post(f"/v1/uploads/{upload_id}/complete", json={
                "key": key, "parts": [{"number": 1, "etag": etag}]}).status_code == 200
        else:
            assert client.delete(f"/v1/uploads/{upload_id}",
                                 params={"key": key}).status_code == 204
        assert_problem(client.post(sign, json={"key": key, "parts": [{"number": 2}]}), 404,
                       "upload-gone")
        assert_companion_error(client.get(f"/s3/multipart/{upload_id}/2",
                                          params={"key": key}), 404)


def test_answers_with_presigned_urls_are_never_cached(moto_bucket: Bucket,
                                                      tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("page")
    with running_api(moto_bucket, static_dir=tmp_path) as api:
        client = api.client()
        key = api.key("alice", "c.bin")
        upload_id = client.post("/v1/uploads", json={"key": key, "size": 6 * MiB}).json()[
            "upload_id"]
        answers = [
            client.post(f"/v1/uploads/{upload_id}/sign", json={"key": key,
                                                               "parts": [{"number": 1}]}),
            client.get(f"/s3/multipart/{upload_id}/1", params={"key": key}),
            client.get(f"/s3/multipart/{upload_id}/batch", params={"key": key,
                                                                  "partNumbers": "1,2"}),
            client.get("/s3/params", params={"filename": "small.txt"}),
            client.get("/v1/uploads"),
            client.post(f"/v1/uploads/{upload_id}/sign", json={"key": key, "parts": []}),
        ]
        for answer in answers:
            assert answer.headers["cache-control"] == "no-store", answer.request.url
        # The pages under /ui/ are ordinary static files.
        assert "no-store" not in client.get("/ui/").headers.get("cache-control", "")


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    started = time.monotonic()
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def test_stalled_headers_and_bodies_time_out(moto_bucket: Bucket) -> None:
    with running_api(moto_bucket, header_timeout=1, body_timeout=1) as api:
        with _raw(api.url) as sock:
            sock.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
            answer, waited = _read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 408 ") and waited < 5

        with _raw(api.url) as sock:
            sock.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\n"
                         b"Authorization: Bearer " + TOKENS["alice"].encode() + b"\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                         b'{"filename": ')
            answer, waited = _read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 408 ") and waited < 5
        assert b"urn:streamify:problem:body-timeout" in answer

        # A request sent at an ordinary pace is not affected.
        assert api.client().get("/v1/uploads").status_code == 200
        _assert_next_request_is_timed(api.url)


def _assert_next_request_is_timed(url: str) -> None:
    """On a kept-alive connection, the next request's headers have the same deadline
    (uvicorn's idle timeout stops counting at the first byte)."""
    with _raw(url) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1.5)  # longer than the header deadline: an idle wait is not a stall
        assert raw.recv(65536).startswith(b"HTTP/1.1 200 ")
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(65536).startswith(b"HTTP/1.1 200 ")
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        answer, waited = _read_until_closed(raw)
    assert answer.startswith(b"HTTP/1.1 408 ") and waited < 4


@pytest.mark.parametrize("docs", [None, True, False])
def test_the_documentation_pages_are_off_unless_asked_for(moto_bucket: Bucket,
                                                          docs: bool | None) -> None:
    """``/docs`` and ``/redoc`` load scripts from a public CDN: only when ``docs`` is set.
    The OpenAPI document holds no script and is always there."""
    with running_api(moto_bucket, **({} if docs is None else {"docs": docs})) as api:
        page = api.client(None)
        for path in ("/docs", "/redoc"):
            assert page.get(path).status_code == (200 if docs else 404)
        assert page.get("/openapi.json").status_code == 200
        assert page.get("/healthz").status_code == 200
        assert "frame-ancestors 'none'" in page.get("/docs").headers[
            "content-security-policy"]


def test_the_h11_protocol_also_times_out_stalled_headers(moto_bucket: Bucket) -> None:
    """Where httptools is missing, uvicorn's h11 protocol gets the same deadline."""
    import functools
    import threading

    import uvicorn
    from streamify.server import create_app
    from streamify.server._local import bind_socket, socket_url
    from streamify.server._protocol import HeaderTimeoutH11Protocol

    from tests.server.conftest import service_settings

    sock = bind_socket("127.0.0.1", 0)
    # uvicorn calls the protocol "class" with keywords: a partial serves (typed as a class).
    protocol: dict[str, Any] = {
        "http": functools.partial(HeaderTimeoutH11Protocol, header_timeout=1)}
    config = uvicorn.Config(create_app(service_settings(moto_bucket)), log_config=None,
                            lifespan="off", proxy_headers=False, **protocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        url = socket_url(sock)
        with _raw(url) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            answer, waited = _read_until_closed(raw)
        assert answer.startswith(b"HTTP/1.1 408 ") and waited < 5
        _assert_next_request_is_timed(url)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
